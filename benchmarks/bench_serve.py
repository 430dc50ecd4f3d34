"""`aigc serve` against `transformers serve` on the same local model, side by side in one run.

For the tiny random-weight model (chains.testing.build_tiny_model) and, when it is in the model cache
(`aigc models pull smollm2`), SmolLM2-135M-Instruct:

(a) Requests/s and p50/p95 time to first token (the first chunk with text) with 1, 8 and 64 concurrent streaming
    clients (openai.AsyncOpenAI, stream=True, greedy, max_tokens=32, a distinct prompt per request; each client
    sends its next request when its answer has ended) against `aigc serve` and `transformers serve` (the
    transformers package's own OpenAI-compatible server), the latter with --continuous-batching ("tf CB") and as it
    starts by default ("tf": one generate() call at a time, so flat over the levels; measured at every level on the
    tiny model, at 1 client on SmolLM2, where 64 requests in a row would take minutes). Tiny-model levels are the
    best of 3 by wall time; SmolLM2's run once.
(b) Server overhead per request: `aigc serve` with one client, JSON and streaming, against a direct
    `ChatTransformers(...).invoke` on the same model and prompt in this process: paired medians of wall time over
    interleaved rounds, and CPU seconds (this process plus the server process) summed over the rounds.
(c) Whether the answers are non-empty and, greedy, equal across servers (at 1 client), between each server's
    batched and sequential answers, and between the server and the direct call; differences go to stderr.

Every server runs in its own process, started and stopped here, and is warmed up before it is measured. Both load
the same folder in the same dtype (float32 for the tiny model, bfloat16 for SmolLM2). aigc never emits control
tokens other than end-of-sequence (they are masked); transformers serve reads the same rule from the folder's
generation_config.json (`suppress_tokens`), which the benchmark writes into a linked copy of the model folder:
without it, the tiny model's greedy answer is the `<|assistant|>` token again and again, decoded as "".
Torch runs THREADS threads in every process (servers and the direct call; 1 unless AIGC_BENCH_SERVE_THREADS says
otherwise): on a 2-core machine shared with other work, two spinning OpenMP threads per process made every figure
5-10x slower and noisy. The client's CPU time over the wall time of the 64-client level shows whether the client
(one asyncio process) was the limit; the CPU other processes used during the run says how loaded the machine was.

    python benchmarks/run.py serve
    python benchmarks/bench_serve.py          # prints a table, writes benchmarks/results/serve.json
    AIGC_BENCH_SERVE_MODELS=tiny ...          # the tiny model only
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = Path(__file__).resolve().parent.parent
MAX_TOKENS = 32
CLIENTS = (1, 8, 64)
REQUESTS = {1: 6, 8: 16, 64: 64}  # per level; the first 6 prompts are common to every level
REPEATS = {"tiny": 3, "smollm2": 1}  # each level, best by wall time (a tiny-model level takes a second or so)
OVERHEAD_ROUNDS = {"tiny": 30, "smollm2": 6}  # SmolLM2 takes ~1 s a call
START_TIMEOUT_S = 240.0
THREADS = os.environ.get("AIGC_BENCH_SERVE_THREADS", "1")
TOPICS = [
    "rivers", "coffee", "the moon", "volcanoes", "chess", "bees", "trains", "jazz",
    "glaciers", "owls", "bridges", "tea", "deserts", "comets", "violins", "tides",
]  # fmt: skip
ASKS = [
    "Tell me about {t}.",
    "Give three facts about {t}.",
    "Write a short poem about {t}.",
    "Explain {t} to a child of seven, in simple words.",
]
PROMPTS = [ASKS[i // len(TOPICS) % len(ASKS)].format(t=TOPICS[i % len(TOPICS)]) for i in range(64)]
WARMUP = [f"Say something about the number {i}." for i in range(8)]


@dataclass
class Target:
    """One server to measure: how to start it and which model name its requests carry."""

    name: str  # short, for the table: aigc, tf, tf CB
    command: list[str]
    model: str
    clients: tuple[int, ...] = CLIENTS


@dataclass
class Level:
    """What one concurrency level measured against one server."""

    wall: float
    cpu: float  # this (client) process's CPU seconds
    ttfts: list[float]
    answers: dict[str, str]

    @property
    def requests_per_s(self) -> float:
        return len(self.answers) / self.wall

    def ttft_ms(self, q: float) -> float:
        ordered = sorted(self.ttfts)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


class ServerProcess:
    """A server in its own process (its own session, output to a log file) until close()."""

    def __init__(self, target: Target, port: int, log: Path) -> None:
        self.target, self.log_path = target, log
        self.base_url = f"http://127.0.0.1:{port}"
        self._log = log.open("w")
        env = {**os.environ, "OMP_NUM_THREADS": THREADS, "MKL_NUM_THREADS": THREADS}
        self.proc = subprocess.Popen(
            target.command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(self.base_url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.close()
        tail = self.log_path.read_text()[-1500:]
        raise RuntimeError(f"{self.target.name} did not start ({' '.join(self.target.command)}):\n{tail}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@contextmanager
def serving(target: Target, work: Path) -> Iterator[ServerProcess]:
    """Start ``target`` on a free port, warm it up (sequential, then 8 at once), stop it on exit."""
    from aigc_app.server.testing import free_port

    port = free_port()
    command = [part.replace("{port}", str(port)) for part in target.command]
    server = ServerProcess(Target(target.name, command, target.model), port, work / f"{port}.log")
    try:
        for prompt in WARMUP[:2]:
            asyncio.run(_level(server.base_url, target.model, 1, [prompt]))
        asyncio.run(_level(server.base_url, target.model, 8, WARMUP))
        yield server
    finally:
        server.close()


async def _stream(client, model: str, prompt: str) -> tuple[float, str]:
    """One streaming request: seconds to the first chunk with text, and the whole answer."""
    start = time.perf_counter()
    ttft = None
    parts: list[str] = []
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
    )
    async for chunk in stream:
        text = chunk.choices[0].delta.content if chunk.choices else None
        if text:
            ttft = ttft if ttft is not None else time.perf_counter() - start
            parts.append(text)
    return (ttft if ttft is not None else time.perf_counter() - start), "".join(parts)


async def _level(base_url: str, model: str, clients: int, prompts: list[str]) -> Level:
    """``clients`` workers share the prompts; each sends its next request when its last answer has ended."""
    import openai

    queue: asyncio.Queue[str] = asyncio.Queue()
    for prompt in prompts:
        queue.put_nowait(prompt)
    ttfts: list[float] = []
    answers: dict[str, str] = {}
    async with openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=600) as client:

        async def worker() -> None:
            while not queue.empty():
                prompt = queue.get_nowait()
                ttft, answers[prompt] = await _stream(client, model, prompt)
                ttfts.append(ttft)

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Level(wall, cpu, ttfts, answers)


def measure(target: Target, work: Path, repeats: int = 1) -> dict[int, Level]:
    """Every concurrency level against one server, in its own process: the best of ``repeats`` runs by wall time."""
    best: dict[int, Level] = {}
    with serving(target, work) as server:
        for n in target.clients:
            for _ in range(repeats):
                level = asyncio.run(_level(server.base_url, target.model, n, PROMPTS[: REQUESTS[n]]))
                best[n] = level if n not in best or level.wall < best[n].wall else best[n]
    return best


def _linked_copy(source: Path, dest: Path) -> Path:
    """The model folder with every file linked, and generation_config.json suppressing aigc's masked tokens."""
    from transformers import AutoTokenizer, GenerationConfig

    dest.mkdir(parents=True)
    for item in source.iterdir():
        if item.name != "generation_config.json":
            (dest / item.name).symlink_to(item.resolve())
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = GenerationConfig.from_pretrained(source)
    eos = config.eos_token_id if config.eos_token_id is not None else tokenizer.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    special = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special} | set(tokenizer.all_special_ids)
    config.suppress_tokens = sorted(special - eos_ids)
    config.save_pretrained(dest)
    return dest


