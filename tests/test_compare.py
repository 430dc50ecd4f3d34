"""compare_runs / compare_variants on RunResults built directly: verdicts, pairing, flaky cases, renders."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from test_compare_data import case, pass_run, run, score, value_run

from aigc_app.compare import (
    CompareError,
    compare_runs,
    compare_variants,
    comparison_json,
    comparison_markdown,
    render_comparison,
)
from aigc_app.compare import stats as cstats

N_BOOT = 4000


def _ids(n: int) -> list[str]:
    return [f"case-{i:02d}" for i in range(n)]


def test_pass_fail_drop_regresses_with_exact_mcnemar() -> None:
    ids = _ids(30)
    a = pass_run("ra", dict.fromkeys(ids, True))
    b = pass_run("rb", {cid: i % 3 != 0 for i, cid in enumerate(ids)}, version="1.1.0")  # 10 of 30 now fail
    c = compare_runs(a, b, n_boot=N_BOOT)
    (row,) = c.rows
    assert row.kind == "pass/fail" and row.test == "mcnemar"
    assert (row.a_only, row.b_only) == (10, 0)
    assert row.p == pytest.approx(st.binomtest(0, 10, 0.5).pvalue)
    assert row.pass_rate_a == 1.0 and row.pass_rate_b == pytest.approx(20 / 30)
    assert row.pass_ci_b == pytest.approx(cstats.wilson(20, 30))
    assert row.effect == pytest.approx(-1 / 3)
    assert row.effect_ci[1] < 0 < row.effect_ci[1] + 1
    assert row.verdict == "regressed" and c.regressed
    assert [rc.case_id for rc in c.variants[0].regressed_cases] == ids[::3]


def test_identical_runs_do_not_regress() -> None:
    ids = _ids(20)
    a = pass_run("ra", {cid: i % 2 == 0 for i, cid in enumerate(ids)})
    c = compare_runs(a, pass_run("rb", {cid: i % 2 == 0 for i, cid in enumerate(ids)}), n_boot=N_BOOT)
    (row,) = c.rows
    assert row.p == 1.0 and row.verdict == "no significant change" and not c.regressed
    assert "did not vary" in row.mde_sentence


def test_tolerance_allows_a_significant_but_small_drop() -> None:
    ids = _ids(40)
    a = pass_run("ra", dict.fromkeys(ids, True))
    b = pass_run("rb", {cid: i % 4 != 0 for i, cid in enumerate(ids)})  # -25 points, p ~ 0.002
    assert compare_runs(a, b, n_boot=N_BOOT).regressed
    tolerant = compare_runs(a, b, tolerance=0.3, n_boot=N_BOOT)
    assert tolerant.rows[0].verdict == "within tolerance" and not tolerant.regressed
    assert compare_runs(a, b, tolerance=0.2, n_boot=N_BOOT).regressed


def test_improvement_and_too_few_pairs() -> None:
    ids = _ids(30)
    a = pass_run("ra", {cid: i % 3 != 0 for i, cid in enumerate(ids)})
    b = pass_run("rb", dict.fromkeys(ids, True))
    assert compare_runs(a, b, n_boot=N_BOOT).rows[0].verdict == "improved"
    few = compare_runs(pass_run("ra", dict.fromkeys(ids[:3], True)), pass_run("rb", dict.fromkeys(ids[:3], False)))
    assert few.rows[0].verdict == "too few pairs" and not few.regressed
    assert math.isnan(few.rows[0].p)


def test_value_evaluator_paired_bootstrap_finds_what_welch_misses() -> None:
    """The issue's case: big differences between cases, a small consistent drop in the candidate."""
    rng = np.random.default_rng(3)
    ids = _ids(30)
    base = rng.uniform(0.1, 0.9, 30)
    cand = base - 0.03 + rng.normal(0, 0.01, 30)
    a = value_run("ra", dict(zip(ids, base, strict=True)))
    b = value_run("rb", dict(zip(ids, cand, strict=True)))
    assert st.ttest_ind(base, cand, equal_var=False).pvalue > 0.5  # the unpaired test sees nothing
    c = compare_runs(a, b, n_boot=N_BOOT)
    (row,) = c.rows
    assert row.kind == "value" and row.test == "bootstrap"
    assert row.diff == pytest.approx(float(np.mean(cand - base)))
    ref = st.bootstrap((base, cand), lambda x, y, axis=-1: np.mean(y - x, axis=axis), paired=True,
                       method="percentile", n_resamples=N_BOOT, rng=0).confidence_interval  # fmt: skip
    assert row.ci == pytest.approx((ref.low, ref.high), abs=0.004)
    assert row.p < 0.001 and row.verdict == "regressed" and c.regressed
    assert row.mde == pytest.approx(cstats.mde(float(np.std(cand - base, ddof=1)), 30))


