"""/v1/runs: list, show, compare and download reports of the runs in the results store.

A run reference is its full id, a unique prefix of it, or ``latest``; an unknown one is a 404 naming near ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from aigc_app.server.errors import ERROR_DOC, ApiError
from aigc_app.server.prompts_api import Svc, http_error
from aigc_app.server.services import Services

if TYPE_CHECKING:
    from aigc_app.results import RunInfo, RunResults
    from aigc_app.store import RunSummary

__all__ = ["EvaluatorFigures", "RunComparison", "RunDetail", "RunRow", "router"]

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses={400: ERROR_DOC, 404: ERROR_DOC})

_MEDIA = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "junit": "application/xml",
}


class RunRow(BaseModel):
    """One run as the runs list shows it."""

    run_id: str
    suite: str
    status: str
    started_at: float
    finished_at: float | None
    prompts: list[str]
    models: list[str]
    evaluators: list[str]
    planned: int
    done: int
    failed: int
    passed: int
    pass_rate: float | None = Field(description="Passed over recorded cases; null before the first case.")
    cost_usd: float
    live: bool = Field(description="Still being written by a live process.")


class EvaluatorFigures(BaseModel):
    """One evaluator over one run: how many scores passed, failed, did not apply or errored; the mean value."""

    evaluator: str
    scored: int
    passed: int
    failed: int
    not_applicable: int
    errors: int
    advisory: bool
    mean: float | None


class VariantRow(BaseModel):
    """One ``prompt@version | model`` group of a run."""

    variant: str
    cases: int
    passed: int
    errors: int
    pass_rate: float
    mean_latency_s: float | None


class RunDetail(RunRow):
    """A run with its options, notes, variants and per-evaluator summary."""

    suite_hash: str
    suite_path: str | None
    options: dict[str, Any]
    notes: list[str]
    resume_command: str
    variants: list[VariantRow]
    by_evaluator: list[EvaluatorFigures]


class ComparedRow(BaseModel):
    """One evaluator's paired comparison (every field of ``aigc compare --format json`` is kept)."""

    model_config = ConfigDict(extra="allow")

    evaluator: str
    kind: str = Field(description="pass/fail (the verdict reads the pass rate) or value")
    n_pairs: int
    effect: float | None = Field(description="b - a: pass rate for pass/fail evaluators, else the mean value")
    effect_ci: list[float | None] = Field(description="Paired 95% interval of the effect")
    p: float | None
    p_holm: float | None = Field(description="p after Holm's correction across every row of the comparison")
    verdict: str = Field(description="regressed, improved, no significant change, within tolerance, too few pairs")
    advisory: bool
    mde_sentence: str = Field(description="The smallest change this suite can detect, in words")


class ComparedVariant(BaseModel):
    """One baseline variant against one candidate variant."""

    model_config = ConfigDict(extra="allow")

    variant_a: str
    variant_b: str
    n_pairs: int
    rows: list[ComparedRow]
    regressed_cases: list[dict[str, Any]]
    flaky: list[dict[str, Any]]


class RunComparison(BaseModel):
    """The paired statistics of two runs; ``regressed`` is the CI gate."""

    model_config = ConfigDict(extra="allow")

    run_a: str
    run_b: str
    alpha: float
    tolerance: float
    regressed: bool
    variants: list[ComparedVariant]
    notes: list[str]


@router.get("", summary="List the runs in the store, newest first")
def list_runs(svc: Svc, limit: int = Query(50, ge=1, le=1000)) -> list[RunRow]:
    with svc.open_store() as store:
        return [_row(s) for s in store.summaries(limit)]


@router.get("/compare", summary="Paired statistical comparison of two runs (b is the candidate)")
def compare(
    svc: Svc,
    a: str = Query(description="Baseline run reference"),
    b: str = Query(description="Candidate run reference"),
    variant_a: str | None = Query(None, description="A variant of a: prompt@version | model, a prompt ref or model"),
    variant_b: str | None = Query(None),
    tolerance: float = Query(0.0, ge=0.0, le=1.0, description="Largest drop still allowed"),
    alpha: float = Query(0.05, gt=0.0, lt=1.0),
) -> RunComparison:
    """The comparison as ``aigc compare --format json`` writes it: verdicts, effects with intervals, p values
    (Holm-corrected), regressed and flaky cases, and notes."""
    from aigc_app.compare import CompareError, compare_runs, comparison_dict

    run_a, run_b = _load(svc, a), _load(svc, b)
    try:
        comparison = compare_runs(
            run_a, run_b, tolerance=tolerance, alpha=alpha, variant_a=variant_a, variant_b=variant_b
        )
    except CompareError as exc:  # its message speaks of the CLI's flags; here they are query parameters
        message = str(exc).replace("--variant-a", "variant_a").replace("--variant-b", "variant_b")
        raise ApiError(400, message) from None
    return RunComparison.model_validate(comparison_dict(comparison))