def _aigc_target(path: Path, dtype: str, work: Path) -> Target:
    import yaml

    model = f"hf:{path}"
    config = work / f"aigc-{path.name}.yaml"
    local = {"model": model, "dtype": dtype, "max_batch_size": max(CLIENTS)}
    config.write_text(yaml.safe_dump({"models": {"local": local, "router": {"default": model}}}))
    aigc = str(Path(sys.executable).with_name("aigc"))
    command = [aigc, "serve", "--config", str(config), "--port", "{port}", "--store", str(work / "results.db")]
    return Target("aigc", command, model)


def _transformers_targets(path: Path, dtype: str, sequential_clients: tuple[int, ...]) -> list[Target]:
    """transformers serve as it starts (one generate() at a time) and with continuous batching."""
    binary = str(Path(sys.executable).with_name("transformers"))
    base = [binary, "serve", str(path), "--port", "{port}", "--host", "127.0.0.1", "--dtype", dtype]
    base += ["--device", "cpu", "--log-level", "warning"]
    return [
        Target("tf", base, str(path), sequential_clients),
        Target("tf CB", [*base, "--continuous-batching"], str(path)),
    ]


@functools.cache
def _aigc_serve_available() -> str | None:
    """None when `aigc serve` exists; else why not."""
    aigc = str(Path(sys.executable).with_name("aigc"))
    done = subprocess.run([aigc, "serve", "--help"], capture_output=True, text=True, cwd=ROOT)
    return None if done.returncode == 0 else f"`aigc serve --help` exited {done.returncode}"


