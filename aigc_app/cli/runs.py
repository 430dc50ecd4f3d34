"""``aigc runs``: the results store's runs (list, show, delete, merge shards run elsewhere)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aigc_app.cli.output import console

if TYPE_CHECKING:
    from rich.table import Table

    from aigc_app.store import ResultsStore, RunSummary, VariantFigures

__all__ = ["runs_group"]

STORE_ENV = "AIGC_STORE"


def store_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--store PATH`` (default: $AIGC_STORE or .aigc/results.db)."""
    return click.option(
        "--store",
        "store_path",
        type=click.Path(path_type=Path),
        envvar=STORE_ENV,
        help=f"Results store [default: ${STORE_ENV} or .aigc/results.db].",
    )(command)


def _open(store_path: Path | None, *, must_exist: bool = False) -> ResultsStore:
    """The store; reading commands do not create a missing one (``list`` says it is empty, others fail)."""
    from aigc_app.store import ResultsStore, StoreError, default_store_path  # late: `aigc --help` stays fast

    path = store_path or default_store_path()
    if must_exist and not path.exists():
        raise StoreError(f"no results store at {path}: run `aigc eval SUITE` first, or pass --store PATH")
    return ResultsStore(path)


@click.group("runs")
def runs_group() -> None:
    """Stored eval runs: list them, show one, delete one, merge stores run elsewhere."""