def test_holm_runs_across_evaluators() -> None:
    rng = np.random.default_rng(8)
    ids = _ids(25)
    base = rng.uniform(0.2, 0.8, 25)
    drop = base - rng.normal(0.02, 0.04, 25)
    a = run("ra", [case("ra", c, [score(n, v) for n in "qrs"]) for c, v in zip(ids, base, strict=True)])
    b = run("rb", [case("rb", cid, [score("q", v), score("r", w), score("s", w + 0.01)])
                   for cid, v, w in zip(ids, base, drop, strict=True)])  # fmt: skip
    c = compare_runs(a, b, n_boot=N_BOOT)
    assert [r.evaluator for r in c.rows] == ["q", "r", "s"]
    expected = multipletests([r.p for r in c.rows], method="holm")[1]
    assert [r.p_holm for r in c.rows] == pytest.approx(list(expected))
    assert c.rows[0].verdict == "no significant change"


def _repeat_cases(run_id: str, case_id: str, flags: list[bool], name: str = "length") -> list:
    return [case(run_id, case_id, [score(name, float(p), p)], sample=i) for i, p in enumerate(flags)]


def test_flaky_cases_are_listed_and_kept_out_of_the_test() -> None:
    ids = _ids(12)
    a_cases, b_cases = [], []
    for i, cid in enumerate(ids):
        a_cases += _repeat_cases("ra", cid, [True, True, True])
        flags = [True, False, True] if i < 4 else ([False, False, False] if i < 10 else [True, True, True])
        b_cases += _repeat_cases("rb", cid, flags)
    c = compare_runs(run("ra", a_cases), run("rb", b_cases), n_boot=N_BOOT)
    (row,) = c.rows
    flaky = c.variants[0].flaky
    assert [(f.case_id, f.side, f.passes, f.repeats) for f in flaky] == [(cid, "b", 2, 3) for cid in ids[:4]]
    assert row.n_flaky_excluded == 4 and row.n_pairs == 8
    assert (row.a_only, row.b_only) == (6, 0)
    assert row.p == pytest.approx(cstats.mcnemar_exact(6, 0))
    assert row.k == 3 and row.pass_hat_k_a == 1.0
    assert row.pass_hat_k_b == pytest.approx(2 / 12)  # cases 10 and 11 pass all three
    assert row.pass_at_k_b == pytest.approx(6 / 12)  # flaky ones pass at least once too
    # flaky cases are not "regressed cases": they passed 2 of 3 (most repeats) in the candidate
    assert [rc.case_id for rc in c.variants[0].regressed_cases] == ids[4:10]


def test_repeats_are_averaged_within_a_case_and_resampled_as_clusters() -> None:
    ids = _ids(10)
    rng = np.random.default_rng(2)
    a_vals = {cid: rng.uniform(0.3, 0.7, 3) for cid in ids}
    b_vals = {cid: rng.uniform(0.3, 0.7, 1 + i % 3) for i, cid in enumerate(ids)}  # unequal repeats
    a = run("ra", [case("ra", cid, [score("q", v)], sample=k) for cid in ids for k, v in enumerate(a_vals[cid])])
    b = run("rb", [case("rb", cid, [score("q", v)], sample=k) for cid in ids for k, v in enumerate(b_vals[cid])])
    (row,) = compare_runs(a, b, n_boot=N_BOOT).rows
    case_diffs = np.array([b_vals[c].mean() - a_vals[c].mean() for c in ids])
    assert row.n_pairs == 10
    assert row.diff == pytest.approx(case_diffs.mean())
    assert row.ci == pytest.approx(cstats.bootstrap_ci(case_diffs, n_boot=N_BOOT, seed=[0, 0]), abs=0.02)


