"""fluency_long: expected expert fluency (1-5) of a multi-sentence text, from SLOR and degeneration statistics.

A ridge regression (``data/fluency_long.json``, fitted by ``fit_slor.py`` on the shared SummEval half) over
``FEATURES``: whole-text SLOR, the worst sentence's SLOR, the 10th percentile and minimum of per-token scores,
log token count, sentence count, the shares of repeated 3- and 4-grams, and degeneration's repeated-sentence and
truncation penalties. ``value = (predicted rating - 1) / 4``. It has no verdict of its own (``passed`` is None
unless a threshold is given): its cross-validated Spearman with the experts is about 0.27 (``CALIBRATION.md``),
a ranking hint for long outputs rather than a gate. Texts under ``MIN_WORDS`` words are not applicable (the
model was fitted on news summaries of 14 to 100 words; use ``slor`` for sentences).

Why a second evaluator rather than a mode of ``slor``: the two answer different questions with different
targets (slor: is this sentence acceptable, calibrated on CoLA labels with a verdict; fluency_long: how would an
editor rate this summary, a regression with no trustworthy cut), so each Score means one thing.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluators.base import Sample, Score
from evaluators.fluency.degeneration import DegenerationEvaluator
from evaluators.fluency.slor import DEFAULT_MODEL, SlorEvaluator, SlorResult

__all__ = ["FEATURES", "MIN_WORDS", "FluencyLongEvaluator", "coefficients_path", "long_features"]

FEATURES = (
    "slor",
    "min_sentence_slor",
    "p10_token_slor",
    "min_token_logprob",
    "log_tokens",
    "sentences",
    "repeated_3grams",
    "repeated_4grams",
    "repeated_sentences",
    "truncated",
)
MIN_WORDS = 20


def coefficients_path() -> Path:
    """Where the shipped ridge coefficients live."""
    return Path(__file__).with_name("data") / "fluency_long.json"


@functools.cache
def _coefficients() -> dict[str, Any]:
    return json.loads(coefficients_path().read_text(encoding="utf-8"))


def long_features(result: SlorResult, text: str) -> dict[str, float]:
    """The FEATURES of one text, from its SLOR result and degeneration's checks."""
    checks = DegenerationEvaluator().score(Sample(output=text)).details
    diff = result.lm - result.unigram
    sentences = result.sentence_slors() or [result.slor]
    ngrams = checks.get("repeated_ngrams", {})
    return {
        "slor": result.slor,
        "min_sentence_slor": min(sentences),
        "p10_token_slor": float(np.percentile(diff, 10)),
        "min_token_logprob": float(result.lm.min()),
        "log_tokens": math.log(result.tokens),
        "sentences": float(len(result.sentences)),
        "repeated_3grams": float(ngrams.get("repeated_3grams", 0.0)),
        "repeated_4grams": float(ngrams.get("repeated_4grams", 0.0)),
        "repeated_sentences": float(checks.get("repeated_sentences", {}).get("penalty", 0.0)),
        "truncated": float(checks.get("truncated", {}).get("penalty", 0.0)),
    }


class FluencyLongEvaluator:
    """Rates the fluency of summaries and longer texts as an expert would (1-5, mapped to 0..1), advisory."""

    name = "fluency_long"
    version = "1"

    def __init__(self, model: str | Path | None = None, *, threshold: float | None = None, **slor: Any) -> None:
        self.slor = SlorEvaluator(model, **slor)
        self.threshold = threshold

    def score(self, sample: Sample) -> Score:
        """One sample's expected fluency."""
        return self.score_batch([sample])[0]

    def score_batch(self, samples: Sequence[Sample]) -> list[Score]:
        """All samples; the LM reads the long enough ones in shared batches."""
        scores: list[Score | None] = [None] * len(samples)
        chosen = []
        for i, sample in enumerate(samples):
            words = len(sample.output.split())
            if self.slor.model is None:
                why = f"the SLOR model {DEFAULT_MODEL} is not in the model cache: run `aigc models pull smollm2`"
                scores[i] = Score.not_applicable(self.name, why, self.version)
            elif words < MIN_WORDS:
                why = f"{words} words, under {MIN_WORDS} (use slor)"
                scores[i] = Score.not_applicable(self.name, why, self.version)
            else:
                chosen.append(i)
        results = self.slor.results([samples[i].output for i in chosen]) if chosen else []
        for i, result in zip(chosen, results, strict=True):
            scores[i] = self._score(long_features(result, samples[i].output))
        return [s for s in scores if s is not None]

    def _score(self, features: dict[str, float]) -> Score:
        from evaluators.fluency.fitting import predict_ridge

        fit = _coefficients()
        rating = float(predict_ridge(fit, np.array([[features[name] for name in fit["features"]]]))[0])
        rating = min(5.0, max(1.0, rating))
        value = (rating - 1.0) / 4.0
        passed = None if self.threshold is None else value >= self.threshold
        details = {"expected_rating": rating, **{k: round(v, 4) for k, v in features.items()}}
        reason = f"expected expert fluency {rating:.2f} of 5 (SLOR {features['slor']:.2f})"
        return Score(self.name, value, passed, self.threshold, reason, details, self.version)
