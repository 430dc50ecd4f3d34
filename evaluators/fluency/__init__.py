"""Fluency evaluators: degeneration (offline checks), slor and fluency_long (a small local LM, default the cached
SmolLM2), perplexity (any causal LM) and acceptability (shipped classifier, advisory).

Usage: ``EVALUATORS["slor"]().score_batch(samples)``; ``calibrate(data_dir)`` measures them on public data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluators.base import Evaluator
from evaluators.fluency.degeneration import DegenerationEvaluator
from evaluators.fluency.perplexity import PerplexityEvaluator, normalise_perplexity

__all__ = [
    "EVALUATORS",
    "AcceptabilityEvaluator",
    "DegenerationEvaluator",
    "FluencyLongEvaluator",
    "PerplexityEvaluator",
    "SlorEvaluator",
    "calibrate",
    "normalise_perplexity",
]


def _acceptability(**params: Any) -> Evaluator:
    """The shipped acceptability scorer (needs numpy, imported here so that the package imports without it)."""
    from evaluators.fluency.acceptability import AcceptabilityEvaluator as cls

    return cls(**params)


def _slor(**params: Any) -> Evaluator:
    """SLOR under a local causal LM (numpy and torch are imported here, not when the package is)."""
    from evaluators.fluency.slor import SlorEvaluator

    return SlorEvaluator(**params)


def _fluency_long(**params: Any) -> Evaluator:
    """Expected expert fluency of long texts from SLOR and degeneration statistics (a shipped ridge)."""
    from evaluators.fluency.long import FluencyLongEvaluator

    return FluencyLongEvaluator(**params)


def calibrate(data_dir: Path) -> list[dict[str, Any]]:
    """Measure the fluency evaluators on CoLA and SummEval (see ``evaluators.fluency.calibration``)."""
    from evaluators.fluency.calibration import calibrate as run

    return run(data_dir)


def __getattr__(name: str) -> Any:
    if name == "AcceptabilityEvaluator":
        from evaluators.fluency.acceptability import AcceptabilityEvaluator

        return AcceptabilityEvaluator
    if name == "FluencyLongEvaluator":
        from evaluators.fluency.long import FluencyLongEvaluator

        return FluencyLongEvaluator
    if name == "SlorEvaluator":
        from evaluators.fluency.slor import SlorEvaluator

        return SlorEvaluator
    raise AttributeError(name)


EVALUATORS: dict[str, Callable[..., Evaluator]] = {
    "degeneration": DegenerationEvaluator,
    "perplexity": PerplexityEvaluator,
    "acceptability": _acceptability,
    "slor": _slor,
    "fluency_long": _fluency_long,
}
