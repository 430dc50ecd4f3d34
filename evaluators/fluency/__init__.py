"""Fluency evaluators: degeneration (offline checks), perplexity (a causal LM) and acceptability (shipped classifier).

Usage: ``EVALUATORS["acceptability"]().score_batch(samples)``; ``calibrate(data_dir)`` measures them on public data.
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
    "PerplexityEvaluator",
    "calibrate",
    "normalise_perplexity",
]


def _acceptability(**params: Any) -> Evaluator:
    """The shipped acceptability scorer (needs numpy, imported here so that the package imports without it)."""
    from evaluators.fluency.acceptability import AcceptabilityEvaluator as cls

    return cls(**params)


def calibrate(data_dir: Path) -> list[dict[str, Any]]:
    """Measure the fluency evaluators on CoLA and SummEval (see ``evaluators.fluency.calibration``)."""
    from evaluators.fluency.calibration import calibrate as run

    return run(data_dir)


def __getattr__(name: str) -> Any:
    if name == "AcceptabilityEvaluator":
        from evaluators.fluency.acceptability import AcceptabilityEvaluator

        return AcceptabilityEvaluator
    raise AttributeError(name)


EVALUATORS: dict[str, Callable[..., Evaluator]] = {
    "degeneration": DegenerationEvaluator,
    "perplexity": PerplexityEvaluator,
    "acceptability": _acceptability,
}
