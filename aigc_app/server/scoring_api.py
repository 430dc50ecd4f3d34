"""/v1/score: score one output with an evaluator suite, streaming each evaluator's score (SSE) as soon as it is ready.

    POST /v1/score {"prompt": "marketing/social_post", "version": "1.1.0", "inputs": {...}, "output": "..."}
    event: plan      data: {"suite": "marketing", "evaluators": ["adherence", ...], "task": "marketing"}
    event: score     data: {"name": "adherence", "value": 0.67, "passed": false, "reason": "...", ...}   (one each)
    event: summary   data: {"passed": false, "scored": 10, "failed": ["adherence"], "errors": [], "seconds": 1.2}

The suite is the one the runner would use for a suite of this prompt: ``evaluators`` names a built-in evaluator
suite (or lists evaluator names, an inline suite); without it, the suite of the prompt's task when there is one
(writing, marketing, education), else ``offline``. Scorers run in a worker thread; suites are built once per server.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from aigc_app.server.errors import ERROR_DOC, ApiError
from aigc_app.server.prompts_api import Svc, http_error, load_version
from aigc_app.server.services import Services

if TYPE_CHECKING:
    from evaluators.base import Sample
    from evaluators.suite import Suite

__all__ = ["EvaluatorSuiteInfo", "ScoreEvent", "ScoreRequest", "ScoreSummary", "router", "suite_for"]

router = APIRouter(prefix="/v1", tags=["scoring"], responses={400: ERROR_DOC, 404: ERROR_DOC})


class ScoreRequest(BaseModel):
    """One output to score, with the prompt version and inputs that produced it."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(examples=["marketing/social_post"])
    version: str | None = Field(None, examples=["1.1.0"], description="Version, range or label; default latest.")
    inputs: dict[str, Any] = Field(default_factory=dict)
    output: str = Field(max_length=200_000)
    task: str | None = Field(None, description="Score as this task (default: the prompt's task).")
    evaluators: str | list[str] | None = Field(
        None, description="A built-in evaluator suite name, or evaluator names; default: the task's suite."
    )
    reference: str | None = Field(None, description="A reference answer, for evaluators that compare with one.")
    context: str | None = Field(None, description="Retrieved context, for the grounded evaluator.")


class ScoreEvent(BaseModel):
    """One evaluator's score (the data of an ``event: score``)."""

    name: str
    value: float
    passed: bool | None
    threshold: float | None
    reason: str
    error: str | None
    applicable: bool
    advisory: bool
    seconds: float


class ScoreSummary(BaseModel):
    """The data of the final ``event: summary``: the verdict over the gating scores."""

    passed: bool
    scored: int
    failed: list[str]
    errors: list[str]
    seconds: float


_SSE_DOC = {200: {"content": {"text/event-stream": {}}, "description": "plan, then one score event each, summary"}}


@router.post("/score", summary="Score one output, streaming each evaluator's score", responses=_SSE_DOC)
async def score(svc: Svc, body: ScoreRequest) -> StreamingResponse:
    from prompts import PromptError

    prompt = await run_in_threadpool(load_version, svc, body.prompt, body.version)
    try:
        sample = await run_in_threadpool(_sample, prompt, body)
    except PromptError as exc:
        raise http_error(exc) from None
    suite_name, suite = await run_in_threadpool(suite_for, svc, body.evaluators, sample.task)
    entries = [(e, ev) for e, ev in suite.entries if e.tasks is None or sample.task in e.tasks]
    plan = {
        "suite": suite_name,
        "task": sample.task,
        "prompt": prompt.ref,
        "evaluators": [e.evaluator for e, _ in entries],
    }

    async def events() -> AsyncIterator[str]:
        yield _sse("plan", plan)
        started = time.perf_counter()
        results: list[ScoreEvent] = []
        for entry in entries:
            view = copy.copy(suite)  # the suite with one entry: its thresholds and advisory flag still apply
            view.entries = [entry]
            t0 = time.perf_counter()
            scored = await run_in_threadpool(view.score, [sample])
            event = _event(scored[0][0], entry[0].advisory, time.perf_counter() - t0)
            results.append(event)
            yield _sse("score", event.model_dump())
        yield _sse("summary", _summary(results, time.perf_counter() - started).model_dump())

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


class EvaluatorSuiteInfo(BaseModel):
    """A built-in evaluator suite the playground offers."""

    name: str
    description: str
    evaluators: list[str]


@router.get("/score/suites", summary="The built-in evaluator suites /v1/score can use")
def list_suites() -> list[EvaluatorSuiteInfo]:
    import yaml

    from evaluators.suite import BUILTIN_SUITES

    found = []
    for path in sorted(BUILTIN_SUITES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names = [str(e.get("evaluator")) for e in data.get("evaluators") or [] if isinstance(e, dict)]
        found.append(EvaluatorSuiteInfo(name=path.stem, description=str(data.get("description", "")), evaluators=names))
    return found


def suite_for(svc: Services, evaluators: str | list[str] | None, task: str | None) -> tuple[str, Suite]:
    """The evaluator suite for a request, built once per server (an unknown name is a 400 naming near ones)."""
    from evaluators.errors import EvaluatorError
    from evaluators.registry import EvaluatorRegistry
    from evaluators.suite import BUILTIN_SUITES, Suite, SuiteEntry, SuiteSpec, load_suite

    if evaluators is None:
        evaluators = task if task and (BUILTIN_SUITES / f"{task}.yaml").is_file() else "offline"
    key = evaluators if isinstance(evaluators, str) else "inline:" + ",".join(evaluators)
    with svc.lock:
        suite = svc.evaluator_suites.get(key)
    if suite is not None:
        return key, suite
    registry = EvaluatorRegistry(models_config=svc.models_config)
    try:
        if isinstance(evaluators, str):
            if "/" in evaluators or "." in evaluators:
                raise ApiError(400, f"evaluators: {evaluators!r}: give a built-in suite name or evaluator names")
            suite = load_suite(evaluators, registry)
        else:
            spec = SuiteSpec(name=key, evaluators=[SuiteEntry(evaluator=name) for name in evaluators])
            suite = Suite(spec, registry, where=lambda i: f"evaluators[{i}]: ")
    except EvaluatorError as exc:
        raise ApiError(400, f"evaluators: {exc}") from None
    with svc.lock:
        suite = svc.evaluator_suites.setdefault(key, suite)
    return key, suite


def _sample(prompt: Any, body: ScoreRequest) -> Sample:
    from evaluators.base import Sample

    sample = Sample.from_prompt(prompt, body.inputs, body.output, reference=body.reference, context=body.context)
    return replace(sample, task=body.task) if body.task else sample


def _event(score: Any, advisory: bool, seconds: float) -> ScoreEvent:
    return ScoreEvent(
        name=score.name,
        value=float(score.value),
        passed=score.passed,
        threshold=score.threshold,
        reason=score.reason,
        error=score.error,
        applicable=score.applicable,
        advisory=advisory,
        seconds=round(seconds, 4),
    )


def _summary(results: list[ScoreEvent], seconds: float) -> ScoreSummary:
    gating = [r for r in results if r.applicable and not r.advisory and r.passed is not None]
    return ScoreSummary(
        passed=all(r.passed for r in gating),
        scored=len(results),
        failed=[r.name for r in gating if not r.passed],
        errors=[r.name for r in results if r.error],
        seconds=round(seconds, 4),
    )


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, allow_nan=False)}\n\n"
