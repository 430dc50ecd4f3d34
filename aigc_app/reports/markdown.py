"""The Markdown report: header, notes, summary per variant, per-evaluator table and the failed cases."""

from __future__ import annotations

from collections.abc import Sequence

from aigc_app.reports.summary import evaluator_summaries, failed_cases, variant_summaries
from aigc_app.reports.terminal import fmt_interval, fmt_seconds, fmt_time
from aigc_app.results import RunResults

__all__ = ["cell", "render_markdown"]

MAX_FAILURES = 200


def cell(text: object) -> str:
    """Text made safe for one table cell: one line, pipes escaped, no raw HTML."""
    value = " ".join(str(text).split())
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|") or " "


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()) -> list[str]:
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _header(results: RunResults) -> list[str]:
    info = results.info
    lines = [f"# Eval run `{cell(info.run_id)}`", ""]
    lines += _table(
        ["run", "value"],
        [
            ["suite", info.suite],
            ["status", info.status],
            ["started", fmt_time(info.started_at)],
            ["finished", fmt_time(info.finished_at)],
            ["prompts", ", ".join(info.prompts) or "-"],
            ["models", ", ".join(info.models) or "-"],
            ["cases", f"{len(results.cases)}" + (f" of {info.planned} planned" if info.planned else "")],
            ["cost", f"${info.cost_usd:.4f}"],
        ],
    )
    if info.status != "finished":
        lines += ["", f"Resume with `{info.resume_command}`."]
    return lines


def _notes(results: RunResults) -> list[str]:
    if not results.info.notes:
        return []
    return ["", "## Notes", ""] + [f"> **Note:** {cell(n)}" + "  " for n in results.info.notes]


def _variants(results: RunResults) -> list[str]:
    evaluators = results.evaluator_names
    rows = [
        [s.prompt_ref, s.model, s.cases, _pct(s.pass_rate), fmt_interval(s.interval), s.errors, s.eval_errors,
         fmt_seconds(s.latency_p50), fmt_seconds(s.latency_p95), *[_num(s.means.get(e)) for e in evaluators]]
        for s in variant_summaries(results)
    ]  # fmt: skip
    header = ["prompt", "model", "cases", "pass rate", "95% CI", "gen. errors", "eval errors", "p50", "p95"]
    return ["", "## Summary by variant", "", *_table(header + evaluators, rows, right=range(2, 9 + len(evaluators)))]


def _evaluators(results: RunResults) -> list[str]:
    rows = [
        [e.evaluator, ", ".join(e.versions), _num(e.threshold), e.scored, _num(e.mean), e.gating, _pct(e.pass_rate),
         fmt_interval(e.interval), e.errors, e.not_applicable, e.advisory]
        for e in evaluator_summaries(results)
    ]  # fmt: skip
    header = ["evaluator", "version", "threshold", "scored", "mean", "gating", "pass rate", "95% CI", "errors",
              "n/a", "advisory"]  # fmt: skip
    return ["", "## Evaluators", "", *_table(header, rows, right=range(2, 11))]


def _failures(results: RunResults) -> list[str]:
    failures = failed_cases(results)
    lines = ["", f"## Failed cases ({len(failures)} of {len(results.cases)})", ""]
    if not failures:
        return [*lines, "Every case passed." if results.cases else "No cases."]
    rows = [
        [f.case.case_id + (f"#{f.case.sample_index}" if f.case.sample_index else ""), f.case.variant,
         ", ".join(f.failing), f.reason]
        for f in failures[:MAX_FAILURES]
    ]  # fmt: skip
    lines += _table(["case", "variant", "failing evaluators", "reason"], rows)
    if len(failures) > MAX_FAILURES:
        lines += ["", f"... and {len(failures) - MAX_FAILURES} more: see the HTML or JSON report."]
    return lines


def render_markdown(results: RunResults) -> str:
    """The run as a Markdown document (GitHub-flavoured tables)."""
    parts = _header(results) + _notes(results) + _variants(results) + _evaluators(results) + _failures(results)
    return "\n".join(parts) + "\n"
