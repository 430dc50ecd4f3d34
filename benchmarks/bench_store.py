"""Results store costs: write overhead per case (3 evaluator scores each), a 20,000-case run loaded back (time and
peak memory, in a fresh process), the file's size, and the lookups a warm re-run and a resume make.

python benchmarks/bench_store.py        # prints a table, writes benchmarks/results/store.json
python benchmarks/run.py store          # the same figures in the combined table
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_CASES = 20_000
WRITE_SAMPLE = 2_000  # cases timed one by one for the per-case figure (the rest of the 20,000 are timed in bulk)
RUN_ID = "r20261201-000000-bench"

# Realistic sizes: a system and a user message (~600 characters), a ~900-character answer, three scores.
SYSTEM = "You are a senior copywriter. Follow the brand-safety rules: no claims you cannot back up. " * 4
ANSWER = "Meet the Aurora running jacket: waterproof, reflective, and it packs into its own pocket. " * 10

# Peak RSS from /proc (VmHWM): ru_maxrss would carry over the parent's peak across fork and exec.
LOADER = """
import gc, json, resource, sys, time, tracemalloc
from aigc_app.store import ResultsStore

def kb(field):
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

store = ResultsStore(sys.argv[1])
store.get_run(sys.argv[2])  # imports and the connection are paid before the baseline
before = kb("VmRSS")
start = time.perf_counter()
cpu = time.process_time()
results = store.load_run(sys.argv[2])
seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
after = kb("VmHWM")
counts = len(results.cases), sum(len(c.scores) for c in results.cases)
del results
gc.collect()
tracemalloc.start()
results = store.load_run(sys.argv[2])
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"cases": counts[0], "scores": counts[1], "seconds": seconds, "cpu_seconds": cpu_seconds,
                  "traced_peak": traced, "rss_before_kb": before, "rss_peak_kb": after}))
