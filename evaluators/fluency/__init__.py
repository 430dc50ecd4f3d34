"""Fluency evaluators: degeneration (offline checks), perplexity (a causal LM) and acceptability (shipped classifier).

Usage: ``EVALUATORS["acceptability"]().score_batch(samples)``; ``calibrate(data_dir)`` measures them on public data.
"""

from __future__ import annotations

from collections.abc import Callable

from evaluators.base import Evaluator
from evaluators.fluency.acceptability import AcceptabilityEvaluator
from evaluators.fluency.calibration import calibrate
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

EVALUATORS: dict[str, Callable[..., Evaluator]] = {
    "degeneration": DegenerationEvaluator,
    "perplexity": PerplexityEvaluator,
    "acceptability": AcceptabilityEvaluator,
}
