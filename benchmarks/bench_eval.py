"""Eval runs end to end: `aigc eval` against promptfoo on the same server, warm re-runs, partial re-runs.

Every figure comes from one run on this machine, side by side:
(a) 200 cases, each one generation plus the evaluators, against the local OpenAI-compatible server (in its own
    process) answering after 100 ms: wall time of the whole `aigc eval` command against the ideal
    (cases x latency / concurrency) at concurrency 4, 16 and 64; twice, with the offline evaluator suite
    (MiniLM-based toxicity and injection included) and with the rule-based adherence checks only.
(b) promptfoo (`npm install promptfoo` into a temporary prefix) on the same 200 cases, the same server and the
    same concurrency, with a JavaScript assertion per case: our wall time over theirs and the peak memory of each.
(c) A warm re-run from the store as a fraction of the cold run, and a re-run after editing one of two prompt
    versions (only that half should reach the server).

python benchmarks/bench_eval.py            # prints a table, writes benchmarks/results/eval.json
AIGC_BENCH_NO_PROMPTFOO=1 ...              # skip the peer (no npm)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = 200
LATENCY_S = 0.1
CONCURRENCY = (4, 16, 64)
PROMPTFOO_VERSION = "0.121.20"

SERVER = """
import sys, time
from chains.testing import Answer, OpenAIServer
log = open(sys.argv[2], "a", buffering=1)
TEXT = ("Lisbon, we are here. Our new office opens on Monday with room for forty people, a rooftop for "
        "Friday demos and coffee from the roaster next door. Come and say hello. #Lisbon #NewOffice")
def responder(request):
    log.write("1\\n")
    return Answer(content=TEXT, delay_s=float(sys.argv[3]))
with OpenAIServer(port=int(sys.argv[1]), responder=responder) as server:
    print(server.base_url, flush=True)
    time.sleep(86400)
