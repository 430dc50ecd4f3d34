"""Each statistic of aigc_app.compare.stats checked against scipy / statsmodels or known values (seeded)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from aigc_app.compare import stats


def _stat(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(y - x, axis=axis)


@pytest.mark.parametrize("n", [12, 40, 100])
def test_paired_bootstrap_interval_matches_scipy_percentile(n: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.uniform(0, 1, n)
    b = np.clip(a + rng.normal(0.05, 0.1, n), 0, 1)
    ours = stats.bootstrap_ci(b - a, n_boot=20_000, seed=1)
    ref = st.bootstrap((a, b), _stat, paired=True, method="percentile", n_resamples=20_000, rng=2)
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert ours[0] == pytest.approx(ref.confidence_interval.low, abs=0.03 * width)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, abs=0.03 * width)
    assert ours[0] < np.mean(b - a) < ours[1]


def test_bootstrap_interval_is_seeded_and_chunked_for_large_suites() -> None:
    d = np.random.default_rng(0).normal(0.1, 0.2, 50)
    assert stats.bootstrap_ci(d, seed=3) == stats.bootstrap_ci(d, seed=3)
    assert stats.bootstrap_ci(d, seed=3) != stats.bootstrap_ci(d, seed=4)
    big = np.random.default_rng(1).normal(0.0, 1.0, 300_000)  # more cells than one chunk holds
    means = stats.bootstrap_means(big, n_boot=40, seed=0)
    assert means.shape == (40,)
    assert np.std(means) == pytest.approx(1 / math.sqrt(300_000), rel=0.35)


def test_bootstrap_p_agrees_with_paired_t_test_in_direction_and_size() -> None:
    rng = np.random.default_rng(7)

    def centred(mean: float) -> np.ndarray:
        x = rng.normal(0.0, 0.1, 40)
        return x - x.mean() + mean

    shifted, borderline, null = centred(0.05), centred(0.03), centred(0.002)
    assert stats.bootstrap_p(shifted) < 0.01
    assert st.ttest_1samp(shifted, 0).pvalue < 0.01
    t_p = st.ttest_1samp(borderline, 0).pvalue
    assert 0.02 < t_p < 0.2
    assert stats.bootstrap_p(borderline) == pytest.approx(t_p, rel=0.4)
    assert stats.bootstrap_p(null) > 0.5
    assert stats.bootstrap_p(np.zeros(20)) == 1.0
    assert stats.bootstrap_p(np.array([0.1] * 20)) < 0.001  # a constant shift is certain


def test_unpaired_test_misses_a_consistent_shift_the_paired_test_finds() -> None:
    """Large between-case variance, small consistent shift: Welch's t-test on the two columns sees nothing,
    the paired bootstrap (and scipy's paired t-test) see it at once."""
    rng = np.random.default_rng(42)
    a = rng.uniform(0.1, 0.9, 30)
    b = a - 0.03 + rng.normal(0, 0.01, 30)
    assert st.ttest_ind(a, b, equal_var=False).pvalue > 0.5
    assert st.ttest_rel(a, b).pvalue < 1e-6
    assert stats.bootstrap_p(b - a) < 0.001
    _low, high = stats.bootstrap_ci(b - a)
    assert high < 0


@pytest.mark.parametrize(("a_only", "b_only"), [(3, 11), (0, 12), (5, 5), (1, 0), (20, 7)])
def test_exact_mcnemar_is_the_binomial_test_on_discordant_pairs(a_only: int, b_only: int) -> None:
    expected = st.binomtest(min(a_only, b_only), a_only + b_only, 0.5).pvalue
    assert stats.mcnemar_exact(a_only, b_only) == pytest.approx(expected, rel=1e-9)


def test_mcnemar_without_discordant_pairs_is_one() -> None:
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_wilson_matches_statsmodels() -> None:
    from statsmodels.stats.proportion import proportion_confint

    for n in (1, 2, 7, 20, 100, 1000):
        for successes in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for alpha in (0.05, 0.1, 0.01):
                expected = proportion_confint(successes, n, alpha=alpha, method="wilson")
                assert stats.wilson(successes, n, alpha) == pytest.approx(expected, abs=1e-12)


def test_wilson_matches_known_values() -> None:
    assert stats.wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert stats.wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert stats.wilson(20, 20) == pytest.approx((0.8389, 1.0), abs=1e-4)
    assert all(math.isnan(x) for x in stats.wilson(0, 0))


def test_holm_matches_multipletests_and_skips_nan() -> None:
    p = [0.01, 0.04, 0.03, 0.2]
    assert stats.holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    with_nan = stats.holm([0.01, math.nan, 0.04])
    assert with_nan[0] == pytest.approx(0.02) and math.isnan(with_nan[1]) and with_nan[2] == pytest.approx(0.04)


def test_mde_follows_the_power_formula() -> None:
    z = st.norm.ppf(0.975) + st.norm.ppf(0.8)
    assert stats.mde(0.2, 40) == pytest.approx(z * 0.2 / math.sqrt(40))
    assert stats.mde(0.2, 40) == pytest.approx(0.0886, abs=1e-4)
    assert stats.mde(0.2, 160) == pytest.approx(stats.mde(0.2, 40) / 2)
    assert math.isnan(stats.mde(0.2, 1))


def test_mde_is_what_a_paired_test_detects_80_percent_of_the_time() -> None:
    """Simulate: a true shift of exactly the MDE is found by the paired t-test in about 80% of suites."""
    rng = np.random.default_rng(5)
    sd, n = 0.15, 50
    shift = stats.mde(sd, n)
    hits = [st.ttest_1samp(rng.normal(shift, sd, n), 0).pvalue < 0.05 for _ in range(2000)]
    assert np.mean(hits) == pytest.approx(0.8, abs=0.04)


def test_pass_at_k_and_pass_hat_k_known_values() -> None:
    # case 1: 3 of 3 passed, case 2: 1 of 3 passed
    assert stats.pass_hat_k([3, 1], [3, 3], 2) == pytest.approx(0.5)
    assert stats.pass_at_k([3, 1], [3, 3], 2) == pytest.approx((1 + 2 / 3) / 2)
    assert stats.pass_hat_k([2], [4], 1) == pytest.approx(0.5)
    assert stats.pass_at_k([2], [4], 1) == pytest.approx(0.5)
    assert stats.pass_hat_k([2], [4], 3) == 0.0
    assert stats.pass_at_k([2], [4], 3) == 1.0


def test_variance_decomposition_recovers_simulated_components() -> None:
    rng = np.random.default_rng(11)
    case_sd, gen_sd, judge_sd = 0.3, 0.2, 0.1
    scores = []
    for _ in range(400):
        c = rng.normal(0, case_sd)
        scores.append([list(c + g + rng.normal(0, judge_sd, 3)) for g in rng.normal(0, gen_sd, 4)])
    shares = stats.variance_decomposition(scores)
    assert shares is not None
    assert shares.judge == pytest.approx(judge_sd**2, rel=0.1)
    assert shares.generation == pytest.approx(gen_sd**2, rel=0.15)
    assert shares.case == pytest.approx(case_sd**2, rel=0.2)
    assert shares.share("judge") + shares.share("generation") + shares.share("case") == pytest.approx(1.0)


def test_variance_decomposition_needs_rescores() -> None:
    assert stats.variance_decomposition([[[0.5], [0.7]], [[0.1], [0.2]]]) is None


def test_discrete_differences_resampled_as_counts_match_scipy() -> None:
    """Pass/fail differences (-1, 0, 1) take the multinomial path: same interval as scipy's index resampling."""
    rng = np.random.default_rng(9)
    pa, pb = (rng.random(60) < 0.8).astype(float), (rng.random(60) < 0.55).astype(float)
    ours = stats.bootstrap_ci(pb - pa, n_boot=20_000, seed=1)
    ref = st.bootstrap((pa, pb), _stat, paired=True, method="percentile", n_resamples=20_000, rng=2)
    step = 1 / 60  # resampled means of 60 values in {-1, 0, 1} move in steps of 1/60
    assert ours[0] == pytest.approx(ref.confidence_interval.low, abs=step + 1e-9)
    assert ours[1] == pytest.approx(ref.confidence_interval.high, abs=step + 1e-9)
    boots = stats.bootstrap_means(pb - pa, n_boot=20_000, seed=1)
    assert np.std(boots) == pytest.approx(np.std(pb - pa) / math.sqrt(60), rel=0.05)