def overhead(path: Path, dtype: str, work: Path, rounds: int) -> dict[str, list[float]]:
    """Per-round seconds of a direct invoke, a JSON request and a streaming request, interleaved; and the CPU
    seconds each took in all (this process's, plus the server process's for the requests: /proc ticks are 10 ms,
    so CPU is summed over the rounds, not paired)."""
    import openai
    import psutil
    import torch
    from langchain_core.messages import HumanMessage

    from chains import ChatTransformers

    torch.set_num_threads(int(THREADS))

    target = _aigc_target(path, dtype, work)
    direct = ChatTransformers(model=str(path), dtype=dtype, max_tokens=MAX_TOKENS, temperature=0)
    prompt = PROMPTS[0]
    times: dict[str, list[float]] = {"direct": [], "json": [], "stream": []}
    cpu = dict.fromkeys(times, 0.0)
    client_cpu = dict.fromkeys(times, 0.0)  # this process's share
    with serving(target, work) as server:
        served = psutil.Process(server.proc.pid)

        def cpu_now() -> float:
            return time.process_time() + sum(served.cpu_times()[:2])

        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-bench", max_retries=0, timeout=600)
        calls = {
            "direct": lambda: direct.invoke([HumanMessage(prompt)]).content,
            "json": lambda: (
                client.chat.completions.create(
                    model=target.model,
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=MAX_TOKENS,
                    temperature=0,
                )
                .choices[0]
                .message.content
            ),
            "stream": lambda: "".join(
                chunk.choices[0].delta.content or ""
                for chunk in client.chat.completions.create(
                    model=target.model,
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=MAX_TOKENS,
                    temperature=0,
                    stream=True,
                )
                if chunk.choices
            ),
        }
        texts = {name: call() for name, call in calls.items()}  # warm up
        order = list(calls)
        for i in range(rounds):
            for name in order[i % 3 :] + order[: i % 3]:  # rotate which side goes first
                start, start_cpu, start_own = time.perf_counter(), cpu_now(), time.process_time()
                calls[name]()
                times[name].append(time.perf_counter() - start)
                cpu[name] += cpu_now() - start_cpu
                client_cpu[name] += time.process_time() - start_own
        client.close()
    times["answers_equal"] = [float(len(set(texts.values())) == 1)]
    times |= {f"cpu_{name}": [total / rounds] for name, total in cpu.items()}
    times |= {f"client_cpu_{name}": [total / rounds] for name, total in client_cpu.items()}
    return times