"""

TOPICS = [
    "our new office in Lisbon",
    "a free webinar on onboarding remote engineers",
    "the spring release of our budgeting app",
    "a customer story from a bakery that cut waste by 30%",
    "our first open-source library",
]


class Server:
    """The scripted OpenAI-compatible server in its own process (client and server never share a GIL)."""

    def __init__(self, workdir: Path, latency_s: float) -> None:
        self.log = workdir / "requests.log"
        self.log.touch()
        port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port), str(self.log), str(latency_s)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.base_url = self.proc.stdout.readline().strip()

    @property
    def requests(self) -> int:
        return len(self.log.read_text().splitlines())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _suite(path: Path, evaluators: str | list[dict], prompts: list[str], cases: int = CASES) -> Path:
    import yaml

    rows = [
        {"id": f"case-{i:03d}", "vars": {"platform": "linkedin", "topic": f"{TOPICS[i % len(TOPICS)]} (#{i})"}}
        for i in range(cases)
    ]
    suite = {
        "name": path.stem,
        "description": "Benchmark: social posts.",
        "prompts": prompts,
        "evaluators": evaluators,
        "params": {"temperature": 0, "max_tokens": 120},
        "cases": rows,
    }
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one command (RSS of its largest process, from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"{cmd[0]} failed ({status}): {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def _aigc(suite: Path, store: Path, concurrency: int, env: dict[str, str], cwd: Path, *extra: str):
    aigc = str(Path(sys.executable).with_name("aigc"))
    cmd = [aigc, "eval", str(suite), "--model", "openai:gpt-test", "--concurrency", str(concurrency)]
    cmd += ["--store", str(store), "--report", str(cwd / "report.html"), "--quiet", *extra]
    return _timed(cmd, env, cwd)


def _in_run(store: Path) -> float:
    """Seconds from the start to the end of the latest run, as the store records them (no process start-up)."""
    from aigc_app.store import ResultsStore

    with ResultsStore(store) as results:
        info = results.get_run("latest")
    return (info.finished_at or info.started_at) - info.started_at


def _promptfoo_bin(workdir: Path) -> Path | None:
    if os.environ.get("AIGC_BENCH_NO_PROMPTFOO") or shutil.which("npm") is None:
        return None
    prefix = workdir / "promptfoo"
    subprocess.run(
        [
            "npm",
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(prefix),
            f"promptfoo@{PROMPTFOO_VERSION}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return prefix / "node_modules" / ".bin" / "promptfoo"


def _promptfoo_config(workdir: Path, base_url: str) -> Path:
    """The same prompt (social_post rendered, the topic left as a variable), cases and server, for promptfoo."""
    import yaml

    from prompts import load_prompt

    prompt = load_prompt("marketing/social_post")
    messages = [m.to_dict() for m in prompt.render(platform="linkedin", topic="@@TOPIC@@")]
    chat = json.dumps(messages).replace("@@TOPIC@@", "{{topic}}")
    (workdir / "prompt.json").write_text(chat)
    config = {
        "prompts": ["file://prompt.json"],
        "providers": [
            {
                "id": "openai:chat:gpt-test",
                "config": {"apiBaseUrl": base_url, "apiKey": "sk-bench", "temperature": 0, "max_tokens": 120},
            }
        ],
        "defaultTest": {"assert": [{"type": "javascript", "value": "output.length > 20"}]},
        "tests": [{"vars": {"topic": f"{TOPICS[i % len(TOPICS)]} (#{i})"}} for i in range(CASES)],
    }
    path = workdir / "promptfooconfig.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _promptfoo(binary: Path, config: Path, concurrency: int, env: dict[str, str], cwd: Path):
    cmd = [str(binary), "eval", "-c", str(config), "-j", str(concurrency), "--no-cache", "--no-progress-bar"]
    cmd += ["--no-table", "-o", str(cwd / "promptfoo.json")]
    return _timed(cmd, env, cwd)


def run() -> list[tuple[str, float, str, str]]:
    rows: list[tuple[str, float, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="aigc-bench-eval-") as tmp:
        work = Path(tmp)
        server = Server(work, LATENCY_S)
        env = {
            **os.environ,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-bench",
            "PROMPTFOO_DISABLE_TELEMETRY": "1",
            "PROMPTFOO_DISABLE_UPDATE": "1",
            "PROMPTFOO_CONFIG_DIR": str(work / "promptfoo-home"),
            "OMP_NUM_THREADS": "1",
        }
        try:
            offline = _suite(work / "bench_offline.yaml", "offline", ["marketing/social_post"])
            rules = _suite(work / "bench_rules.yaml", [{"evaluator": "adherence"}], ["marketing/social_post"])
            promptfoo = _promptfoo_bin(work)
            config = _promptfoo_config(work, server.base_url) if promptfoo else None
            _aigc(rules, work / "warmup.db", 16, env, work, "--no-cache")  # first start: imports, bytecode
            for concurrency in CONCURRENCY:
                ideal = CASES * LATENCY_S / concurrency
                ours_rules, _ = _aigc(rules, work / f"r{concurrency}.db", concurrency, env, work, "--no-cache")
                ours, mem = _aigc(offline, work / f"o{concurrency}.db", concurrency, env, work, "--no-cache")
                goal = {16: "<= 1.3", 64: "<= 1.6"}.get(concurrency, "")
                run_rules, run_offline = _in_run(work / f"r{concurrency}.db"), _in_run(work / f"o{concurrency}.db")
                rows.append(
                    (f"run only (no start-up), adherence, c={concurrency}: / ideal", run_rules / ideal, "x", goal)
                )
                rows.append(
                    (f"run only (no start-up), offline, c={concurrency}: / ideal", run_offline / ideal, "x", goal)
                )
                rows.append((f"aigc eval, adherence only, c={concurrency}: wall / ideal", ours_rules / ideal, "x", ""))
                rows.append((f"aigc eval, offline suite, c={concurrency}: wall / ideal", ours / ideal, "x", ""))
                rows.append((f"aigc eval, offline suite, c={concurrency}: wall", ours, "s", ""))
                rows.append((f"aigc eval, offline suite, c={concurrency}: peak RSS", mem, "MiB", ""))
                if promptfoo and config:
                    theirs, their_mem = _promptfoo(promptfoo, config, concurrency, env, work)
                    rows.append((f"promptfoo eval, c={concurrency}: wall", theirs, "s", ""))
                    rows.append((f"promptfoo eval, c={concurrency}: peak RSS", their_mem, "MiB", ""))
                    rows.append(
                        (f"aigc (adherence) / promptfoo wall, c={concurrency}", ours_rules / theirs, "x", "< 1")
                    )
                    rows.append((f"aigc (offline) / promptfoo wall, c={concurrency}", ours / theirs, "x", "< 1"))
            rows += _reruns(work, env)
        finally:
            server.close()
    return rows


def _reruns(work: Path, env: dict[str, str]) -> list[tuple[str, float, str, str]]:
    """Cold, then warm from the store; then two prompt versions, one edited: only its half regenerates."""
    rules = [{"evaluator": "adherence"}]
    suite = _suite(work / "bench_warm.yaml", rules, ["marketing/social_post"])
    store = work / "warm.db"
    cold, _ = _aigc(suite, store, 16, env, work)
    cold_run = _in_run(store)
    warm, _ = _aigc(suite, store, 16, env, work)
    rows = [
        ("warm re-run / cold run (wall)", warm / cold, "x", "< 0.05"),
        ("warm re-run / cold run (run only, no start-up)", _in_run(store) / cold_run, "x", "< 0.05"),
        ("warm re-run: wall", warm, "s", ""),
    ]
    library = work / "library" / "marketing" / "bench_post"
    library.mkdir(parents=True)
    source = (ROOT / "prompts/library/marketing/social_post/1.1.0.jinja").read_text()
    for version in ("1.0.0", "1.1.0"):
        (library / f"{version}.jinja").write_text(
            source.replace("name: social_post", "name: bench_post").replace("version: 1.1.0", f"version: {version}")
        )
    ab = _suite(work / "bench_ab.yaml", rules, ["marketing/bench_post@1.0.0", "marketing/bench_post@1.1.0"], 100)
    env = {**env, "AIGC_PROMPTS_PATH": str(work / "library")}
    store = work / "ab.db"
    server_log = work / "requests.log"
    _aigc(ab, store, 16, env, work)
    before = len(server_log.read_text().splitlines())
    edited = library / "1.1.0.jinja"
    edited.write_text(edited.read_text().replace("{% endmessage %}", "Keep it short.\n{% endmessage %}", 1))
    _aigc(ab, store, 16, env, work)
    regenerated = len(server_log.read_text().splitlines()) - before
    rows.append(("A/B re-run after editing 1 of 2 versions: regenerated", regenerated / 200, "of all", "0.5"))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from rich.console import Console
    from rich.table import Table

    results = run()
    table = Table("metric", "value", "unit", "goal", title="aigc eval benchmarks")
    for metric, value, unit, goal in results:
        table.add_row(metric, f"{value:,.3f}", unit, goal)
    Console().print(table)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "eval.json").write_text(
        json.dumps([dict(zip(("metric", "value", "unit", "goal"), r, strict=True)) for r in results], indent=2)
    )
