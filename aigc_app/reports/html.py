"""The HTML report: one self-contained file (inline CSS, JS and SVG charts; nothing fetched, works from file://).

The cases are embedded once as column arrays in ``<script type="application/json">`` (repeated strings such as
system prompts and reasons interned), and the inline script filters, sorts and pages over them, so a 20,000-row
run stays responsive. Every piece of run text is escaped: in HTML with :func:`html.escape`, in the JSON block
with ``\\u003c`` for ``<`` so that no output can close the script element.
"""

from __future__ import annotations

import json
import math
from html import escape
from importlib import resources
from typing import Any

from aigc_app.reports.json_report import _clean
from aigc_app.reports.summary import (
    EvaluatorSummary,
    VariantSummary,
    evaluator_summaries,
    percentile,
    variant_summaries,
    wilson,
)
from aigc_app.reports.terminal import fmt_interval, fmt_seconds, fmt_time
from aigc_app.results import CaseResult, RunResults

__all__ = ["render_html"]


class _Strings:
    """An interning table: each distinct string is stored once in the page and referred to by index."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, text: str | None) -> int | None:
        if text is None:
            return None
        return self.index.setdefault(text, len(self.index))

    def json(self, value: Any) -> int:
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):
            text = json.dumps(_clean(value), ensure_ascii=False, sort_keys=True, allow_nan=False)
        return self.index.setdefault(text, len(self.index))


def _score(s: Any, evaluators: dict[str, int], strings: _Strings) -> list[Any]:
    value = s.value if math.isfinite(s.value) else None
    flags = (1 if s.applicable else 0) | (2 if s.advisory else 0)
    details = strings.json(s.details) if s.details else None
    return [evaluators[s.evaluator], value, s.passed, s.threshold, strings(s.reason), s.error, flags, s.rescore,
            strings(s.evaluator_version), details]  # fmt: skip


def _meta(case: CaseResult) -> dict[str, Any]:
    return {
        "prompt": case.prompt_ref,
        "prompt_hash": case.prompt_hash,
        "model": case.model,
        "backend": case.backend,
        "params": dict(case.params),
        "seed": case.seed,
        "tags": list(case.tags),
        "reference": case.reference,
    }


def page_data(results: RunResults) -> dict[str, Any]:
    """The data the page's script reads: column arrays of the cases plus the interned strings."""
    variants = {v: i for i, v in enumerate(results.variants)}
    evaluators = {e: i for i, e in enumerate(results.evaluator_names)}
    strings = _Strings()
    keys = ("id", "v", "r", "p", "e", "lat", "out", "inp", "msg", "sc", "meta", "ti", "to", "cost", "cached", "k")
    columns: dict[str, list[Any]] = {k: [] for k in keys}
    for c in results.cases:
        row = {
            "id": c.case_id, "v": variants[c.variant], "r": c.sample_index, "p": int(c.passed), "e": c.error,
            "lat": round(c.latency_s, 4), "out": c.output, "inp": strings.json(c.inputs),
            "msg": [[strings(str(m.get("role", ""))), strings(str(m.get("content", "")))] for m in c.messages],
            "sc": [_score(s, evaluators, strings) for s in c.scores], "meta": strings.json(_meta(c)),
            "ti": c.tokens_in, "to": c.tokens_out, "cost": c.cost_usd, "cached": int(c.cached), "k": c.key,
        }  # fmt: skip
        for key, value in row.items():
            columns[key].append(value)
    return {
        "variants": list(variants),
        "evaluators": list(evaluators),
        "strings": list(strings.index),
        "cases": columns,
    }