def _model_rows(label: str, path: Path, dtype: str, work: Path) -> list[tuple[str, float, str, str]]:
    rows: list[tuple[str, float, str, str]] = []
    linked = _linked_copy(path, work / f"{label}-model")
    # transformers serve without continuous batching answers one request at a time: its requests/s is flat over
    # the levels (the tiny model shows it) and 64 SmolLM2 requests in a row would take minutes
    targets = _transformers_targets(linked, dtype, CLIENTS if label == "tiny" else (1,))
    why_not = _aigc_serve_available()
    if why_not is None:
        targets.insert(0, _aigc_target(linked, dtype, work))
    else:
        rows.append((f"{label}: aigc serve SKIPPED ({why_not})", 0.0, "", ""))
    levels = {t.name: measure(t, work, REPEATS[label]) for t in targets}
    for name, by_n in levels.items():
        for level in by_n.values():
            empty = [p for p, a in level.answers.items() if not a.strip()]
            if empty:
                raise RuntimeError(f"{name} gave empty answers on {label} for {empty[:3]}")
    for n in CLIENTS:
        for name, by_n in levels.items():
            if n not in by_n:
                continue
            level = by_n[n]
            rows.append((f"{label} c={n}: {name} requests/s", level.requests_per_s, "req/s", ""))
            rows.append((f"{label} c={n}: {name} TTFT p50", level.ttft_ms(0.5), "ms", ""))
            rows.append((f"{label} c={n}: {name} TTFT p95", level.ttft_ms(0.95), "ms", ""))
            if n == max(CLIENTS):
                rows.append((f"{label} c={n}: {name} client CPU/wall", level.cpu / level.wall, "x", ""))
        theirs = [by_n[n].requests_per_s for name, by_n in levels.items() if name != "aigc" and n in by_n]
        if "aigc" in levels and theirs:
            ratio = levels["aigc"][n].requests_per_s / max(theirs)
            rows.append((f"{label} c={n}: aigc / best tf req/s", ratio, "x", "> 1" if n > 1 else ""))
    rows += _agreement(label, levels)
    return rows


def _agreement(label: str, levels: dict[str, dict[int, Level]]) -> list[tuple[str, float, str, str]]:
    """Greedy answers: each server against aigc (sequential), and each server's concurrent against sequential.

    Differing answers are printed to stderr (the common prefix, then each side's next characters)."""
    rows: list[tuple[str, float, str, str]] = []
    common = PROMPTS[: REQUESTS[1]]
    reference = levels.get("aigc", next(iter(levels.values())))[1].answers
    for name, by_n in levels.items():
        if by_n[1].answers is not reference:
            same = [p for p in common if by_n[1].answers[p] == reference[p]]
            rows.append((f"{label}: {name} = aigc answers (c=1)", len(same), f"of {len(common)}", str(len(common))))
            for p in common:
                _report_difference(f"{label}, {name} vs aigc, c=1", p, reference[p], by_n[1].answers[p])
        pairs = [(n, p) for n in by_n if n != 1 for p in common]
        if pairs:
            same = sum(by_n[n].answers[p] == by_n[1].answers[p] for n, p in pairs)
            rows.append((f"{label}: {name} batched = c=1 answers", same, f"of {len(pairs)}", ""))
            for n, p in pairs:
                _report_difference(f"{label}, {name} c={n} vs c=1", p, by_n[1].answers[p], by_n[n].answers[p])
    return rows


def _report_difference(where: str, prompt: str, a: str, b: str) -> None:
    if a != b:
        at = next((a[:i] for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), a[: min(len(a), len(b))])
        print(
            f"differ ({where}) on {prompt!r}: same {at!r}, then {a[len(at) :][:30]!r} | {b[len(at) :][:30]!r}",
            file=sys.stderr,
        )


