"""Builders of RunResults for the comparison tests (real dataclasses, no store), and checks of the builders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aigc_app.results import CaseResult, RunInfo, RunResults, ScoreRow

PROMPT = ("marketing/ad_copy", "1.0.0")
MODEL = "hf:tiny"


def score(name: str, value: float, passed: bool | None = None, *, rescore: int = 0, **kw: object) -> ScoreRow:
    """One score row (version "1", threshold 0.5 when it passes or fails, unless ``kw`` says otherwise)."""
    fields: dict = {"evaluator_version": "1", "threshold": None if passed is None else 0.5, **kw}
    return ScoreRow(name, value=value, passed=passed, rescore=rescore, **fields)


def case(
    run_id: str,
    case_id: str,
    scores: Iterable[ScoreRow],
    *,
    version: str = PROMPT[1],
    model: str = MODEL,
    sample: int = 0,
    output: str = "",
    error: str | None = None,
) -> CaseResult:
    """One generation of ``marketing/ad_copy@version`` by ``model``."""
    return CaseResult(
        run_id=run_id, case_id=case_id, prompt_name=PROMPT[0], prompt_version=version, prompt_hash="h" + version,
        model=model, sample_index=sample, output=output or f"output of {case_id}", error=error, scores=tuple(scores),
        messages=({"role": "user", "content": f"Write an ad for {case_id}."},),  # distinct generation keys per case
    )  # fmt: skip


def run(run_id: str, cases: Iterable[CaseResult], suite: str = "ads") -> RunResults:
    """A finished run holding ``cases``."""
    cases = list(cases)
    info = RunInfo(run_id=run_id, suite=suite, status="finished", started_at=1.0, planned=len(cases), done=len(cases))
    return RunResults(info, cases)


def value_run(run_id: str, values: Mapping[str, float], name: str = "quality", **kw: object) -> RunResults:
    """A run with one value-only evaluator: case id -> value."""
    return run(run_id, [case(run_id, cid, [score(name, v)], **kw) for cid, v in values.items()])


def pass_run(run_id: str, passes: Mapping[str, bool], name: str = "length", **kw: object) -> RunResults:
    """A run with one pass/fail evaluator: case id -> passed."""
    return run(run_id, [case(run_id, cid, [score(name, float(p), p)], **kw) for cid, p in passes.items()])


def test_builders_make_variants_and_pass_flags() -> None:
    r = pass_run("r1", {"c1": True, "c2": False}, version="2.0.0")
    assert r.variants == ["marketing/ad_copy@2.0.0 | hf:tiny"]
    assert [c.passed for c in r.cases] == [True, False]