def _script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: no ``<``, ``>`` or ``&`` appears literally."""
    try:  # page_data is clean already; _clean only when something non-finite or odd slipped in
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(_clean(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --- charts: inline SVG, drawn here so that the page needs no chart library ---------------------------------------


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}" font-family="system-ui, sans-serif" font-size="11">'
        + "".join(body)
        + "</svg>"
    )


def _histogram(values: list[float], lo: float, hi: float, bins: int, title: str, mark: float | None = None) -> str:
    width, height, left, bottom = 270, 140, 40, 22
    counts = [0] * bins
    span = (hi - lo) or 1.0
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / span * bins)))] += 1
    top = max(counts) or 1
    bar = (width - left - 6) / bins
    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{width - 4}" y2="{height - bottom}" stroke="#888"/>']
    for i, n in enumerate(counts):
        h = (height - bottom - 14) * n / top
        x = left + i * bar
        body.append(
            f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{max(bar - 1, 1):.1f}" height="{h:.1f}" '
            f'fill="#4c8bf5"><title>{lo + i * span / bins:.3g}-{lo + (i + 1) * span / bins:.3g}: {n}</title></rect>'
        )
    if mark is not None and lo <= mark <= hi:
        x = left + (mark - lo) / span * (width - left - 6)
        body.append(f'<line x1="{x:.1f}" y1="8" x2="{x:.1f}" y2="{height - bottom}" stroke="#cf222e" '
                    f'stroke-dasharray="3,2"><title>threshold {mark:g}</title></line>')  # fmt: skip
    body += [
        f'<text x="{left}" y="{height - 6}">{lo:.3g}</text>',
        f'<text x="{width - 4}" y="{height - 6}" text-anchor="end">{hi:.3g}</text>',
        f'<text x="{left - 4}" y="16" text-anchor="end">{top}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">0</text>',
    ]
    return f'<div class="chart"><h3>{escape(title)}</h3>{_svg(width, height, body, title)}</div>'


def _rate_rows(results: RunResults, variants: list[VariantSummary]) -> list[tuple[str, int, int, Any]]:
    """(label, cases, passed, interval) per variant, then per prompt version and per model when there are several."""
    rows = [(s.variant, s.cases, s.passed, s.interval) for s in variants]
    for attr, suffix in (("prompt_ref", "all models"), ("model", "all prompts")):
        groups: dict[str, list[int]] = {}
        for case in results.cases:
            groups.setdefault(getattr(case, attr), []).append(int(case.passed))
        if len(groups) > 1:
            rows += [(f"{k} ({suffix})", len(v), sum(v), wilson(sum(v), len(v))) for k, v in groups.items()]
    return rows


def _pass_rate_chart(rows: list[tuple[str, int, int, Any]]) -> str:
    row, left, plot, right = 26, 250, 300, 160
    width, height = left + plot + right, 24 + row * len(rows)
    body = [f'<line x1="{left}" y1="4" x2="{left}" y2="{height - 18}" stroke="#888"/>']
    for pct in (0, 50, 100):
        x = left + plot * pct / 100
        body.append(f'<text x="{x}" y="{height - 4}" text-anchor="middle">{pct}%</text>')
    for i, (name, cases, passed, interval) in enumerate(rows):
        y = 6 + i * row
        rate = passed / cases if cases else 0.0
        body.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(_short(name, 37))}'
                    f"<title>{escape(name)}</title></text>")  # fmt: skip
        body.append(f'<rect x="{left}" y="{y + 2}" width="{plot * rate:.1f}" height="{row - 10}" fill="#6fb36f"/>')
        if interval:
            lo, hi = (left + plot * v for v in interval)
            mid = y + 2 + (row - 10) / 2
            body.append(f'<path d="M{lo:.1f} {mid}H{hi:.1f}M{lo:.1f} {mid - 5}V{mid + 5}M{hi:.1f} {mid - 5}V{mid + 5}" '
                        f'stroke="#1f2328" stroke-width="1.5" fill="none"/>')  # fmt: skip
        label = f"{rate * 100:.0f}% ({fmt_interval(interval)}) n={cases}" if cases else "no cases"
        body.append(f'<text x="{left + plot + 8}" y="{y + 13}">{escape(label)}</text>')
    title = "pass rate by prompt version and model (95% Wilson interval)"
    return f'<div class="chart"><h3>{title}</h3>{_svg(width, height, body, title)}</div>'


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _charts(results: RunResults, variants: list[VariantSummary], evaluators: list[EvaluatorSummary]) -> str:
    parts = [_pass_rate_chart(_rate_rows(results, variants))] if variants else []
    for e in evaluators:
        if e.values:
            parts.append(_histogram(e.values, 0.0, 1.0, 20, f"{e.evaluator}: scores (n={e.scored})", e.threshold))
    latencies = [c.latency_s for c in results.cases if c.error is None and not c.cached]
    if latencies:
        hi = percentile(latencies, 99) or max(latencies)
        clipped = [min(v, hi) for v in latencies]
        parts.append(_histogram(clipped, 0.0, hi or 1.0, 24, f"latency, seconds (n={len(latencies)}, to p99)"))
    return '<div class="charts">' + "".join(parts) + "</div>"


# --- tables and page -----------------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[Any]], numeric_from: int) -> str:
    head = "".join(f'<th class="num">{escape(h)}</th>' if i >= numeric_from else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(header))  # fmt: skip
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{escape(str(v))}</td>' if i >= numeric_from else f"<td>{escape(str(v))}</td>"
                         for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _summary_tables(results: RunResults, variants: list[VariantSummary], evaluators: list[EvaluatorSummary]) -> str:
    names = results.evaluator_names
    vrows = [[s.prompt_ref, s.model, s.cases, _pct(s.pass_rate), fmt_interval(s.interval), s.errors, s.eval_errors,
              fmt_seconds(s.latency_p50), *[_num(s.means.get(n)) for n in names]] for s in variants]  # fmt: skip
    vhead = ["prompt", "model", "cases", "pass rate", "95% CI", "gen. errors", "eval errors", "p50 latency", *names]
    erows = [[e.evaluator, ", ".join(e.versions), _num(e.threshold), e.scored, _num(e.mean), e.gating,
              _pct(e.pass_rate), fmt_interval(e.interval), e.errors, e.not_applicable, e.advisory]
             for e in evaluators]  # fmt: skip
    ehead = ["evaluator", "version", "threshold", "scored", "mean", "gating", "pass rate", "95% CI", "errors", "n/a",
             "advisory"]  # fmt: skip
    return (
        "<h2>Summary by variant</h2>" + _table(vhead, vrows, 2)
        + "<h2>Evaluators</h2>" + _table(ehead, erows, 2)
    )  # fmt: skip


def _header(results: RunResults) -> str:
    info = results.info
    meta = [
        f"suite <b>{escape(info.suite)}</b>",
        f"status <b>{escape(info.status)}</b>",
        f"started {escape(fmt_time(info.started_at))}",
        f"finished {escape(fmt_time(info.finished_at))}",
        f"cases {len(results.cases)}" + (f" of {info.planned}" if info.planned else ""),
        f"cost ${info.cost_usd:.4f}",
    ]
    html = f"<h1>Eval run <code>{escape(info.run_id)}</code></h1>"
    html += '<p class="meta">' + "".join(f"<span>{m}</span>" for m in meta) + "</p>"
    if info.status != "finished":
        html += f"<p>Resume with <code>{escape(info.resume_command)}</code></p>"
    if info.notes:
        html += '<div class="notes" id="notes">' + "".join(f"<p>{escape(n)}</p>" for n in info.notes) + "</div>"
    return html


_CASES = """
<h2>Cases</h2>
<div class="controls">
  <input type="search" id="q" placeholder="search id, variant, output, error" aria-label="search">
  <select id="f-variant" aria-label="variant"><option value="-1">every variant</option></select>
  <select id="f-evaluator" aria-label="evaluator"><option value="-1">any evaluator</option></select>
  <select id="f-state" aria-label="verdict">
    <option value="all">all verdicts</option><option value="pass">passed</option><option value="fail">failed</option>
    <option value="error">errors</option><option value="skipped">advisory / n/a</option>
  </select>
  <button id="prev" type="button">&larr; prev</button><span id="page"></span>
  <button id="next" type="button">next &rarr;</button><span id="count" class="meta"></span>
</div>
<div id="cases-wrap"><table id="cases"><thead id="cases-head"></thead><tbody id="cases-body"></tbody></table></div>
<p class="meta">Click a row for its inputs, rendered prompt, output and every score. * advisory or not applicable.</p>
<section id="detail" hidden></section>
"""


def _asset(name: str) -> str:
    return resources.files("aigc_app.reports").joinpath("assets", name).read_text(encoding="utf-8")


def render_html(results: RunResults) -> str:
    """The run as one self-contained HTML page."""
    variants = variant_summaries(results)
    evaluators = evaluator_summaries(results)
    title = f"aigc run {results.info.run_id} ({results.info.suite})"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
            "script-src 'unsafe-inline'; img-src data:\">",
            f"<title>{escape(title)}</title><style>{_asset('report.css')}</style></head><body>",
            _header(results),
            "<h2>Charts</h2>",
            _charts(results, variants, evaluators),
            _summary_tables(results, variants, evaluators),
            _CASES,
            f'<script type="application/json" id="aigc-data">{_script_json(page_data(results))}</script>',
            f"<script>{_asset('report.js')}</script>",
            "</body></html>\n",
        ]
    )
