"""The Ray executor against the local one, and the cluster-wide token bucket. One command, no network.

(a) 2,000 cases (marketing/social_post, the rule-based adherence checks) against the scripted OpenAI-compatible
    server in its own process, answering after 100 ms: the local asyncio executor at concurrency 16, then the Ray
    executor with 2 worker actors sharing the same total concurrency of 16 (one limiter actor). Wall time of each,
    their ratio (goal: Ray within 15%), and the same ratio over the run only (from the first case recorded to the
    last, so without the workers' start-up).
(b) Scheduling overhead: the Ray executor's extra wall time per case, and the round trip of one limiter call
    pair (acquire + release, the RPCs added to each generation) measured alone.
(c) The token bucket: 4 workers, ``requests_per_minute: 600``, concurrency 16, ~45 s of requests; the rate the
    server saw (timestamps of its requests, first to last) against 600.

python benchmarks/bench_ray.py          # prints a table, writes benchmarks/results/ray.json
python benchmarks/run.py ray            # the same, into benchmarks/results/latest.json
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local cluster

ROOT = Path(__file__).resolve().parent.parent
CASES = 2000
LATENCY_S = 0.1
CONCURRENCY = 16
BUCKET_RPM = 600
BUCKET_REQUESTS = 450  # ~45 s at 600 a minute

SERVER = """
import sys, time
from chains.testing import Answer, OpenAIServer
log = open(sys.argv[2], "a", buffering=1)
TEXT = ("Lisbon, we are here. Our new office opens on Monday with room for forty people, a rooftop for "
        "Friday demos and coffee from the roaster next door. Come and say hello. #Lisbon #NewOffice")
def responder(request):
    log.write(f"{time.time()}\\n")
    return Answer(content=TEXT, delay_s=float(sys.argv[3]))
with OpenAIServer(port=int(sys.argv[1]), responder=responder) as server:
    print(server.base_url, flush=True)
    time.sleep(86400)
