"""Figures every report format shows: per-variant and per-evaluator pass rates (Wilson 95% intervals), means,
errors, latency percentiles, and the failed cases with why they failed."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aigc_app.results import CaseResult, RunResults, ScoreRow

__all__ = [
    "EvaluatorSummary",
    "FailedCase",
    "VariantSummary",
    "evaluator_summaries",
    "failed_cases",
    "first_scores",
    "percentile",
    "variant_summaries",
    "wilson",
]


def wilson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float] | None:
    """The Wilson score interval for ``successes`` of ``n`` (None when ``n`` is 0)."""
    from aigc_app.compare.stats import wilson as interval

    return interval(successes, n, alpha) if n > 0 else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100, linear interpolation) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def first_scores(case: CaseResult) -> list[ScoreRow]:
    """The scores of a case's first scoring (rescores are for judge-noise analysis, not verdicts)."""
    return [s for s in case.scores if s.rescore == 0]


def _usable(score: ScoreRow) -> bool:
    return score.applicable and score.error is None and math.isfinite(score.value)


def _latencies(cases: Iterable[CaseResult]) -> list[float]:
    """Latencies of real generations: cached answers and failed calls say nothing about the model's speed."""
    return [c.latency_s for c in cases if c.error is None and not c.cached]


@dataclass(frozen=True)
class VariantSummary:
    """One ``prompt@version | model`` group of a run."""

    variant: str
    prompt_ref: str
    model: str
    cases: int
    passed: int
    errors: int
    eval_errors: int
    repeats: int
    interval: tuple[float, float] | None
    means: dict[str, float | None]
    latency_p50: float | None
    latency_p95: float | None
    cost_usd: float | None
    tokens_out: int

    @property
    def pass_rate(self) -> float | None:
        """Share of cases that passed (None without cases)."""
        return self.passed / self.cases if self.cases else None


@dataclass(frozen=True)
class EvaluatorSummary:
    """One evaluator across every case of a run (first scorings only)."""

    evaluator: str
    versions: tuple[str, ...]
    scored: int
    mean: float | None
    gating: int
    passed: int
    errors: int
    not_applicable: int
    advisory: int
    threshold: float | None
    interval: tuple[float, float] | None
    values: list[float] = field(default_factory=list, repr=False)

    @property
    def pass_rate(self) -> float | None:
        """Share of gating scores that passed (None when the evaluator never gated)."""
        return self.passed / self.gating if self.gating else None


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _variant_summary(variant: str, cases: list[CaseResult], evaluators: Sequence[str]) -> VariantSummary:
    values: dict[str, list[float]] = defaultdict(list)
    eval_errors = 0
    for case in cases:
        for score in first_scores(case):
            if score.error is not None:
                eval_errors += 1
            elif _usable(score):
                values[score.evaluator].append(score.value)
    passed = sum(c.passed for c in cases)
    latencies = _latencies(cases)
    costs = [c.cost_usd for c in cases if c.cost_usd is not None]
    return VariantSummary(
        variant=variant,
        prompt_ref=cases[0].prompt_ref,
        model=cases[0].model,
        cases=len(cases),
        passed=passed,
        errors=sum(c.error is not None for c in cases),
        eval_errors=eval_errors,
        repeats=len({c.sample_index for c in cases}),
        interval=wilson(passed, len(cases)),
        means={name: _mean(values.get(name, [])) for name in evaluators},
        latency_p50=percentile(latencies, 50),
        latency_p95=percentile(latencies, 95),
        cost_usd=sum(costs) if costs else None,
        tokens_out=sum(c.tokens_out for c in cases),
    )


def variant_summaries(results: RunResults) -> list[VariantSummary]:
    """One summary per variant, in the run's first-seen order."""
    groups: dict[str, list[CaseResult]] = defaultdict(list)
    for case in results.cases:
        groups[case.variant].append(case)
    evaluators = results.evaluator_names
    return [_variant_summary(variant, cases, evaluators) for variant, cases in groups.items()]


def evaluator_summaries(results: RunResults) -> list[EvaluatorSummary]:
    """One summary per evaluator, in first-seen order."""
    scores: dict[str, list[ScoreRow]] = defaultdict(list)
    for case in results.cases:
        for score in first_scores(case):
            scores[score.evaluator].append(score)
    return [_evaluator_summary(name, rows) for name, rows in scores.items()]


def _evaluator_summary(name: str, rows: list[ScoreRow]) -> EvaluatorSummary:
    values = [s.value for s in rows if _usable(s)]
    gating = [s for s in rows if s.gating and s.error is None]
    passed = sum(bool(s.passed) for s in gating)
    thresholds = Counter(s.threshold for s in rows if s.threshold is not None)
    return EvaluatorSummary(
        evaluator=name,
        versions=tuple(dict.fromkeys(s.evaluator_version for s in rows)),
        scored=len(values),
        mean=_mean(values),
        gating=len(gating),
        passed=passed,
        errors=sum(s.error is not None for s in rows),
        not_applicable=sum(not s.applicable for s in rows),
        advisory=sum(s.advisory for s in rows),
        threshold=thresholds.most_common(1)[0][0] if thresholds else None,
        interval=wilson(passed, len(gating)),
        values=values,
    )


@dataclass(frozen=True)
class FailedCase:
    """A case that did not pass: which evaluators failed or errored, and the first reason."""

    case: CaseResult
    failing: tuple[str, ...]
    reason: str


def failed_cases(results: RunResults) -> list[FailedCase]:
    """Every case that did not pass, in run order."""
    return [_failure(c) for c in results.cases if not c.passed]


def _failure(case: CaseResult) -> FailedCase:
    if case.error is not None:
        return FailedCase(case, ("generation (error)",), case.error)
    failing: list[str] = []
    reasons: list[str] = []
    for score in first_scores(case):
        if score.error is not None and not score.advisory and score.applicable:
            failing.append(f"{score.evaluator} (error)")
            reasons.append(f"{score.evaluator}: {score.error}")
        elif score.gating and not score.passed:
            failing.append(score.evaluator)
            reasons.append(f"{score.evaluator}: {score.reason or _below(score)}")
    return FailedCase(case, tuple(failing), reasons[0] if reasons else "")


def _below(score: ScoreRow) -> str:
    if score.threshold is None:
        return f"score {score.value:.2f}"
    return f"score {score.value:.2f} below threshold {score.threshold:.2f}"