def test_rescores_give_the_judges_share_of_the_variance() -> None:
    rng = np.random.default_rng(4)
    rows = []
    for cid in _ids(30):
        true = rng.uniform(0.2, 0.8)
        for k in range(3):
            out = true + rng.normal(0, 0.05)
            rows.append(case("ra", cid, [score("judge", out + rng.normal(0, 0.1), rescore=r) for r in range(3)],
                             sample=k))  # fmt: skip
    a = run("ra", rows)
    (row,) = compare_runs(a, run("rb", [case("rb", c.case_id, c.scores, sample=c.sample_index) for c in rows])).rows
    shares = row.variance_a
    assert shares is not None and row.variance_b == shares
    assert shares.judge == pytest.approx(0.01, rel=0.3)
    assert shares.share("judge") > shares.share("generation")
    assert "judge" in render_comparison(compare_runs(a, a, n_boot=200))


def test_generation_errors_count_as_failures() -> None:
    ids = _ids(10)
    a = pass_run("ra", dict.fromkeys(ids, True))
    b = run("rb", [case("rb", cid, [], error="timeout after 30s") for cid in ids])
    c = compare_runs(a, b, n_boot=N_BOOT)
    assert c.rows[0].pass_rate_b == 0.0 and c.regressed
    assert c.variants[0].regressed_cases[0].failures == ("generation error: timeout after 30s",)


def test_advisory_evaluators_never_regress() -> None:
    ids = _ids(20)
    a = run("ra", [case("ra", cid, [score("tone", 1.0, True, advisory=True)]) for cid in ids])
    b = run("rb", [case("rb", cid, [score("tone", 0.0, False, advisory=True)]) for cid in ids])
    c = compare_runs(a, b, n_boot=N_BOOT)
    assert c.rows[0].advisory and c.rows[0].verdict == "regressed" and not c.regressed
    assert "advisory: reported, never a regression" in render_comparison(c)


def test_variants_pair_by_name_then_prompt_then_model() -> None:
    ids = _ids(8)
    a = run("ra", [case("ra", cid, [score("q", 0.5)], model=m) for m in ("hf:x", "hf:y") for cid in ids])
    b = run("rb", [case("rb", cid, [score("q", 0.5)], model=m) for m in ("hf:y", "hf:x") for cid in ids])
    c = compare_runs(a, b, n_boot=200)
    assert [(v.variant_a, v.variant_b) for v in c.variants] == [
        ("marketing/ad_copy@1.0.0 | hf:x", "marketing/ad_copy@1.0.0 | hf:x"),
        ("marketing/ad_copy@1.0.0 | hf:y", "marketing/ad_copy@1.0.0 | hf:y"),
    ]
    new_model = run("rb", [case("rb", cid, [score("q", 0.5)], model="openai:gpt") for cid in ids])
    single = compare_runs(run("ra", a.of_variant(a.variants[0])), new_model, n_boot=200)
    assert [(v.variant_a, v.variant_b) for v in single.variants] == [(a.variants[0], new_model.variants[0])]
    new_version = run("rb", [case("rb", cid, [score("q", 0.5)], version="2.0.0", model=m)
                             for m in ("hf:x", "hf:y") for cid in ids])  # fmt: skip
    by_model = compare_runs(a, new_version, n_boot=200)
    assert [(v.variant_a.split(" | ")[1], v.variant_b) for v in by_model.variants] == [
        ("hf:x", "marketing/ad_copy@2.0.0 | hf:x"),
        ("hf:y", "marketing/ad_copy@2.0.0 | hf:y"),
    ]