"""


class Server:
    """The scripted server in its own process; ``times`` are the arrival times of its chat requests."""

    def __init__(self, workdir: Path, latency_s: float) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.log = workdir / f"requests-{port}.log"
        self.log.touch()
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(self.log), str(latency_s)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)  # fmt: skip
        self.base_url = self.proc.stdout.readline().strip()

    @property
    def times(self) -> list[float]:
        return [float(line) for line in self.log.read_text().splitlines() if line]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Clock:
    """A reporter that keeps when each case was recorded."""

    def __init__(self) -> None:
        self.stamps: list[float] = []
        self.began = 0.0

    def start(self, total: int, done: int) -> None:
        pass

    def case(self, case: object) -> None:
        self.stamps.append(time.perf_counter())

    def note(self, text: str) -> None:
        pass

    def stop(self) -> None:
        pass

    @property
    def run_s(self) -> float:
        return self.stamps[-1] - self.stamps[0]

    @property
    def first_s(self) -> float:
        return self.stamps[0] - self.began


def _suite(cases: int, name: str):
    from aigc_app.runner import EvalSuite

    topics = ["our new office in Lisbon", "a free webinar", "the spring release", "a customer story"]
    return EvalSuite.model_validate({
        "name": name,
        "prompts": ["marketing/social_post"],
        "models": ["openai:gpt-test"],
        "evaluators": [{"evaluator": "adherence"}],
        "params": {"temperature": 0, "max_tokens": 120},
        "cases": [{"id": f"case-{i:04d}", "vars": {"platform": "linkedin", "topic": f"{topics[i % 4]} (#{i})"}}
                  for i in range(cases)],
    })  # fmt: skip


def _config(base_url: str, **router):
    from chains import ModelsConfig

    return ModelsConfig.model_validate({"openai": {"base_url": base_url, "api_key": "sk-bench"}, "router": router})


def _timed(fn, *args, **kwargs) -> tuple[float, Clock]:
    from aigc_app.runner import RunOptions

    clock = Clock()
    options = RunOptions(concurrency=kwargs.pop("concurrency", CONCURRENCY), reporter=clock, no_cache=True)
    start = clock.began = time.perf_counter()
    results = fn(*args, options=options, **kwargs)
    wall = time.perf_counter() - start
    assert results.info.status == "finished" and len(results.cases) == len(clock.stamps), results.info
    return wall, clock


def _limiter_round_trip(calls: int = 500) -> float:
    """Milliseconds for one acquire + release on a limiter actor, from this driver."""
    import ray

    from aigc_app.runner.ray_executor import _Limiter

    limiter = ray.remote(_Limiter).options(num_cpus=0).remote(CONCURRENCY, None)

    async def loop() -> float:
        await limiter.acquire.remote(0, "bench")
        await limiter.release.remote("bench")
        start = time.perf_counter()
        for _ in range(calls):
            await limiter.acquire.remote(0, "bench")
            await limiter.release.remote("bench")
        return (time.perf_counter() - start) / calls * 1000

    try:
        return asyncio.run(loop())
    finally:
        ray.kill(limiter)


def run() -> list[tuple[str, float, str, str]]:
    import ray

    from aigc_app.runner import run_suite
    from aigc_app.runner.ray_executor import run_suite_ray
    from aigc_app.store import ResultsStore

    rows: list[tuple[str, float, str, str]] = []
    ray.init(num_cpus=4, include_dashboard=False, logging_level="error", log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="aigc-bench-ray-") as tmp:
        work = Path(tmp)
        server = Server(work, LATENCY_S)
        try:
            config = _config(server.base_url)
            with ResultsStore(work / "warm.db") as store:  # imports, bytecode, worker processes in Ray's pool
                run_suite_ray(_suite(40, "warm"), config=config, store=store, workers=2, options=None)
            suite = _suite(CASES, "bench")
            ideal = CASES * LATENCY_S / CONCURRENCY
            with ResultsStore(work / "local.db") as store:
                local, local_clock = _timed(run_suite, suite, config=config, store=store)
            with ResultsStore(work / "ray.db") as store:
                distributed, ray_clock = _timed(run_suite_ray, suite, config=config, store=store, workers=2)
            rows += [
                (f"local executor, {CASES} cases, c={CONCURRENCY}: wall", local, "s", f"ideal {ideal:.1f}"),
                (f"ray executor, 2 workers, c={CONCURRENCY} in all: wall", distributed, "s", ""),
                ("ray / local wall", distributed / local, "x", "< 1.15"),
                ("ray / local, run only (first to last case)", ray_clock.run_s / local_clock.run_s, "x", "< 1.15"),
                ("local: call to first case recorded", local_clock.first_s, "s", ""),
                ("ray: call to first case recorded (workers start, import, connect)", ray_clock.first_s, "s", ""),
                ("ray overhead per case (wall difference / cases)", (distributed - local) / CASES * 1000, "ms", ""),
                ("ray overhead per case, run only", (ray_clock.run_s - local_clock.run_s) / CASES * 1000, "ms", ""),
                ("limiter round trip (acquire + release)", _limiter_round_trip(), "ms", ""),
            ]
            rows += _bucket(work)
        finally:
            server.close()
            ray.shutdown()
    return rows


def _bucket(work: Path) -> list[tuple[str, float, str, str]]:
    from aigc_app.runner.ray_executor import run_suite_ray
    from aigc_app.store import ResultsStore

    server = Server(work, LATENCY_S)
    try:
        limits = {"openai:gpt-test": {"requests_per_minute": BUCKET_RPM}}
        with ResultsStore(work / "bucket.db") as store:
            _timed(run_suite_ray, _suite(BUCKET_REQUESTS, "bucket"), config=_config(server.base_url,
                   rate_limits=limits), store=store, workers=4)  # fmt: skip
        times = sorted(server.times)
    finally:
        server.close()
    burst = BUCKET_RPM / 60  # the bucket starts full: one second's worth at once, then the rate
    steady = times[int(burst) :]
    rate = (len(steady) - 1) / (steady[-1] - steady[0]) * 60
    return [
        (f"token bucket {BUCKET_RPM}/min, 4 workers: measured over {steady[-1] - steady[0]:.0f} s", rate, "req/min",
         f"{BUCKET_RPM} +- 5%"),
        ("token bucket: error", abs(rate - BUCKET_RPM) / BUCKET_RPM * 100, "%", "< 5"),
    ]  # fmt: skip


if __name__ == "__main__":
    figures = run()
    for metric, value, unit, goal in figures:
        print(f"{metric:60s} {value:10.3f} {unit:8s} {goal}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "ray.json").write_text(json.dumps([dict(zip(("metric", "value", "unit", "goal"), r, strict=True))
                                              for r in figures], indent=2))  # fmt: skip
