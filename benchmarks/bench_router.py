"""The router's own cost at eval concurrency, side by side with the raw ``openai`` client, against one server.

python benchmarks/bench_router.py          # table; figures also go to benchmarks/results/router.json
python benchmarks/run.py router            # the same figures in the shared benchmark table

Paths compared (each against the same local OpenAI-compatible server, 0 ms latency, so only client overhead shows):
  sequential: milliseconds per call, one call after another (sync API)
    raw ``openai.OpenAI``, LangChain's ``ChatOpenAI.invoke``, our ``Router.invoke`` over the openai backend built by
    ``Router.from_config`` (as the CLI and the runner build it), ``litellm.Router.completion`` when installed
  concurrent: calls per second with 64 async calls in flight (one event loop)
    raw ``openai.AsyncOpenAI``, ``ChatOpenAI.ainvoke``, ``Router.ainvoke``, ``litellm.Router.acompletion``

The server (``chains.testing.OpenAIServer``: stdlib, thread per connection) runs in its own process so that it does
not share the client's GIL. Its capacity is probed with a lean client (raw asyncio sockets over 64 keep-alive
connections, a prebuilt request): when that reaches well above the raw client's throughput, the server is not the
bottleneck and the ratios measure client overhead. Paths take turns within each round (a block of sequential
calls, or a concurrent burst, each followed by a short pause so that one path's background threads do not bill the
next); every ratio is taken within a round, then the median over rounds is reported, so each path sees the same
machine state. The client's CPU time per call (``time.process_time``) is reported beside
the wall-clock figures: on a shared machine it is the steadier measure of overhead.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "gpt-test"
KEY = "sk-bench"
PROMPT = "Write a tagline for trail shoes."
CONCURRENCY = 64
ROUNDS = int(os.environ.get("AIGC_BENCH_ROUNDS", "7"))
SEQUENTIAL_CALLS = int(os.environ.get("AIGC_BENCH_SEQ_CALLS", "60"))  # per path per round
CONCURRENT_CALLS = int(os.environ.get("AIGC_BENCH_CONC_CALLS", "640"))  # per path per round, 64 in flight
SETTLE_S = 0.3  # pause after each path's block or burst
RESULTS = Path(os.environ.get("AIGC_BENCH_ROUTER_OUT", Path(__file__).parent / "results" / "router.json"))


# -- the server, in its own process ---------------------------------------------------------------------------


class ServerProcess:
    """``python -m chains.testing.openai_server --port 0`` in a subprocess; ``base_url`` once it is listening."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> ServerProcess:
        command = [sys.executable, "-m", "chains.testing.openai_server", "--port", "0"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if "http://" not in line:
            self.process.kill()
            raise RuntimeError(f"the test server did not start: {line!r}")
        self.base_url = line.split(" on ", 1)[1].split()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


# -- the paths ------------------------------------------------------------------------------------------------


def sequential_paths(base_url: str) -> dict[str, Callable[[], Any]]:
    """One blocking call each, by name."""
    import openai
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI

    raw_messages = [{"role": "user", "content": PROMPT}]
    messages = [HumanMessage(PROMPT)]
    client = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    chat = ChatOpenAI(model=MODEL, base_url=base_url, api_key=KEY, max_retries=0)
    router = our_router(base_url)
    paths: dict[str, Callable[[], Any]] = {
        "openai": lambda: client.chat.completions.create(model=MODEL, messages=raw_messages),
        "ChatOpenAI": lambda: chat.invoke(messages),
        "Router": lambda: router.invoke(messages),
    }
    if (lite := litellm_router(base_url)) is not None:
        paths["litellm.Router"] = lambda: lite.completion(model=MODEL, messages=raw_messages)
    return paths


def concurrent_paths(base_url: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One async call each, by name (created inside the running loop)."""
    import openai
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI

    raw_messages = [{"role": "user", "content": PROMPT}]
    messages = [HumanMessage(PROMPT)]
    client = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    chat = ChatOpenAI(model=MODEL, base_url=base_url, api_key=KEY, max_retries=0)
    router = our_router(base_url)
    paths: dict[str, Callable[[], Awaitable[Any]]] = {
        "openai": lambda: client.chat.completions.create(model=MODEL, messages=raw_messages),
        "ChatOpenAI": lambda: chat.ainvoke(messages),
        "Router": lambda: router.ainvoke(messages),
    }
    if (lite := litellm_router(base_url)) is not None:
        paths["litellm.Router"] = lambda: lite.acompletion(model=MODEL, messages=raw_messages)
    return paths


def our_router(base_url: str) -> Any:
    """The Router as ``aigc`` builds it from configuration: the openai backend, default retry policy."""
    from chains import ModelsConfig, Router

    config = ModelsConfig.model_validate(
        {"openai": {"base_url": base_url, "api_key": KEY, "model": MODEL}, "router": {"default": f"openai:{MODEL}"}}
    )
    return Router.from_config(config)


def litellm_router(base_url: str) -> Any | None:
    """``litellm.Router`` over the same server, or None when litellm is not installed (it is optional)."""
    if os.environ.get("AIGC_BENCH_LITELLM", "1") == "0":
        return None
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: no fetch of the price list
    try:
        import litellm
    except ImportError:
        return None
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    params = {"model": f"openai/{MODEL}", "api_base": base_url, "api_key": KEY}
    return litellm.Router(model_list=[{"model_name": MODEL, "litellm_params": params}], num_retries=0)


# -- measuring ------------------------------------------------------------------------------------------------


def sequential_block(call: Callable[[], Any], n: int) -> tuple[float, float]:
    """(median wall ms per call, client CPU ms per call) over ``n`` calls one after another, after a warm-up."""
    for _ in range(5):
        call()
    wall = []
    cpu_start = time.process_time()
    for _ in range(n):
        start = time.perf_counter()
        call()
        wall.append(time.perf_counter() - start)
    cpu = (time.process_time() - cpu_start) / n * 1000
    time.sleep(SETTLE_S)  # let background work (litellm logs each call on a thread) finish before the next path
    return statistics.median(wall) * 1000, cpu


async def concurrent_burst(call: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float]:
    """(calls per second, client CPU ms per call) for ``n`` calls with CONCURRENCY in flight."""
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    await asyncio.gather(*(call() for _ in range(CONCURRENCY)))  # warm-up: open the pool's connections
    cpu_start, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    figures = n / (time.perf_counter() - start), (time.process_time() - cpu_start) / n * 1000
    await asyncio.sleep(SETTLE_S)
    return figures


async def server_capacity(base_url: str, n: int) -> float:
    """Requests per second the server answers to a lean client: raw sockets, keep-alive, a prebuilt request."""
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}).encode()
    request = (
        f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    left = n

    async def worker() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            while left > 0:
                left -= 1
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(_content_length(head))
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - start)


def _content_length(head: bytes) -> int:
    return next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )


def measure(rounds: int = ROUNDS) -> dict[str, Any]:
    """All figures: medians over interleaved rounds; ratios are taken within each round, then their median."""
    with ServerProcess() as server:
        paths = sequential_paths(server.base_url)
        seq = [{name: sequential_block(call, SEQUENTIAL_CALLS) for name, call in paths.items()} for _ in range(rounds)]
        conc, capacity = asyncio.run(_concurrent_rounds(server.base_url, rounds))
    names = list(paths)
    figures: dict[str, Any] = {
        "rounds": rounds,
        "sequential_calls_per_round": SEQUENTIAL_CALLS,
        "concurrent_calls_per_round": CONCURRENT_CALLS,
        "concurrency": CONCURRENCY,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "server_capacity_req_s": statistics.median(capacity),
    }
    for key, ratio_key, rows, index in (
        ("per_call_ms", "per_call_ratio", seq, 0),  # wall time: lower is better
        ("per_call_cpu_ms", "per_call_cpu_ratio", seq, 1),
        ("concurrent_calls_s", "concurrent_ratio", conc, 0),  # throughput: higher is better
        ("concurrent_cpu_ms", "concurrent_cpu_ratio", conc, 1),
    ):
        figures[key] = {name: statistics.median(r[name][index] for r in rows) for name in names}
        figures[ratio_key] = {
            name: statistics.median(r[name][index] / r["openai"][index] for r in rows) for name in names
        }
    figures["per_round"] = {"sequential": seq, "concurrent": conc, "server_capacity_req_s": capacity}
    return figures


async def _concurrent_rounds(base_url: str, rounds: int) -> tuple[list[dict[str, tuple[float, float]]], list[float]]:
    paths = concurrent_paths(base_url)
    results: list[dict[str, tuple[float, float]]] = []
    capacity: list[float] = []
    for _ in range(rounds):
        capacity.append(await server_capacity(base_url, CONCURRENT_CALLS))
        results.append({name: await concurrent_burst(call, CONCURRENT_CALLS) for name, call in paths.items()})
    return results, capacity


# -- reporting ------------------------------------------------------------------------------------------------


def run() -> list[tuple[str, float, str, str]]:
    """Figures as (metric, value, unit, goal) for benchmarks/run.py; also writes results/router.json."""
    figures = measure()
    write(figures)
    rows: list[tuple[str, float, str, str]] = [
        ("server capacity (lean client, 64 connections)", figures["server_capacity_req_s"], "req/s", "")
    ]
    for name in figures["per_call_ms"]:
        goal = ("<= 1.10", ">= 0.95") if name == "Router" else ("", "")
        rows += [
            (f"{name}: median per call", figures["per_call_ms"][name], "ms", ""),
            (f"{name}: per call vs raw openai", figures["per_call_ratio"][name], "x", goal[0]),
            (f"{name}: client CPU per call vs raw", figures["per_call_cpu_ratio"][name], "x", ""),
            (f"{name}: 64 concurrent async", figures["concurrent_calls_s"][name], "calls/s", ""),
            (f"{name}: concurrent vs raw AsyncOpenAI", figures["concurrent_ratio"][name], "x", goal[1]),
            (f"{name}: client CPU per call @64 vs raw", figures["concurrent_cpu_ratio"][name], "x", ""),
        ]
    return rows


def write(figures: dict[str, Any]) -> Path:
    """Store the figures as JSON beside the other results."""
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    return RESULTS


def table(figures: dict[str, Any]) -> Any:
    """The side-by-side table: wall-clock figures, and the client's CPU per call (steadier on a busy machine)."""
    from rich.table import Table

    out = Table(
        "client",
        "ms/call",
        "vs raw",
        "CPU vs raw",
        f"calls/s @{CONCURRENCY}",
        "vs raw",
        "CPU vs raw",
        title=f"router overhead, medians of {figures['rounds']} rounds (server capacity "
        f"{figures['server_capacity_req_s']:,.0f} req/s; {figures['cpus']} CPUs)",
    )
    for name in figures["per_call_ms"]:
        out.add_row(
            name,
            f"{figures['per_call_ms'][name]:.3f}",
            f"{figures['per_call_ratio'][name]:.2f}x",
            f"{figures['per_call_cpu_ratio'][name]:.2f}x",
            f"{figures['concurrent_calls_s'][name]:,.0f}",
            f"{figures['concurrent_ratio'][name]:.2f}x",
            f"{figures['concurrent_cpu_ratio'][name]:.2f}x",
        )
    return out


def main() -> None:
    from rich.console import Console

    figures = measure()
    path = write(figures)
    Console().print(table(figures))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
