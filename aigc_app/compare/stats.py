"""The statistics of a paired comparison: pure functions over numpy arrays, checked against scipy / statsmodels.

    low, high = bootstrap_ci(diffs, n_boot=10_000, seed=0)      # paired (or cluster) percentile interval
    p = mcnemar_exact(a_only=3, b_only=11)                        # exact McNemar on the discordant pairs
    mde(sd_diff=0.2, n=40)                                        # smallest difference 80% power can see

Values are on the evaluators' 0..1 scale; pass/fail outcomes are 0/1 arrays. Nothing here knows about runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = [
    "VarianceShares",
    "bootstrap_ci",
    "bootstrap_means",
    "bootstrap_p",
    "bootstrap_summary",
    "holm",
    "mcnemar_exact",
    "mde",
    "pass_at_k",
    "pass_hat_k",
    "variance_decomposition",
    "wilson",
]

# Rows of bootstrap resamples drawn at once: bounds memory at about 16 MB for any suite size.
_CELLS_PER_CHUNK = 2_000_000
# Up to this many distinct values, resampling draws multinomial counts of the values instead of indices.
_MAX_LEVELS = 64


def bootstrap_means(values: np.ndarray, *, n_boot: int = 10_000, seed: int | Sequence[int] = 0) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of ``values``.

    Given one paired difference per case (repeats averaged within the case first) this is the paired bootstrap,
    and with repeats the cluster bootstrap: whole cases are resampled, never single repeats. Values with few
    distinct levels (pass/fail differences, graded judges) are resampled as multinomial counts of the levels:
    the same distribution, without drawing every index."""
    values = np.asarray(values, dtype=float)
    n = values.size
    if n == 0:
        return np.empty(0)
    rng = np.random.default_rng(seed)
    levels, counts = np.unique(values, return_counts=True)
    if levels.size <= _MAX_LEVELS:
        return rng.multinomial(n, counts / n, size=n_boot) @ levels / n
    rows = max(1, _CELLS_PER_CHUNK // n)
    out = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        out[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return out


def bootstrap_summary(
    values: np.ndarray, *, confidence: float = 0.95, n_boot: int = 10_000, seed: int | Sequence[int] = 0
) -> tuple[float, float, float]:
    """Percentile interval of the mean of ``values`` and the two-sided p-value for "the mean is 0", from one
    set of resamples: (low, high, p). The p-value shifts the resampled means to the null (centred on 0) and
    counts the share at least as far from 0 as the observed mean ((1 + hits) / (1 + B))."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    boots = bootstrap_means(values, n_boot=n_boot, seed=seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(boots, [tail, 1 - tail])
    observed = float(values.mean())
    spread = np.abs(boots - observed)
    if not np.any(spread > 1e-12) and abs(observed) <= 1e-12:
        return float(low), float(high), 1.0  # every resample is an observed mean of 0: no evidence of a change
    hits = int(np.count_nonzero(spread >= abs(observed) - 1e-12))
    return float(low), float(high), (1 + hits) / (1 + boots.size)


def bootstrap_ci(
    values: np.ndarray, *, confidence: float = 0.95, n_boot: int = 10_000, seed: int | Sequence[int] = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (paired differences, one per case)."""
    low, high, _ = bootstrap_summary(values, confidence=confidence, n_boot=n_boot, seed=seed)
    return low, high


def bootstrap_p(values: np.ndarray, *, n_boot: int = 10_000, seed: int | Sequence[int] = 0) -> float:
    """Two-sided bootstrap p-value for "the mean of ``values`` is 0" (see :func:`bootstrap_summary`)."""
    return bootstrap_summary(values, n_boot=n_boot, seed=seed)[2]


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Exact McNemar p-value (two-sided) from the discordant pairs: ``a_only`` passed only in the baseline,
    ``b_only`` only in the candidate. 1.0 when there are none."""
    from statsmodels.stats.contingency_tables import mcnemar  # imported late: statsmodels loads pandas

    if a_only + b_only == 0:
        return 1.0
    return float(mcnemar([[0, a_only], [b_only, 0]], exact=True).pvalue)


def wilson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a pass rate; (nan, nan) when ``n`` is 0.

    The closed form (Wilson 1927), equal to statsmodels' ``proportion_confint(method="wilson")`` (the tests check
    it): importing statsmodels costs about 1.4 s, more than a whole warm ``aigc eval`` should take."""
    if n <= 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> list[float]:
    """Holm-adjusted p-values; NaN entries (tests that could not be run) stay NaN and are not in the family."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=alpha, method="holm")[1]
    return [float(x) for x in out]


def mde(sd_diff: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable difference of a paired two-sided test: (z_{1-alpha/2} + z_power) * sd_diff / sqrt(n)
    (Miller, "Adding Error Bars to Evals", 2024). NaN when ``n`` < 2."""
    from scipy.stats import norm

    if n < 2 or math.isnan(sd_diff):
        return math.nan
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * sd_diff / math.sqrt(n))


def _comb_ratio(top: int, bottom: int, k: int) -> float:
    """C(top, k) / C(bottom, k), 0 when top < k."""
    return math.comb(top, k) / math.comb(bottom, k) if top >= k else 0.0


def pass_at_k(passes: Sequence[int], repeats: Sequence[int], k: int) -> float:
    """Mean over cases of the unbiased pass@k (at least one of k draws passes: 1 - C(n-c, k) / C(n, k))."""
    scores = [1.0 - _comb_ratio(n - c, n, k) for c, n in zip(passes, repeats, strict=True) if n >= k]
    return float(np.mean(scores)) if scores else math.nan


def pass_hat_k(passes: Sequence[int], repeats: Sequence[int], k: int) -> float:
    """Mean over cases of pass^k (all of k draws pass: C(c, k) / C(n, k)), the reliability figure."""
    scores = [_comb_ratio(c, n, k) for c, n in zip(passes, repeats, strict=True) if n >= k]
    return float(np.mean(scores)) if scores else math.nan


@dataclass(frozen=True)
class VarianceShares:
    """Where score variance comes from: the judge (rescores of one output), generation (repeats of one case)
    and the cases themselves; method-of-moments estimates, clipped at 0."""

    judge: float
    generation: float
    case: float

    @property
    def total(self) -> float:
        """The sum of the three components."""
        return self.judge + self.generation + self.case

    def share(self, part: str) -> float:
        """One component as a fraction of the total (NaN when the total is 0)."""
        return getattr(self, part) / self.total if self.total > 0 else math.nan


def variance_decomposition(scores: Sequence[Sequence[Sequence[float]]]) -> VarianceShares | None:
    """Nested decomposition of ``scores[case][repeat][rescore]``; None without any output scored twice.

    judge = mean within-output variance; generation = mean within-case variance of output means less what the
    judge adds to them; case = variance of case means less what generation and judge add to them."""
    judge_vars = [np.var(r, ddof=1) for case in scores for r in case if len(r) >= 2]
    if not judge_vars:
        return None
    judge = float(np.mean(judge_vars))
    n_rescores = float(np.mean([len(r) for case in scores for r in case if r]))
    output_means = [[float(np.mean(r)) for r in case if r] for case in scores]
    gen_vars = [np.var(m, ddof=1) for m in output_means if len(m) >= 2]
    generation = max(0.0, float(np.mean(gen_vars)) - judge / n_rescores) if gen_vars else 0.0
    n_repeats = float(np.mean([len(m) for m in output_means if m]))
    case_means = [float(np.mean(m)) for m in output_means if m]
    case = 0.0
    if len(case_means) >= 2:
        case = float(np.var(case_means, ddof=1)) - generation / n_repeats - judge / (n_repeats * n_rescores)
    return VarianceShares(judge=judge, generation=generation, case=max(0.0, case))