"""


def _case(i: int):
    from aigc_app.results import CaseResult, ScoreRow

    scores = (
        ScoreRow("length", "2", 0.9, True, threshold=0.5, reason="within 50-200 words", details={"words": 120}),
        ScoreRow("toxicity", "2", 0.02, True, threshold=0.5, reason="no flagged terms"),
        ScoreRow("adherence", "1", 0.75, i % 4 != 0, threshold=0.8, reason="missed one required keyword"),
    )
    return CaseResult(
        run_id=RUN_ID,
        case_id=f"case-{i // 4:05d}",
        prompt_name="marketing/ad_copy",
        prompt_version=("1.0.0", "1.1.0")[i % 2],
        prompt_hash=("h100", "h110")[i % 2],
        model=("openai:gpt-4o-mini", "hf:smollm2")[(i // 2) % 2],
        params={"temperature": 0.7, "max_tokens": 256},
        seed=7,
        inputs={"brand": "Aurora", "product": f"product {i // 4}", "audience": "urban runners"},
        messages=(
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Write 3 ad variants for product {i // 4}."},
        ),
        tags=("marketing",),
        output=ANSWER + str(i),
        latency_s=0.8,
        tokens_in=180,
        tokens_out=220,
        cost_usd=0.0002,
        backend="openai",
        scores=scores,
        created_at=time.time(),
    )


def write_figures(path: Path) -> dict[str, float]:
    """Record RUN_CASES cases one committed transaction each; the first WRITE_SAMPLE are timed one by one."""
    from aigc_app.results import RunInfo
    from aigc_app.store import ResultsStore

    cases = [_case(i) for i in range(RUN_CASES)]
    times = []
    with ResultsStore(path) as store:
        store.create_run(RunInfo(RUN_ID, "bench", "running", time.time(), planned=RUN_CASES))
        for case in cases[:WRITE_SAMPLE]:
            start = time.perf_counter()
            store.record_case(case)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        for case in cases[WRITE_SAMPLE:]:
            store.record_case(case)
        bulk = (time.perf_counter() - start) / (RUN_CASES - WRITE_SAMPLE)
        start = time.perf_counter()
        for case in cases[:1000]:
            store.record_case(case)  # a resume re-recording what is there: nothing is written
        again = (time.perf_counter() - start) / 1000
        lookups = _lookup_figures(store, cases)
    return {
        "median_ms": statistics.median(times) * 1e3,
        "p99_ms": sorted(times)[int(len(times) * 0.99)] * 1e3,
        "mean_ms_at_20k": bulk * 1e3,
        "again_ms": again * 1e3,
        **lookups,
    }


def _lookup_figures(store, cases) -> dict[str, float]:
    from aigc_app.store.codec import case_keys

    keys = [case_keys(c) for c in cases[:2000]]
    start = time.perf_counter()
    for key, _ in keys:
        assert store.find_generation(key) is not None
    find_generation = (time.perf_counter() - start) / len(keys)
    start = time.perf_counter()
    found = store.find_scores(k for _, score_keys in keys for k in score_keys)
    find_scores = (time.perf_counter() - start) / len(keys)
    assert len(found) == 3 * len(keys)
    start = time.perf_counter()
    slots = store.done_slots(RUN_ID)
    done_slots = time.perf_counter() - start
    assert len(slots) == RUN_CASES
    return {
        "find_generation_us": find_generation * 1e6,
        "find_scores_us": find_scores * 1e6,
        "done_slots_s": done_slots,
    }


def load_figures(path: Path) -> dict[str, float]:
    """load_run of the whole run in a fresh process: seconds, and peak RSS and traced Python allocations."""
    out = subprocess.run(
        [sys.executable, "-c", LOADER, str(path), RUN_ID], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    figures = json.loads(out)
    assert figures["cases"] == RUN_CASES and figures["scores"] == 3 * RUN_CASES
    return figures


def measure() -> dict[str, float]:
    """Every figure, on a store in a temporary folder."""
    from aigc_app.store import ResultsStore

    with tempfile.TemporaryDirectory(prefix="aigc-bench-store-") as tmp:
        path = Path(tmp) / "results.db"
        write = write_figures(path)
        ResultsStore(path).close()  # the last connection to close checkpoints the WAL into the file
        size = path.stat().st_size
        load = load_figures(path)
    return {
        **write,
        "load_s": load["seconds"],
        "load_cpu_s": load["cpu_seconds"],
        "rss_peak_mb": load["rss_peak_kb"] / 1024,
        "rss_growth_mb": (load["rss_peak_kb"] - load["rss_before_kb"]) / 1024,
        "traced_peak_mb": load["traced_peak"] / 2**20,
        "db_mb": size / 2**20,
        "db_kb_per_case": size / 1024 / RUN_CASES,
    }


def run() -> list[tuple[str, float, str, str]]:
    """All figures as (metric, value, unit, goal)."""
    f = measure()
    n = f"{RUN_CASES:,}"
    return [
        ("record_case (3 scores), median of 2,000", f["median_ms"], "ms/case", "< 2"),
        ("record_case (3 scores), p99 of 2,000", f["p99_ms"], "ms/case", ""),
        (f"record_case, mean over cases 2,001-{n}", f["mean_ms_at_20k"], "ms/case", "< 2"),
        ("record_case again (resume, nothing written)", f["again_ms"], "ms/case", ""),
        ("find_generation (warm re-run lookup)", f["find_generation_us"], "us", ""),
        ("find_scores, per case of 3 keys", f["find_scores_us"], "us", ""),
        (f"done_slots of a {n}-case run", f["done_slots_s"], "s", ""),
        (f"load_run, {n} cases x 3 scores (wall)", f["load_s"], "s", "< 2"),
        (f"load_run, {n} cases x 3 scores (CPU)", f["load_cpu_s"], "s", ""),
        (f"load_run peak RSS (fresh process), {n} cases", f["rss_peak_mb"], "MB", "< 350 (promptfoo at 21,420)"),
        ("load_run RSS growth over the imports", f["rss_growth_mb"], "MB", ""),
        ("load_run peak traced Python allocations", f["traced_peak_mb"], "MB", ""),
        (f"store file, {n} cases", f["db_mb"], "MB", ""),
        ("store file per case", f["db_kb_per_case"], "KB", ""),
    ]


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    rows = run()
    table = Table("metric", "value", "unit", "goal", title="aigc results store")
    for metric, value, unit, goal in rows:
        table.add_row(metric, f"{value:,.3f}" if value < 100 else f"{value:,.0f}", unit, goal)
    Console().print(table)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    payload = [{"metric": m, "value": v, "unit": u, "goal": g} for m, v, u, g in rows]
    (out / "store.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