@router.get("/{ref}", summary="One run with its per-evaluator summary")
def show_run(svc: Svc, ref: str) -> RunDetail:
    from aigc_app.store import StoreError

    try:
        with svc.open_store() as store:
            summary = store.summary(ref)
            variants = store.variant_figures(summary.info.run_id)
            results = store.load_run(summary.info.run_id)
    except StoreError as exc:
        raise http_error(exc) from None
    info = summary.info
    return RunDetail(
        **_row(summary).model_dump(),
        suite_hash=info.suite_hash,
        suite_path=info.suite_path,
        options=dict(info.options),
        notes=list(info.notes),
        resume_command=info.resume_command,
        variants=[
            VariantRow(
                variant=v.variant,
                cases=v.cases,
                passed=v.passed or 0,
                errors=v.errors or 0,
                pass_rate=v.pass_rate,
                mean_latency_s=v.mean_latency_s,
            )
            for v in variants
        ],
        by_evaluator=evaluator_figures(results),
    )


@router.get(
    "/{ref}/report",
    summary="Download the run's report (html, md, json or junit)",
    response_class=Response,
    responses={200: {"content": {m.split(";")[0]: {} for m in _MEDIA.values()}}},
)
def report(
    svc: Svc,
    ref: str,
    format: Literal["html", "md", "json", "junit"] = Query("html"),
    download: bool = Query(True, description="Send as an attachment (false: show in the browser)"),
) -> Response:
    from aigc_app.reports import EXTENSIONS, render

    results = _load(svc, ref)
    text = render(results, format)
    name = f"{results.info.run_id}.{EXTENSIONS[format]}"
    headers = {"Content-Disposition": f'{"attachment" if download else "inline"}; filename="{name}"'}
    if format == "html":  # it holds model outputs: even opened on its own, it runs in an opaque origin, no cookie
        headers["Content-Security-Policy"] = "sandbox allow-scripts"
    return Response(content=text, media_type=_MEDIA[format], headers=headers)


# -- pieces ---------------------------------------------------------------------------------------------------------


def evaluator_figures(results: RunResults) -> list[EvaluatorFigures]:
    """Per evaluator, over the first scoring of every case: passes, failures, not applicable, errors, mean value."""
    figures: dict[str, dict[str, Any]] = {}
    for case in results.cases:
        for s in case.scores:
            if s.rescore:
                continue
            f = figures.setdefault(s.evaluator, {"n": 0, "p": 0, "f": 0, "na": 0, "e": 0, "adv": s.advisory, "v": []})
            f["n"] += 1
            if s.error is not None:
                f["e"] += 1
            elif not s.applicable:
                f["na"] += 1
            else:
                f["v"].append(s.value)
                f["p"] += s.passed is True
                f["f"] += s.passed is False
    return [
        EvaluatorFigures(
            evaluator=name,
            scored=f["n"],
            passed=f["p"],
            failed=f["f"],
            not_applicable=f["na"],
            errors=f["e"],
            advisory=f["adv"],
            mean=sum(f["v"]) / len(f["v"]) if f["v"] else None,
        )
        for name, f in figures.items()
    ]


def _row(summary: RunSummary) -> RunRow:
    info: RunInfo = summary.info
    return RunRow(
        run_id=info.run_id,
        suite=info.suite,
        status=info.status,
        started_at=info.started_at,
        finished_at=info.finished_at,
        prompts=list(info.prompts),
        models=list(info.models),
        evaluators=list(info.evaluators),
        planned=info.planned,
        done=info.done,
        failed=info.failed,
        passed=summary.passed,
        pass_rate=summary.pass_rate,
        cost_usd=info.cost_usd,
        live=summary.live,
    )


def _load(svc: Services, ref: str) -> RunResults:
    from aigc_app.store import StoreError

    try:
        with svc.open_store() as store:
            return store.load_run(ref)
    except StoreError as exc:
        raise http_error(exc) from None
