"""The terminal report: the run header, notes, one row per variant, and the worst failures, at 80 columns."""

from __future__ import annotations

import datetime as dt
import io
from typing import TYPE_CHECKING

from aigc_app.reports.summary import VariantSummary, evaluator_summaries, failed_cases, variant_summaries
from aigc_app.results import RunResults

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

__all__ = ["fmt_interval", "fmt_seconds", "fmt_time", "render_terminal", "renderables", "summary_table"]

WIDTH = 80
MAX_FAILURES = 5


def fmt_time(timestamp: float | None) -> str:
    """A Unix time as ``2026-12-01 13:36 UTC`` (or a dash)."""
    if not timestamp:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_seconds(seconds: float | None) -> str:
    """``0.42s`` / ``12.3s`` / ``-``."""
    if seconds is None:
        return "-"
    return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"


def fmt_interval(interval: tuple[float, float] | None) -> str:
    """A 0..1 interval as ``71-91%``."""
    if interval is None:
        return "-"
    return f"{interval[0] * 100:.0f}-{interval[1] * 100:.0f}%"


def _rate(summary: VariantSummary) -> str:
    rate = summary.pass_rate
    return "-" if rate is None else f"{rate * 100:.0f}% {fmt_interval(summary.interval)}"


def _shown_evaluators(results: RunResults, limit: int) -> tuple[list[str], int]:
    """The evaluators that get a column: all when few, else the most failing (lowest pass rate, then mean)."""
    summaries = [s for s in evaluator_summaries(results) if s.mean is not None]
    if len(summaries) <= limit:
        return [s.evaluator for s in summaries], len(summaries)
    rate = {s.evaluator: 1.0 if s.pass_rate is None else s.pass_rate for s in summaries}
    worst = sorted(summaries, key=lambda s: (s.advisory == s.scored, rate[s.evaluator], s.mean))[:limit]
    return [s.evaluator for s in worst], len(summaries)


def summary_table(results: RunResults) -> Table:
    """One row per variant: cases, pass rate with its Wilson 95% interval, evaluator means, errors, p50 latency."""
    from rich import box
    from rich.table import Table

    summaries = variant_summaries(results)
    label = max((max(len(s.prompt_ref), len(s.model)) for s in summaries), default=8)
    shown, total = _shown_evaluators(results, 3 if label <= 20 else 2)
    caption = None
    if total > len(shown):
        every = f"aigc report {results.info.run_id} -f md"
        caption = f"means of the {len(shown)} most failing of {total} evaluators; all of them: {every}"
    table = Table(
        title="pass rate by variant (95% Wilson interval)",
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("variant", overflow="fold", min_width=min(label, 26))
    table.add_column("n", justify="right")
    table.add_column("pass", justify="right", no_wrap=True)
    for name in shown:
        table.add_column(name, justify="right", max_width=9, overflow="ellipsis", no_wrap=True)
    table.add_column("err", justify="right")
    table.add_column("p50", justify="right", no_wrap=True)
    for s in summaries:
        means = [("-" if s.means.get(n) is None else f"{s.means[n]:.2f}") for n in shown]
        errors = str(s.errors + s.eval_errors) if s.errors + s.eval_errors else ""
        table.add_row(f"{s.prompt_ref}\n{s.model}", str(s.cases), _rate(s), *means, errors, fmt_seconds(s.latency_p50))
    return table


def _header(results: RunResults) -> str:
    info = results.info
    lines = [
        f"[bold]run {_esc(info.run_id)}[/]  suite [bold]{_esc(info.suite)}[/]  status {_status(info.status)}",
        f"started {fmt_time(info.started_at)}  cases {len(results.cases)}"
        + (f"/{info.planned}" if info.planned else "")
        + (f"  cost ${info.cost_usd:.4f}" if info.cost_usd else ""),
    ]
    if info.status in ("interrupted", "running", "failed"):
        lines.append(f"resume: {_esc(info.resume_command)}")
    return "\n".join(lines)


def _status(status: str) -> str:
    color = {"finished": "green", "running": "cyan", "interrupted": "yellow"}.get(status, "red")
    return f"[{color}]{status}[/]"


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _failures(results: RunResults) -> list[Text]:
    from rich.text import Text

    failures = failed_cases(results)
    if not failures:
        return [Text.from_markup("[green]every case passed[/]" if results.cases else "no cases")]
    lines = [Text.from_markup(f"[bold]{len(failures)} of {len(results.cases)} cases failed[/], first:")]
    for f in failures[:MAX_FAILURES]:
        repeat = f"#{f.case.sample_index}" if f.case.sample_index else ""
        reason = " ".join(f.reason.split())
        line = Text(f"  {f.case.case_id}{repeat}  {f.case.variant}  {reason}")
        line.truncate(WIDTH, overflow="ellipsis")  # a Text's own no_wrap is not honoured by Console.print
        lines.append(line)
    return lines


def renderables(results: RunResults) -> list[RenderableType]:
    """What the terminal report prints, for a rich console."""
    from rich.text import Text

    parts: list[RenderableType] = [Text.from_markup(_header(results))]
    parts += [Text.from_markup(f"[bold yellow]note:[/] {_esc(n)}") for n in results.info.notes]
    parts += [summary_table(results), *_failures(results)]
    return parts


def render_terminal(results: RunResults, *, width: int = WIDTH, color: bool = False) -> str:
    """The terminal report as text ``width`` columns wide (ANSI colours only when ``color``)."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, force_terminal=color, color_system="standard" if color else None, highlight=False
    )
    for part in renderables(results):
        console.print(part)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