@runs_group.command("list")
@click.option("-n", "--limit", default=50, show_default=True, help="Show at most this many runs, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@store_option
def list_cmd(limit: int, as_json: bool, store_path: Path | None) -> None:
    """Runs in the store, newest first; a stopped run shows the command that completes it."""
    from aigc_app.store import default_store_path

    where = store_path or default_store_path()
    summaries = []
    if where.exists() or where.is_symlink():
        with _open(where) as store:
            summaries = store.summaries(limit)
    if as_json:
        click.echo(json.dumps([_summary_dict(s) for s in summaries], indent=2))
        return
    if not summaries:
        console().print(f"no runs in {where} yet: `aigc eval SUITE` makes one")
        return
    console().print(_runs_table(summaries, str(where), console().width))
    for s in summaries:
        if s.resumable:
            info = s.info
            console().print(f"[dim]{info.run_id} stopped at {info.done}/{info.planned}: {info.resume_command}[/]")


def _runs_table(summaries: list[RunSummary], title: str, width: int = 80) -> Table:
    """One row per run; every column but the suite is as wide as its widest cell, the suite gets what is left
    of the terminal (80 columns hold a run id, an 8-character suite and the rest)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    headers = ("run", "suite", "status", "cases", "pass", "started", "cost")
    rows = [
        (
            s.info.run_id,
            s.info.suite,
            _status(s),
            f"{s.info.done}/{s.info.planned}",
            _percent(s.pass_rate),
            time.strftime("%m-%d %H:%M", time.localtime(s.info.started_at)),
            f"${s.info.cost_usd:.2f}" if s.info.cost_usd else "-",
        )
        for s in summaries
    ]
    widths = [max(len(h), *(Text.from_markup(row[i]).cell_len for row in rows)) for i, h in enumerate(headers)]
    others = sum(widths) - widths[1] + 2 * len(headers) - 1  # two spaces between columns, one after the last
    widths[1] = max(5, min(widths[1], width - others))
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for header, cells in zip(headers, widths, strict=True):
        justify = "right" if header in ("cases", "pass", "cost") else "left"
        table.add_column(header, justify=justify, no_wrap=True, overflow="ellipsis", width=cells)
    for row in rows:
        table.add_row(*row)
    return table


def _status(summary: RunSummary) -> str:
    status = summary.info.status
    if status == "running" and not summary.live:
        return "[yellow]stopped[/]"  # marked running, but its process is gone (killed)
    colour = {"finished": "green", "failed": "red", "interrupted": "yellow"}.get(status)
    return f"[{colour}]{status}[/]" if colour else status


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _summary_dict(s: RunSummary) -> dict[str, Any]:
    return {
        **asdict(s.info),
        "passed": s.passed,
        "pass_rate": s.pass_rate,
        "live": s.live,
        "resume_command": s.info.resume_command if s.resumable else None,
    }


@runs_group.command("show")
@click.argument("run", default="latest")
@click.option("--json", "as_json", is_flag=True, help="Print the run and its per-variant figures as JSON.")
@store_option
def show_cmd(run: str, as_json: bool, store_path: Path | None) -> None:
    """One run: what it ran and how far it got, and the pass rate of each prompt version x model.

    RUN is a run id, a unique prefix of one, or `latest` (the default). `aigc report RUN` gives the full report.
    """
    with _open(store_path, must_exist=True) as store:
        summary = store.summary(run)
        variants = store.variant_figures(summary.info.run_id)
    if as_json:
        figures = [{**asdict(v), "pass_rate": v.pass_rate} for v in variants]
        click.echo(json.dumps({"run": _summary_dict(summary), "variants": figures}, indent=2))
        return
    console().print(_info_table(summary))
    if variants:
        console().print(_variants_table(variants))
    if summary.resumable:
        console().print(f"complete it with: {summary.info.resume_command}")


def _info_table(summary: RunSummary) -> Table:
    from rich.table import Table

    info = summary.info
    finished = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.finished_at)) if info.finished_at else "-"
    rows = [
        ("status", _status(summary) + (" (its process is alive)" if summary.live else "")),
        ("suite", info.suite + (f" ({info.suite_path})" if info.suite_path else "")),
        ("started", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.started_at))),
        ("finished", finished),
        ("cases", f"{info.done} of {info.planned} recorded, {info.failed} failed, {summary.passed} passed"),
        ("pass rate", _percent(summary.pass_rate)),
        ("cost", f"${info.cost_usd:.4f}" if info.cost_usd else "-"),
        ("prompts", ", ".join(info.prompts) or "-"),
        ("models", ", ".join(info.models) or "-"),
        ("evaluators", ", ".join(info.evaluators) or "-"),
        *(("note", note) for note in info.notes),
    ]
    table = Table(title=f"run {info.run_id}", title_justify="left", box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _variants_table(variants: list[VariantFigures]) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("prompt@version | model", overflow="fold")
    for name in ("cases", "passed", "pass", "errors", "latency"):
        table.add_column(name, justify="right", no_wrap=True)
    for v in variants:
        latency = "-" if v.mean_latency_s is None else f"{v.mean_latency_s:.2f}s"
        table.add_row(v.variant, str(v.cases), str(v.passed), _percent(v.pass_rate), str(v.errors), latency)
    return table


@runs_group.command("delete")
@click.argument("run")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@store_option
def delete_cmd(run: str, yes: bool, store_path: Path | None) -> None:
    """Delete RUN (an id or a unique prefix), and the generations and scores no other run uses."""
    with _open(store_path, must_exist=True) as store:
        summary = store.summary(run)
        info = summary.info
        if not yes:
            click.confirm(f"delete run {info.run_id} ({info.suite}, {info.done} cases)?", abort=True, err=True)
        store.delete_run(info.run_id)
    console().print(f"deleted run {info.run_id} ({info.done} cases)")


@runs_group.command("merge")
@click.argument("others", nargs=-1, required=True, type=click.Path(path_type=Path))
@store_option
def merge_cmd(others: tuple[Path, ...], store_path: Path | None) -> None:
    """Copy the runs of other store files (shards run elsewhere) into the store; merging again adds nothing."""
    with _open(store_path) as store:
        for other in others:
            added = store.merge(other)
            counts = ", ".join(
                _count(n, name)
                for n, name in ((added.runs, "run"), (added.cases, "case"), (added.generations, "generation"))
            )
            console().print(f"{other}: {counts}, {_count(added.scores, 'score')} added to {store.path}")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