def test_unpaired_cases_are_reported() -> None:
    a = pass_run("ra", dict.fromkeys(_ids(8), True))
    b = pass_run("rb", dict.fromkeys(_ids(10)[2:], True))
    v = compare_runs(a, b, n_boot=200).variants[0]
    assert v.n_pairs == 6 and v.only_a == ("case-00", "case-01") and v.only_b == ("case-08", "case-09")


def test_compare_variants_within_one_run_by_full_name_ref_or_model() -> None:
    ids = _ids(20)
    cases = [case("r1", cid, [score("len", 1.0, True)], version="1.0.0") for cid in ids]
    cases += [case("r1", cid, [score("len", 0.0, False)], version="1.1.0", model="hf:big") for cid in ids]
    results = run("r1", cases)
    full = compare_variants(results, "marketing/ad_copy@1.0.0 | hf:tiny", "marketing/ad_copy@1.1.0|hf:big")
    assert full.regressed and full.rows[0].n_pairs == 20
    short = compare_variants(results, "marketing/ad_copy@1.0.0", "hf:big")
    assert short.rows == full.rows
    with pytest.raises(CompareError, match="ambiguous"):
        compare_variants(results, "marketing/ad_copy", "hf:big")
    with pytest.raises(CompareError, match=r"no variant 'hf:nope'.*hf:big"):
        compare_variants(results, "hf:nope", "hf:big")
    with pytest.raises(CompareError, match="--variant-a"):
        compare_runs(results, results)


def test_nothing_to_compare_is_an_error() -> None:
    with pytest.raises(CompareError, match="no cases"):
        compare_runs(run("ra", []), pass_run("rb", {"c": True}))


def test_seeded_results_are_reproducible() -> None:
    rng = np.random.default_rng(1)
    vals = dict(zip(_ids(15), rng.uniform(0, 1, 15), strict=True))
    a, b = value_run("ra", vals), value_run("rb", {k: v * 0.9 for k, v in vals.items()})
    assert compare_runs(a, b, seed=5) == compare_runs(a, b, seed=5)
    assert compare_runs(a, b, seed=5).rows[0].ci != compare_runs(a, b, seed=6).rows[0].ci


def _regressed_pair() -> tuple:
    ids = _ids(12)
    long = "The candidate rambles about the product | with pipes\nand new lines " + "word " * 80
    a = run("ra", [case("ra", cid, [score("length", 1.0, True), score("fluency", 0.8)]) for cid in ids])
    b_scores = [[score("length", 0.0, False, reason="120 words > 40"), score("fluency", 0.7 + 0.01 * (i % 3 - 1))]
                for i in range(12)]  # fmt: skip
    b = run("rb", [case("rb", cid, b_scores[i], output=long if i == 0 else "", version="1.1.0")
                   for i, cid in enumerate(ids)])  # fmt: skip
    return a, b, long


def test_terminal_render_fits_80_columns_and_shows_everything() -> None:
    a, b, long = _regressed_pair()
    text = render_comparison(compare_runs(a, b, n_boot=N_BOOT))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "REGRESSED" in lines[0]
    assert any(line.startswith("length ") and "100%" in line and "regressed" in line for line in lines)
    assert any(line.startswith("fluency") and "-10 [" in line for line in lines)
    assert "cannot detect a change smaller than" in text
    assert "regressed cases" in text and "length failed: 120 words > 40" in text
    assert "..." in text and long not in text  # truncated


def test_markdown_has_the_table_and_full_outputs() -> None:
    a, b, long = _regressed_pair()
    md = comparison_markdown(compare_runs(a, b, n_boot=N_BOOT))
    assert md.startswith("## aigc compare: regressed")
    assert "| length | 12 |" in md and "**regressed**" in md
    assert "100% (76-100)" in md  # Wilson interval of 12/12
    escaped = long.replace("|", "\\|").replace("\n", "<br>")
    assert escaped in md
    table_rows = [line for line in md.splitlines() if line.startswith("| case-00 |")]
    assert len(table_rows) == 1  # one row per case: new lines and pipes escaped


