"""Run every benchmark and print one table; figures also go to benchmarks/results/latest.json.

python benchmarks/run.py            # all
python benchmarks/run.py prompts    # one group
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
from pathlib import Path

GROUPS = ["prompts", "chains", "evaluators", "local", "store", "router", "reports", "eval", "rag", "serve", "ray"]


def main(selected: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    sys.path.insert(0, str(Path(__file__).parent))
    console = Console()
    table = Table(
        "group",
        "metric",
        "value",
        "unit",
        "goal",
        title=f"aigc benchmarks ({platform.processor() or platform.machine()}, {_cpus()} CPUs)",
    )
    results = []
    for group in selected or GROUPS:
        with console.status(f"running {group} benchmarks"):
            rows = importlib.import_module(f"bench_{group}").run()
        for metric, value, unit, goal in rows:
            table.add_row(group, metric, f"{value:,.3f}" if value < 100 else f"{value:,.0f}", unit, goal)
            results.append({"group": group, "metric": metric, "value": value, "unit": unit, "goal": goal})
    console.print(table)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    latest = out / "latest.json"  # groups run now replace their earlier figures; the others are kept
    ran = {row["group"] for row in results}
    kept = [row for row in json.loads(latest.read_text()) if row["group"] not in ran] if latest.exists() else []
    latest.write_text(json.dumps(kept + results, indent=2))


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    main(sys.argv[1:])
