"""A comparison as text: the terminal view (80 columns), Markdown (PR comments, CI summaries) and JSON.

    print(render_comparison(c))          # one row per evaluator, sensitivity, flaky cases, regressed cases
    Path("compare.md").write_text(comparison_markdown(c))

Changes are shown in points (hundredths of the 0..1 value scale, or percentage points of pass rate).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict
from typing import Any

from aigc_app.compare.comparison import MIN_PAIRS, Comparison, EvaluatorRow, VariantComparison

__all__ = ["comparison_dict", "comparison_json", "comparison_markdown", "render_comparison"]

_SHORT = {"no significant change": "no sig. change", "within tolerance": "within tol."}
_TERMINAL_OUTPUT_CHARS = 160
_TERMINAL_CASES = 10
_TERMINAL_FLAKY = 12
_VERDICT_STYLE = {"regressed": "bold red", "improved": "green", "within tolerance": "yellow", "too few pairs": "dim"}


def _num(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None or math.isnan(x) else format(x, spec)


def _pts(x: float | None) -> str:
    """Points with a sign: one decimal below 10 points, none above (the columns stay narrow)."""
    if x is None or math.isnan(x):
        return "-"
    if abs(100 * x) < 0.05:
        return "0"
    return f"{100 * x:+.1f}" if abs(100 * x) < 9.95 else f"{100 * x:+.0f}"


def _ci(ci: tuple[float, float] | None) -> str:
    if ci is None or any(math.isnan(v) for v in ci):
        return ""
    return f"[{_pts(ci[0])}, {_pts(ci[1])}]"


def _p(p: float) -> str:
    if math.isnan(p):
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _side(row: EvaluatorRow, side: str) -> str:
    if row.kind == "pass/fail":
        rate = getattr(row, f"pass_rate_{side}")
        return "-" if rate is None else f"{100 * rate:.0f}%"
    return _num(getattr(row, f"mean_{side}"))


def _headline(c: Comparison) -> str:
    verdict = "REGRESSED" if c.regressed else "no regression"
    tol = f", tolerance {100 * c.tolerance:g} points" if c.tolerance else ""
    runs = f"run {c.run_a}, two variants" if c.run_a == c.run_b else f"{c.run_a} (baseline) -> {c.run_b} (candidate)"
    return f"{runs}: {verdict} (alpha {c.alpha:g}, Holm{tol})"


def _variant_head(v: VariantComparison) -> list[str]:
    lines = [v.variant_a if v.variant_a == v.variant_b else f"{v.variant_a}  ->  {v.variant_b}"]
    extra = []
    if v.only_a:
        extra.append(f"{len(v.only_a)} only in the baseline")
    if v.only_b:
        extra.append(f"{len(v.only_b)} only in the candidate")
    lines.append(f"{v.n_pairs} paired cases" + (f" ({', '.join(extra)})" if extra else ""))
    return lines


def _extras(row: EvaluatorRow) -> list[str]:
    """pass^k, pass@k and the variance shares of one row, as sentences."""
    out = []
    if row.k:
        out.append(
            f"{row.evaluator}: pass^{row.k} {_num(row.pass_hat_k_a)} -> {_num(row.pass_hat_k_b)}, "
            f"pass@{row.k} {_num(row.pass_at_k_a)} -> {_num(row.pass_at_k_b)}"
        )
    for side, shares in (("baseline", row.variance_a), ("candidate", row.variance_b)):
        if shares is not None and shares.total > 0:
            out.append(
                f"{row.evaluator} variance ({side}): judge {shares.share('judge'):.0%}, generation "
                f"{shares.share('generation'):.0%}, cases {shares.share('case'):.0%}"
            )
    return out


def _flaky_lines(v: VariantComparison) -> list[str]:
    side = {"a": "baseline", "b": "candidate"}
    return [f"{f.case_id} {f.evaluator} ({side[f.side]}: {f.passes}/{f.repeats} passed)" for f in v.flaky]


def _excluded(v: VariantComparison) -> list[str]:
    return [
        f"{row.evaluator}: {row.n_flaky_excluded} flaky case(s) left out of the test"
        for row in v.rows
        if row.n_flaky_excluded
    ]


def _sensitivity(rows: tuple[EvaluatorRow, ...]) -> list[str]:
    """What the suite can detect: one sentence per evaluator whose paired differences varied, then one line for
    those that did not vary and one for those with too few pairs."""
    few = [r for r in rows if r.n_pairs < MIN_PAIRS or math.isnan(r.mde)]
    flat = [r for r in rows if r not in few and r.sd_diff == 0]
    lines = [r.mde_sentence for r in rows if r not in few and r not in flat]
    if flat:
        names = ", ".join(r.evaluator for r in flat)
        lines.append(f"no paired difference varied in {names}, so this suite cannot estimate what it can detect there")
    if few:
        names = ", ".join(f"{r.evaluator} ({r.n_pairs})" for r in few)
        lines.append(f"too few paired cases (under {MIN_PAIRS}) for a verdict: {names}")
    return lines


def _truncate(text: str, limit: int = _TERMINAL_OUTPUT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _terminal_variant(v: VariantComparison) -> list[Any]:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text(line) for line in _variant_head(v)]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    table.add_column("evaluator", overflow="fold", min_width=12)
    for name in ("n", "a", "b", "change [95% CI]", "Holm p"):  # raw p-values: --format md or json
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for row in v.rows:
        name = row.evaluator + (" *" if row.advisory else "")
        change = f"{_pts(row.effect)} {_ci(row.effect_ci)}".strip()
        style = "yellow" if row.advisory else _VERDICT_STYLE.get(row.verdict, "")
        table.add_row(
            name, str(row.n_pairs), _side(row, "a"), _side(row, "b"), change, _p(row.p_holm),
            Text(_SHORT.get(row.verdict, row.verdict), style=style),
        )  # fmt: skip
    parts.append(table)
    lines = ["a, b: pass rate, or mean value without pass/fail; change: b - a, in points"]
    lines += _sensitivity(v.rows) + [x for row in v.rows for x in _extras(row)]
    if any(r.advisory for r in v.rows):
        lines.append("* advisory: reported, never a regression")
    if v.flaky:
        flaky = _flaky_lines(v)
        more = f"; and {len(flaky) - _TERMINAL_FLAKY} more" if len(flaky) > _TERMINAL_FLAKY else ""
        lines.append("flaky (repeats disagree): " + "; ".join(flaky[:_TERMINAL_FLAKY]) + more)
        lines += _excluded(v)
    parts += [Text(line) for line in lines]
    if v.regressed_cases:
        title = "regressed cases (passed in a, failed in b)"
        cases = Table(title=title, box=box.SIMPLE_HEAD, show_lines=True, expand=True)
        cases.add_column("case", overflow="fold", max_width=14)
        cases.add_column("baseline (a)", overflow="fold", ratio=1)
        cases.add_column("candidate (b)", overflow="fold", ratio=1)
        for rc in v.regressed_cases[:_TERMINAL_CASES]:
            why = ("\n" + _truncate("; ".join(rc.failures), 120)) if rc.failures else ""
            cases.add_row(rc.case_id, _truncate(rc.output_a), _truncate(rc.output_b) + why)
        parts.append(cases)
        if len(v.regressed_cases) > _TERMINAL_CASES:
            more = len(v.regressed_cases) - _TERMINAL_CASES
            parts.append(Text(f"and {more} more regressed case(s): --format md lists them all with full outputs"))
    return parts


def render_comparison(c: Comparison, *, width: int = 80, color: bool = False) -> str:
    """The comparison for a terminal: a table per variant pair, then sensitivity, flaky and regressed cases."""
    from rich.console import Console
    from rich.text import Text

    buf = io.StringIO()
    console = Console(
        file=buf, width=width, color_system="standard" if color else None, force_terminal=color, highlight=False
    )
    style = "bold red" if c.regressed else "bold green"
    console.print(Text(_headline(c), style=style))
    for v in c.variants:
        console.print()
        for part in _terminal_variant(v):
            console.print(part)
    for note in c.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    return buf.getvalue()


def _md_cell(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|").replace("\n", "<br>") or " "


def _md_rate(row: EvaluatorRow, side: str) -> str:
    rate, ci = getattr(row, f"pass_rate_{side}"), getattr(row, f"pass_ci_{side}")
    if rate is None:
        return "-"
    return f"{100 * rate:.0f}% ({100 * ci[0]:.0f}-{100 * ci[1]:.0f})"


def _md_variant(v: VariantComparison) -> list[str]:
    head = _variant_head(v)
    out = [f"### `{head[0]}`", "", head[1], ""]
    out += [
        "| evaluator | pairs | mean a | mean b | change (pts) [95% CI] | pass a (Wilson 95%) | pass b (Wilson 95%) "
        "| test | p | Holm p | verdict |",
        "|---|--:|--:|--:|--:|--:|--:|---|--:|--:|---|",
    ]
    for r in v.rows:
        change = f"{_pts(r.effect)} {_ci(r.effect_ci)}".strip()
        name = _md_cell(r.evaluator) + (" (advisory)" if r.advisory else "")
        out.append(
            f"| {name} | {r.n_pairs} | {_num(r.mean_a, '.3f')} | {_num(r.mean_b, '.3f')} | {change} | "
            f"{_md_rate(r, 'a')} | {_md_rate(r, 'b')} | {r.test} | {_p(r.p)} | {_p(r.p_holm)} | **{r.verdict}** |"
        )
    out.append("")
    out += [f"- {line}" for line in _sensitivity(v.rows) + [x for r in v.rows for x in _extras(r)]]
    if v.flaky:
        out += ["", "**Flaky cases** (repeats disagree; left out of that evaluator's test):", ""]
        out += [f"- {_md_cell(line)}" for line in _flaky_lines(v)]
        out += [f"- {line}" for line in _excluded(v)]
    if v.only_a or v.only_b:
        out += ["", f"Unpaired: only in baseline {', '.join(v.only_a) or '-'}; only in candidate "
                f"{', '.join(v.only_b) or '-'}"]  # fmt: skip
    if v.regressed_cases:
        out += ["", "**Regressed cases** (passed in a, failed in b):", "", "| case | baseline (a) | candidate (b) |"]
        out.append("|---|---|---|")
        for rc in v.regressed_cases:
            why = ("\n\n_" + "; ".join(rc.failures) + "_") if rc.failures else ""
            out.append(f"| {_md_cell(rc.case_id)} | {_md_cell(rc.output_a)} | {_md_cell(rc.output_b + why)} |")
    return out


def comparison_markdown(c: Comparison) -> str:
    """The comparison as GitHub-flavoured Markdown, with the regressed cases' outputs in full."""
    out = [f"## aigc compare: {'regressed' if c.regressed else 'no regression'}", "", _headline(c), ""]
    for v in c.variants:
        out += [*_md_variant(v), ""]
    out += [f"> note: {note}" for note in c.notes]
    return "\n".join(out).rstrip() + "\n"


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def comparison_dict(c: Comparison) -> dict[str, Any]:
    """The comparison as plain JSON-ready data (NaN becomes null); ``regressed`` and each row's ``effect`` and
    ``mde_sentence`` included."""
    data = asdict(c)
    data["regressed"] = c.regressed
    for v_data, v in zip(data["variants"], c.variants, strict=True):
        for r_data, r in zip(v_data["rows"], v.rows, strict=True):
            r_data.update(effect=r.effect, effect_ci=r.effect_ci, mde_sentence=r.mde_sentence)
    return _clean(data)


def comparison_json(c: Comparison) -> str:
    """:func:`comparison_dict` as indented JSON."""
    return json.dumps(comparison_dict(c), indent=2, allow_nan=False)