def _overhead_rows(label: str, path: Path, dtype: str, work: Path) -> list[tuple[str, float, str, str]]:
    times = overhead(path, dtype, work, OVERHEAD_ROUNDS[label])
    direct = times["direct"]
    rows = [(f"{label}: direct invoke, median", statistics.median(direct) * 1000, "ms", "")]
    for kind in ("json", "stream"):
        diffs = [s - d for s, d in zip(times[kind], direct, strict=True)]
        rows.append((f"{label}: serve overhead, {kind}", statistics.median(diffs) * 1000, "ms", ""))
    rows.append((f"{label}: direct invoke, CPU per call", times["cpu_direct"][0] * 1000, "ms", ""))
    for kind in ("json", "stream"):
        extra = (times[f"cpu_{kind}"][0] - times["cpu_direct"][0]) * 1000
        rows.append((f"{label}: serve CPU overhead, {kind}", extra, "ms", ""))
        client = times[f"client_cpu_{kind}"][0] * 1000
        rows.append((f"{label}: of which openai client, {kind}", client, "ms", ""))
    rows.append((f"{label}: serve = direct answer", times["answers_equal"][0], "bool", "1"))
    return rows


def run() -> list[tuple[str, float, str, str]]:
    """All figures as (metric, value, unit, goal)."""
    from chains.model_store import cached_path
    from chains.testing import build_tiny_model

    wanted = os.environ.get("AIGC_BENCH_SERVE_MODELS", "tiny,smollm2").split(",")
    rows: list[tuple[str, float, str, str]] = [("load average (1 min), at start", os.getloadavg()[0], "", "")]
    rows.append(("torch threads per process", float(THREADS), "", ""))
    work = Path(tempfile.mkdtemp(prefix="aigc-bench-serve-"))
    busy, ours, start = _busy_cpu(), _own_cpu(), time.perf_counter()
    try:
        models: list[tuple[str, Path, str]] = []
        if "tiny" in wanted:
            models.append(("tiny", build_tiny_model(work / "tiny-llm"), "float32"))
        if "smollm2" in wanted:
            smollm2 = cached_path("smollm2-135m-instruct")
            if smollm2 is None:
                rows.append(("SmolLM2 SKIPPED: not in the model cache (aigc models pull smollm2)", 0.0, "", ""))
            else:
                models.append(("smollm2", Path(smollm2), "bfloat16"))
        for label, path, dtype in models:
            rows += _model_rows(label, path, dtype, work)
            if _aigc_serve_available() is None:
                rows += _overhead_rows(label, path, dtype, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    others = (_busy_cpu() - busy - (_own_cpu() - ours)) / (time.perf_counter() - start)
    rows.append(("load average (1 min), at end", os.getloadavg()[0], "", ""))
    rows.append(("other processes' CPU during the run", others, "cores", ""))
    return rows


def _busy_cpu() -> float:
    """CPU seconds the whole machine has spent busy (every process)."""
    import psutil

    times = psutil.cpu_times()
    return (
        times.user
        + times.system
        + getattr(times, "nice", 0.0)
        + getattr(times, "irq", 0.0)
        + getattr(times, "softirq", 0.0)
    )


def _own_cpu() -> float:
    """CPU seconds of this process and of the servers it started and waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from rich.console import Console
    from rich.table import Table

    results = run()
    table = Table("metric", "value", "unit", "goal", title="aigc serve against transformers serve")
    for metric, value, unit, goal in results:
        table.add_row(metric, f"{value:,.3f}" if value < 100 else f"{value:,.0f}", unit, goal)
    Console(width=80).print(table)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "serve.json").write_text(
        json.dumps([dict(zip(("metric", "value", "unit", "goal"), r, strict=True)) for r in results], indent=2)
    )
