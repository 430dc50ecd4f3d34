"""``aigc report RUN``: a stored run (or a JSON report) as a terminal summary, Markdown, HTML, JSON or JUnit XML."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from aigc_app.results import RunResults

__all__ = ["report_cmd"]

STORE_ENV = "AIGC_STORE"
REPORTS_DIR = Path(".aigc/reports")
_BY_SUFFIX = {".html": "html", ".htm": "html", ".md": "md", ".json": "json", ".xml": "junit", ".txt": "terminal"}


def _load(ref: str, store_path: Path | None) -> RunResults:
    """The run ``ref`` from the store, or a JSON report file read back."""
    from aigc_app.reports import ReportError

    if ref.endswith(".json") and Path(ref).is_file():
        from aigc_app.reports.json_report import from_dict

        try:
            return from_dict(json.loads(Path(ref).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReportError(f"{ref}: cannot read it as an aigc JSON report ({exc}); "
                              f"make one with `aigc report RUN --format json -o {ref}`") from None  # fmt: skip
    from aigc_app.store import ResultsStore, default_store_path  # imported late: `aigc --help` must not open SQLite

    path = store_path or default_store_path()
    if not path.exists():  # reporting never creates a store
        raise ReportError(f"no results store at {path}: run `aigc eval SUITE` first, or pass --store PATH")
    with ResultsStore(path) as store:
        return store.load_run(ref)


@click.command("report")
@click.argument("run", default="latest")
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["terminal", "md", "html", "json", "junit"]),
    help="Report format [default: from the -o suffix (.html .md .json .xml), else terminal].",
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the report here (parent folders made).")
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=STORE_ENV,
    help=f"Results store [default: ${STORE_ENV} or .aigc/results.db].",
)
def report_cmd(run: str, fmt: str | None, output: Path | None, store_path: Path | None) -> None:
    """Report on RUN: a run id, a unique prefix of one, `latest` (the default), or a JSON report file.

    terminal, md and json print to stdout unless -o is given; html and junit are written to -o, by default
    .aigc/reports/<run>.html / .xml, and the path is printed.
    """
    from aigc_app.cli.output import console
    from aigc_app.reports import EXTENSIONS, render, write_report

    if fmt is None:
        fmt = _BY_SUFFIX.get(output.suffix.lower(), "terminal") if output else "terminal"
    results = _load(run, store_path)
    if output is None and fmt in ("html", "junit"):
        output = REPORTS_DIR / f"{results.info.run_id}.{EXTENSIONS[fmt]}"
    if output is None:
        if fmt == "terminal":
            from aigc_app.reports.terminal import renderables

            for part in renderables(results):
                console().print(part)
        else:
            sys.stdout.write(render(results, fmt))  # type: ignore[arg-type]
        return
    path = write_report(results, fmt, output)  # type: ignore[arg-type]
    console().print(f"{fmt} report written to {path}")
