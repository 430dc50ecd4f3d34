"""Evaluators over the check registry: :class:`AdherenceEvaluator` scores a sample against its prompt's ``expect``
block; :class:`IFEvalEvaluator` scores IFEval-style samples (instruction ids and kwargs in the sample's metadata).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from evaluators.adherence.checks import BoundCheck, CheckResult, CheckSpec, bind
from evaluators.adherence.custom import AIGC_CHECKS
from evaluators.adherence.instructions import IFEVAL_CHECKS
from evaluators.base import Sample, Score
from evaluators.errors import InvalidArguments

__all__ = ["CHECKS", "AdherenceEvaluator", "IFEvalEvaluator", "Mode"]

Mode = Literal["strict", "loose"]

CHECKS: Mapping[str, CheckSpec] = MappingProxyType({**IFEVAL_CHECKS, **AIGC_CHECKS})
"""Every check an ``expect`` block may name: IFEval's 25 instruction ids and aigc's own."""


def _mode(mode: str) -> Mode:
    if mode not in ("strict", "loose"):
        raise InvalidArguments(f"mode must be 'strict' or 'loose', not {mode!r}")
    return mode  # type: ignore[return-value]


def _score(name: str, version: str, mode: Mode, results: Sequence[CheckResult]) -> Score:
    passed = [bool(r.loose) if mode == "loose" else r.strict for r in results]
    failed = [r for r, ok in zip(results, passed, strict=True) if not ok]
    value = sum(passed) / len(passed) if passed else 1.0
    reason = "; ".join(f"{r.id}: {r.reason}" for r in failed) or f"all {len(results)} checks passed"
    details = {"mode": mode, "checks": [r.to_dict(mode) for r in results]}
    return Score(name=name, value=value, passed=not failed, reason=reason, details=details, evaluator_version=version)


def _evaluate(checks: Sequence[BoundCheck], sample: Sample, mode: Mode) -> list[CheckResult]:
    """Every check's result; the loose verdicts (8 readings of the output) are only worked out in loose mode."""
    return [check.evaluate(sample.output, sample, need_loose=mode == "loose") for check in checks]


def _split_expectation(expectation: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if "check" not in expectation:
        raise InvalidArguments(f"an expect entry needs a 'check' key: {dict(expectation)!r}")
    kwargs = {k: v for k, v in expectation.items() if k != "check"}
    return str(expectation["check"]), kwargs


@dataclass(frozen=True)
class AdherenceEvaluator:
    """Scores how many of the prompt's ``expect`` checks the output satisfies (IFEval ids and aigc's own)."""

    mode: Mode = "strict"
    checks: Mapping[str, CheckSpec] = field(default_factory=lambda: CHECKS)
    name: str = "adherence"
    version: str = "1"

    def __post_init__(self) -> None:
        _mode(self.mode)

    def bind(self, expect: Sequence[Mapping[str, Any]]) -> list[BoundCheck]:
        """Validate an ``expect`` block (raises UnknownEvaluator / InvalidArguments on a bad entry)."""
        return [bind(*_split_expectation(e), self.checks) for e in expect]

    def score(self, sample: Sample) -> Score:
        """Value: the fraction of checks passed; passed: all of them; details: one result per check."""
        results = _evaluate(self.bind(sample.expect), sample, self.mode)
        return _score(self.name, self.version, self.mode, results)


@dataclass(frozen=True)
class IFEvalEvaluator:
    """IFEval's scoring: ``metadata["instruction_id_list"]`` and ``metadata["kwargs"]`` name the instructions."""

    mode: Mode = "strict"
    name: str = "ifeval"
    version: str = "1"

    def __post_init__(self) -> None:
        _mode(self.mode)

    def bind(self, metadata: Mapping[str, Any]) -> list[BoundCheck]:
        """The sample's instructions with their kwargs, validated."""
        ids = list(metadata.get("instruction_id_list") or [])
        kwargs = list(metadata.get("kwargs") or [{}] * len(ids))
        if len(kwargs) != len(ids):
            raise InvalidArguments(f"ifeval: {len(ids)} instruction ids but {len(kwargs)} kwargs")
        return [bind(i, k, IFEVAL_CHECKS) for i, k in zip(ids, kwargs, strict=True)]

    def score(self, sample: Sample) -> Score:
        """Value: the fraction of instructions followed; passed: all followed (IFEval's prompt-level accuracy)."""
        results = _evaluate(self.bind(sample.metadata), sample, self.mode)
        return _score(self.name, self.version, self.mode, results)
