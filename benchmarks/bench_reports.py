"""Report build times and sizes at 20,000 case rows (HTML, Markdown, JSON, JUnit, terminal), and, when Debian's
Chromium and Playwright are here, the HTML page's load and filter times in headless Chromium.

python benchmarks/bench_reports.py          # prints a table, writes benchmarks/results/reports.json
python benchmarks/run.py reports            # the same rows in the combined table
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aigc_app.reports import render, write_report
from aigc_app.reports.sample import sample_results

CASES = 20_000
REPEATS = 3
CHROMIUM = Path("/usr/bin/chromium")


def _best_of(fn, repeats: int = REPEATS) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def builds(cases: int = CASES) -> list[tuple[str, float, str, str]]:
    """Build time (best of 3) and size of each format for a synthetic run of ``cases`` rows."""
    results = sample_results(cases)
    render(sample_results(8), "terminal")  # warm up: statsmodels and rich import once
    rows = []
    for fmt in ("html", "md", "json", "junit", "terminal"):
        seconds, text = _best_of(lambda fmt=fmt: render(results, fmt))
        goal = "< 5 s" if fmt == "html" else ""
        rows.append((f"{fmt}: build, {len(results.cases):,} cases", seconds, "s", goal))
        rows.append((f"{fmt}: size, {len(results.cases):,} cases", len(text.encode()) / 1e6, "MB", ""))
    return rows


def browser(cases: int = CASES) -> list[tuple[str, float, str, str]]:
    """Load and filter times of the HTML page in headless Chromium (empty when no browser is installed)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return []
    if not CHROMIUM.exists():
        return []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        path = write_report(sample_results(cases), "html", Path(tmp) / "r.html")
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = chromium.new_page()
        start = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        load = time.perf_counter() - start
        filters = page.evaluate(
            """() => {
            const q = document.getElementById("q"), out = [];
            for (const text of ["northwind", "made to last", "case-0123", "zzz-no-match", ""]) {
              const t0 = performance.now(); q.value = text; q.dispatchEvent(new Event("input"));
              out.push(performance.now() - t0);
            }
            return out;
        }"""
        )
        chromium.close()
    return [
        (f"html: open in Chromium until interactive, {cases:,} cases", load, "s", ""),
        (f"html: text filter over {cases:,} rows, median of 5", statistics.median(filters), "ms", "< 1000 ms"),
        (f"html: text filter over {cases:,} rows, worst of 5", max(filters), "ms", "< 1000 ms"),
    ]


def run() -> list[tuple[str, float, str, str]]:
    """Rows for benchmarks/run.py: (metric, value, unit, goal)."""
    return builds() + browser()


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    rows = run()
    table = Table("metric", "value", "unit", "goal", title=f"report benchmarks ({CASES:,} cases)")
    for metric, value, unit, goal in rows:
        table.add_row(metric, f"{value:,.3f}" if value < 100 else f"{value:,.0f}", unit, goal)
    Console().print(table)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "reports.json").write_text(
        json.dumps([{"metric": m, "value": v, "unit": u, "goal": g} for m, v, u, g in rows], indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
