"""Instruction adherence: IFEval's 25 verifiable instructions and aigc's own checks, behind one registry.

    from evaluators.adherence import EVALUATORS
    score = EVALUATORS["adherence"]().score(sample)   # sample.expect: [{"check": "max_chars", "limit": 280}, ...]
    score = EVALUATORS["ifeval"](mode="loose").score(sample)

:func:`calibrate` measures agreement with the official IFEval checker on labelled responses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from evaluators.adherence.calibration import calibrate, disagreements
from evaluators.adherence.checks import BoundCheck, CheckResult, CheckSpec, Param, Verdict, bind, loose_variants
from evaluators.adherence.custom import AIGC_CHECKS, PLATFORM_LIMITS
from evaluators.adherence.evaluator import CHECKS, AdherenceEvaluator, IFEvalEvaluator, Mode
from evaluators.adherence.instructions import IFEVAL_CHECKS
from evaluators.base import Evaluator

__all__ = [
    "AIGC_CHECKS",
    "CHECKS",
    "EVALUATORS",
    "IFEVAL_CHECKS",
    "PLATFORM_LIMITS",
    "AdherenceEvaluator",
    "BoundCheck",
    "CheckResult",
    "CheckSpec",
    "IFEvalEvaluator",
    "Mode",
    "Param",
    "Verdict",
    "bind",
    "calibrate",
    "disagreements",
    "loose_variants",
]

EVALUATORS: Mapping[str, Callable[..., Evaluator]] = MappingProxyType(
    {"adherence": AdherenceEvaluator, "ifeval": IFEvalEvaluator}
)
"""Evaluator factories of this package by name."""