def test_json_is_strict_and_carries_the_verdict() -> None:
    ids = _ids(3)
    c = compare_runs(pass_run("ra", dict.fromkeys(ids, True)), pass_run("rb", dict.fromkeys(ids, False)))
    data = json.loads(comparison_json(c))
    row = data["variants"][0]["rows"][0]
    assert data["regressed"] is False and row["verdict"] == "too few pairs" and row["p"] is None
    assert row["effect"] == -1.0 and "too few paired cases" in row["mde_sentence"]


def test_changed_evaluator_version_or_threshold_is_noted() -> None:
    ids = _ids(6)
    a = run("ra", [case("ra", cid, [score("q", 0.5), score("len", 1.0, True)]) for cid in ids])
    b_scores = [score("q", 0.5, evaluator_version="2"), score("len", 1.0, True, threshold=0.9)]
    b = run("rb", [case("rb", cid, b_scores) for cid in ids])
    notes = compare_runs(a, b, n_boot=200).notes
    assert any(n.startswith("q: version 1 in the baseline but 2 in the candidate") for n in notes)
    assert any(n.startswith("len: threshold 0.5 in the baseline but 0.9") for n in notes)


def test_colour_only_when_asked() -> None:
    a, b, _ = _regressed_pair()
    c = compare_runs(a, b, n_boot=500)
    assert "\x1b[" not in render_comparison(c)
    coloured = render_comparison(c, color=True)
    assert "\x1b[" in coloured and "regressed" in coloured


def test_an_unfinished_run_is_noted() -> None:
    a = pass_run("ra", dict.fromkeys(_ids(6), True))
    b = pass_run("rb", dict.fromkeys(_ids(6), True))
    b = type(b)(replace(b.info, status="interrupted"), b.cases)
    (note,) = compare_runs(a, b, n_boot=200).notes
    assert note == "the candidate run rb is interrupted: only the cases it recorded are compared"


def test_pass_hat_k_uses_one_k_for_both_sides() -> None:
    ids = _ids(6)
    a = run("ra", [c for cid in ids for c in _repeat_cases("ra", cid, [True, True, False])])
    b = run("rb", [c for cid in ids for c in _repeat_cases("rb", cid, [True, True])])
    (row,) = compare_runs(a, b, n_boot=200).rows
    assert row.k == 2
    assert row.pass_hat_k_a == pytest.approx(cstats.pass_hat_k([2] * 6, [3] * 6, 2)) == pytest.approx(1 / 3)
    assert row.pass_hat_k_b == 1.0 and row.pass_at_k_a == 1.0


def test_different_or_changed_suites_are_noted() -> None:
    a = pass_run("ra", dict.fromkeys(_ids(6), True))
    other = run("rb", pass_run("rb", dict.fromkeys(_ids(6), True)).cases, suite="blog")
    assert compare_runs(a, other, n_boot=200).notes == (
        "the runs are of different suites (ads and blog): only shared case ids pair",
    )
    a2 = type(a)(replace(a.info, suite_hash="h1"), a.cases)
    b2 = type(a)(replace(a.info, run_id="rb", suite_hash="h2"), a.cases)
    assert compare_runs(a2, b2, n_boot=200).notes == ("suite ads changed between the runs (its content hash differs)",)


def test_sensitivity_lines_group_flat_and_thin_evaluators() -> None:
    ids = _ids(10)
    a = run("ra", [case("ra", cid, [score("q", 0.5), score("flat", 1.0, True), score("set", 0.0)]) for cid in ids])
    b_rows = [[score("q", 0.4 + 0.02 * (i % 3)), score("flat", 1.0, True), score("set", 0.0, applicable=False)]
              for i in range(10)]  # fmt: skip
    b = run("rb", [case("rb", cid, b_rows[i]) for i, cid in enumerate(ids)])
    text = render_comparison(compare_runs(a, b, n_boot=500))
    assert "this suite (10 pairs) cannot detect a change smaller than" in text and " in q " in text
    assert "no paired difference varied in flat" in text
    assert "too few paired cases (under 5) for a verdict: set (0)" in text
