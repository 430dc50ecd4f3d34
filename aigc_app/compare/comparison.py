"""Compare two runs (or two variants of one run) per evaluator, on cases paired by case id.

    c = compare_runs(baseline, candidate, tolerance=0.02)
    c.regressed                       # some evaluator dropped by more than 2 points, significant after Holm
    for row in c.rows: print(row.evaluator, row.verdict, row.effect, row.p_holm)

For a pass/fail evaluator the verdict reads the pass rate (exact McNemar test on the discordant pairs); for a
value-only evaluator it reads the mean value (paired bootstrap, clustered by case when there are repeats).
Cases whose repeats disagree on pass/fail (flaky) are listed and left out of that evaluator's tests. Holm's
correction runs over every test of the comparison (all variant pairs and evaluators), so ``regressed`` is one
family-wise verdict at ``alpha``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from aigc_app.compare import stats
from aigc_app.compare.errors import CompareError
from aigc_app.compare.pairing import CasePair, SideOutcomes, match_variants, pair_cases, resolve_variant, side_outcomes
from aigc_app.results import CaseResult, RunResults

__all__ = [
    "MIN_PAIRS",
    "Comparison",
    "EvaluatorRow",
    "FlakyCase",
    "RegressedCase",
    "VariantComparison",
    "Verdict",
    "compare_runs",
    "compare_variants",
]

Verdict = Literal["regressed", "improved", "no significant change", "within tolerance", "too few pairs"]

MIN_PAIRS = 5
"""Fewer paired cases than this give no verdict ("too few pairs")."""


@dataclass(frozen=True)
class EvaluatorRow:
    """One evaluator's paired comparison. ``diff`` is b - a on the value scale (0..1); for pass/fail evaluators
    ``pass_diff`` is the change in pass rate, and the verdict reads that."""

    evaluator: str
    variant_a: str
    variant_b: str
    kind: Literal["pass/fail", "value"]
    n_pairs: int
    n_flaky_excluded: int
    mean_a: float
    mean_b: float
    diff: float
    ci: tuple[float, float]
    test: Literal["mcnemar", "bootstrap"]
    p: float
    sd_diff: float
    mde: float
    advisory: bool = False
    alpha: float = 0.05
    pass_rate_a: float | None = None
    pass_rate_b: float | None = None
    pass_ci_a: tuple[float, float] | None = None
    pass_ci_b: tuple[float, float] | None = None
    pass_diff: float | None = None
    pass_diff_ci: tuple[float, float] | None = None
    a_only: int = 0
    b_only: int = 0
    k: int | None = None
    pass_hat_k_a: float | None = None
    pass_hat_k_b: float | None = None
    pass_at_k_a: float | None = None
    pass_at_k_b: float | None = None
    variance_a: stats.VarianceShares | None = None
    variance_b: stats.VarianceShares | None = None
    p_holm: float = math.nan
    verdict: Verdict = "too few pairs"

    @property
    def effect(self) -> float:
        """The change the verdict reads: pass rate for pass/fail evaluators, mean value otherwise (b - a)."""
        return self.pass_diff if self.kind == "pass/fail" and self.pass_diff is not None else self.diff

    @property
    def effect_ci(self) -> tuple[float, float]:
        """The paired 95% interval of :attr:`effect`."""
        return self.pass_diff_ci if self.kind == "pass/fail" and self.pass_diff_ci is not None else self.ci

    @property
    def mde_sentence(self) -> str:
        """The suite's sensitivity for this evaluator, in words."""
        what = f"{self.evaluator} pass rate" if self.kind == "pass/fail" else self.evaluator
        if self.n_pairs < MIN_PAIRS or math.isnan(self.mde):
            return f"{what}: too few paired cases ({self.n_pairs}) to say what this suite can detect"
        if self.sd_diff == 0:
            return f"{what}: the paired differences did not vary, so this suite cannot estimate what it can detect"
        return (
            f"this suite ({self.n_pairs} pairs) cannot detect a change smaller than {_points(self.mde)} points "
            f"in {what} (80% power, alpha {self.alpha:g})"
        )


@dataclass(frozen=True)
class FlakyCase:
    """A case whose repeats on one side disagree on one evaluator's pass/fail."""

    case_id: str
    evaluator: str
    side: Literal["a", "b"]
    passes: int
    repeats: int


@dataclass(frozen=True)
class RegressedCase:
    """A case that passed in the baseline and failed in the candidate (most repeats), with both outputs."""

    case_id: str
    output_a: str
    output_b: str
    pass_rate_a: float
    pass_rate_b: float
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class VariantComparison:
    """One baseline variant against one candidate variant."""

    variant_a: str
    variant_b: str
    n_pairs: int
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    rows: tuple[EvaluatorRow, ...]
    flaky: tuple[FlakyCase, ...]
    regressed_cases: tuple[RegressedCase, ...]


@dataclass(frozen=True)
class Comparison:
    """Everything ``aigc compare`` reports; ``regressed`` is the CI gate."""

    run_a: str
    run_b: str
    alpha: float
    tolerance: float
    variants: tuple[VariantComparison, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def rows(self) -> list[EvaluatorRow]:
        """Every evaluator row of every variant pair."""
        return [row for v in self.variants for row in v.rows]

    @property
    def regressed(self) -> bool:
        """Some gating (not advisory) evaluator dropped by more than the tolerance, significantly after Holm."""
        return any(row.verdict == "regressed" and not row.advisory for row in self.rows)


def _points(x: float) -> str:
    return f"{100 * x:.1f}" if 100 * x < 10 else f"{100 * x:.0f}"


def _rate(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags)


def _common_k(outcomes: Sequence[SideOutcomes]) -> int | None:
    """The fewest pass/fail repeats of any case on either side, when that is 2 or more (else no pass^k)."""
    counts = [len(o.pass_flags) for o in outcomes if o.pass_flags]
    return min(counts) if counts and min(counts) >= 2 else None


def _pass_figures(outcomes: Sequence[SideOutcomes], k: int | None) -> tuple[float | None, float | None]:
    """pass^k and pass@k over the cases of one side."""
    flags = [o.pass_flags for o in outcomes if o.pass_flags]
    if k is None or not flags:
        return None, None
    passes, repeats = [sum(f) for f in flags], [len(f) for f in flags]
    return stats.pass_hat_k(passes, repeats, k), stats.pass_at_k(passes, repeats, k)


def _variance(outcomes: list[SideOutcomes]) -> stats.VarianceShares | None:
    return stats.variance_decomposition([[list(s) for s in o.scorings] for o in outcomes])


def _pass_fields(
    binary: Sequence[tuple[SideOutcomes, SideOutcomes]], *, alpha: float, n_boot: int, seed: list[int]
) -> tuple[dict, float, np.ndarray]:
    """Pass rates with Wilson intervals, the paired pass-rate change and the exact McNemar p-value of
    non-flaky pairs: (row fields, p, per-case pass differences)."""
    pa = np.array([oa.pass_flags[0] for oa, _ in binary], dtype=float)
    pb = np.array([ob.pass_flags[0] for _, ob in binary], dtype=float)
    a_only, b_only = int(np.sum((pa == 1) & (pb == 0))), int(np.sum((pa == 0) & (pb == 1)))
    diffs = pb - pa
    fields = dict(
        pass_rate_a=float(pa.mean()),
        pass_rate_b=float(pb.mean()),
        pass_ci_a=stats.wilson(int(pa.sum()), pa.size, alpha),
        pass_ci_b=stats.wilson(int(pb.sum()), pb.size, alpha),
        pass_diff=float(diffs.mean()),
        pass_diff_ci=stats.bootstrap_ci(diffs, confidence=1 - alpha, n_boot=n_boot, seed=seed),
        a_only=a_only,
        b_only=b_only,
    )
    return fields, stats.mcnemar_exact(a_only, b_only), diffs


def _row(
    evaluator: str, va: str, vb: str, pairs: Sequence[CasePair], *, alpha: float, n_boot: int, seed: int
) -> tuple[EvaluatorRow, list[FlakyCase]]:
    """The tests of one evaluator over the paired cases (before Holm)."""
    sides = [(p.case_id, side_outcomes(p.a, evaluator), side_outcomes(p.b, evaluator)) for p in pairs]
    sides = [(cid, oa, ob) for cid, oa, ob in sides if oa.values and ob.values]
    flaky = [
        FlakyCase(cid, evaluator, name, sum(o.pass_flags), len(o.pass_flags))
        for cid, oa, ob in sides
        for name, o in (("a", oa), ("b", ob))
        if o.flaky
    ]
    flaky_ids = {f.case_id for f in flaky}
    used = [(oa, ob) for cid, oa, ob in sides if cid not in flaky_ids]
    binary = [(oa, ob) for oa, ob in used if oa.pass_flags and ob.pass_flags]
    kind: Literal["pass/fail", "value"] = "pass/fail" if binary else "value"
    rng_seed = [seed, zlib.crc32(f"{va}\0{vb}\0{evaluator}".encode())]

    mean_a = np.array([sum(oa.values) / len(oa.values) for oa, _ in used])
    mean_b = np.array([sum(ob.values) / len(ob.values) for _, ob in used])
    d = mean_b - mean_a
    fields: dict = {}
    if kind == "pass/fail":
        fields, p, effect_d = _pass_fields(binary, alpha=alpha, n_boot=n_boot, seed=rng_seed)
        n = len(binary)
    low, high, boot_p = stats.bootstrap_summary(d, confidence=1 - alpha, n_boot=n_boot, seed=rng_seed)
    if kind == "value":
        effect_d, p, n = d, boot_p, len(used)
    sd = float(np.std(effect_d, ddof=1)) if effect_d.size >= 2 else math.nan
    all_a, all_b = [oa for _, oa, _ in sides], [ob for _, _, ob in sides]
    k = _common_k(all_a + all_b)
    (hat_a, at_a), (hat_b, at_b) = _pass_figures(all_a, k), _pass_figures(all_b, k)
    row = EvaluatorRow(
        evaluator=evaluator,
        variant_a=va,
        variant_b=vb,
        kind=kind,
        n_pairs=n,
        n_flaky_excluded=len(flaky_ids),
        mean_a=float(mean_a.mean()) if used else math.nan,
        mean_b=float(mean_b.mean()) if used else math.nan,
        diff=float(d.mean()) if used else math.nan,
        ci=(low, high),
        test="mcnemar" if kind == "pass/fail" else "bootstrap",
        p=p if n >= MIN_PAIRS else math.nan,
        sd_diff=sd,
        mde=stats.mde(sd, n, alpha=alpha),
        alpha=alpha,
        advisory=all(oa.advisory and ob.advisory for _, oa, ob in sides) if sides else False,
        k=k,
        pass_hat_k_a=hat_a,
        pass_hat_k_b=hat_b,
        pass_at_k_a=at_a,
        pass_at_k_b=at_b,
        variance_a=_variance(all_a),
        variance_b=_variance(all_b),
        **fields,
    )
    return row, flaky


def _verdict(row: EvaluatorRow, p_holm: float, alpha: float, tolerance: float) -> Verdict:
    if row.n_pairs < MIN_PAIRS or math.isnan(p_holm):
        return "too few pairs"
    if p_holm >= alpha or row.effect == 0:
        return "no significant change"
    if row.effect > 0:
        return "improved"
    return "regressed" if -row.effect > tolerance else "within tolerance"


def _case_rate(repeats: Sequence[CaseResult]) -> float:
    return _rate([c.passed for c in repeats])


def _failures(case: CaseResult) -> tuple[str, ...]:
    if case.error is not None:
        return (f"generation error: {case.error}",)
    return tuple(
        f"{s.evaluator} failed" + (f": {s.reason}" if s.reason else "")
        for s in case.scores
        if s.rescore == 0 and s.gating and not s.passed
    )


def _regressed_cases(pairs: Sequence[CasePair]) -> tuple[RegressedCase, ...]:
    out = []
    for pair in pairs:
        rate_a, rate_b = _case_rate(pair.a), _case_rate(pair.b)
        if rate_a >= 0.5 > rate_b:
            failed_b = next(c for c in pair.b if not c.passed)
            passed_a = next((c for c in pair.a if c.passed), pair.a[0])
            out.append(
                RegressedCase(pair.case_id, passed_a.output, failed_b.output, rate_a, rate_b, _failures(failed_b))
            )
    return tuple(out)


def _evaluators(cases: Sequence[CaseResult]) -> list[str]:
    return list(dict.fromkeys(s.evaluator for c in cases for s in c.scores))


def _settings(cases: Sequence[CaseResult]) -> dict[str, set[tuple[str, float | None]]]:
    """Each evaluator's (version, threshold) pairs as scored on one side."""
    seen: dict[str, set[tuple[str, float | None]]] = {}
    for c in cases:
        for s in c.scores:
            seen.setdefault(s.evaluator, set()).add((s.evaluator_version, s.threshold))
    return seen


def _setting_notes(cases_a: Sequence[CaseResult], cases_b: Sequence[CaseResult]) -> list[str]:
    """Evaluators whose version or threshold differs between the sides: their scores may not be comparable."""
    a, b = _settings(cases_a), _settings(cases_b)
    notes = []
    for name in (n for n in a if n in b and a[n] != b[n]):
        versions = sorted({v for v, _ in a[name]}), sorted({v for v, _ in b[name]})
        what = "version" if versions[0] != versions[1] else "threshold"
        show = (
            versions
            if what == "version"
            else (sorted({str(t) for _, t in a[name]}), sorted({str(t) for _, t in b[name]}))
        )
        notes.append(
            f"{name}: {what} {', '.join(show[0])} in the baseline but {', '.join(show[1])} in the candidate, "
            f"so its scores may not be comparable"
        )
    return notes


def _compare_pair(
    a: RunResults, b: RunResults, va: str, vb: str, *, alpha: float, n_boot: int, seed: int
) -> tuple[VariantComparison, list[str]]:
    cases_a, cases_b = a.of_variant(va), b.of_variant(vb)
    pairing = pair_cases(cases_a, cases_b)
    names_a, names_b = _evaluators(cases_a), _evaluators(cases_b)
    notes = [f"{name} scored only the baseline ({va})" for name in names_a if name not in names_b]
    notes += [f"{name} scored only the candidate ({vb})" for name in names_b if name not in names_a]
    notes += _setting_notes(cases_a, cases_b)
    rows, flaky = [], []
    for name in dict.fromkeys(names_a + names_b):  # a generation error fails evaluators its side never ran
        row, row_flaky = _row(name, va, vb, pairing.pairs, alpha=alpha, n_boot=n_boot, seed=seed)
        rows.append(row)
        flaky.extend(row_flaky)
    if not pairing.pairs:
        notes.append(f"no case id is in both {va} and {vb}: nothing to pair")
    comparison = VariantComparison(
        va, vb, len(pairing.pairs), pairing.only_a, pairing.only_b, tuple(rows), tuple(flaky),
        _regressed_cases(pairing.pairs),
    )  # fmt: skip
    return comparison, notes


def _suite_notes(a: RunResults, b: RunResults) -> list[str]:
    """Runs of different suites, or of one suite whose definition changed in between."""
    if a.info.suite != b.info.suite:
        return [f"the runs are of different suites ({a.info.suite} and {b.info.suite}): only shared case ids pair"]
    if a.info.suite_hash and b.info.suite_hash and a.info.suite_hash != b.info.suite_hash:
        return [f"suite {a.info.suite} changed between the runs (its content hash differs)"]
    return []


def _variant_pairs(
    a: RunResults, b: RunResults, variant_a: str | None, variant_b: str | None
) -> tuple[list[tuple[str, str]], list[str]]:
    if variant_a is None and variant_b is None:
        if a.info.run_id == b.info.run_id and len(a.variants) > 1:
            raise CompareError(
                f"run {a.info.run_id} is compared with itself: name two of its variants with --variant-a and "
                f"--variant-b ({'; '.join(a.variants)})"
            )
        return match_variants(a, b)
    va = resolve_variant(a, variant_a or variant_b or "")
    vb = resolve_variant(b, variant_b or variant_a or "")
    return [(va, vb)], []


def compare_runs(
    a: RunResults,
    b: RunResults,
    *,
    tolerance: float = 0.0,
    alpha: float = 0.05,
    n_boot: int = 10_000,
    seed: int = 0,
    variant_a: str | None = None,
    variant_b: str | None = None,
) -> Comparison:
    """Compare candidate ``b`` with baseline ``a``: matching variants (or the two named), every evaluator both
    scored, Holm across all of them. ``tolerance`` is the largest drop (value scale or pass rate) still allowed."""
    if not a.cases or not b.cases:
        empty = a.info.run_id if not a.cases else b.info.run_id
        raise CompareError(f"run {empty} has no cases to compare")
    pairs, notes = _variant_pairs(a, b, variant_a, variant_b)
    sides = [("baseline", a)] + ([("candidate", b)] if b.info.run_id != a.info.run_id else [])
    notes[:0] = [
        f"the {side} run {r.info.run_id} is {r.info.status}: only the cases it recorded are compared"
        for side, r in sides
        if r.info.status != "finished"
    ] + _suite_notes(a, b)
    if not pairs:
        raise CompareError(
            f"no variant of {a.info.run_id} matches one of {b.info.run_id}; name them with --variant-a and "
            f"--variant-b (baseline: {'; '.join(a.variants)}; candidate: {'; '.join(b.variants)})"
        )
    variants = []
    for va, vb in pairs:
        vc, vc_notes = _compare_pair(a, b, va, vb, alpha=alpha, n_boot=n_boot, seed=seed)
        variants.append(vc)
        notes.extend(vc_notes)
    rows = [row for v in variants for row in v.rows]
    p_holm = iter(stats.holm([row.p for row in rows], alpha=alpha))
    variants = [
        replace(v, rows=tuple(replace(r, p_holm=(ph := next(p_holm)), verdict=_verdict(r, ph, alpha, tolerance))
                              for r in v.rows))
        for v in variants
    ]  # fmt: skip
    return Comparison(a.info.run_id, b.info.run_id, alpha, tolerance, tuple(variants), tuple(notes))


def compare_variants(
    results: RunResults,
    variant_a: str,
    variant_b: str,
    *,
    tolerance: float = 0.0,
    alpha: float = 0.05,
    n_boot: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare two variants (prompt versions or models) within one run; ``variant_b`` is the candidate. Either may
    be the full ``prompt@version | model`` or just the prompt ref, prompt name or model when unambiguous."""
    return compare_runs(
        results, results, tolerance=tolerance, alpha=alpha, n_boot=n_boot, seed=seed,
        variant_a=variant_a, variant_b=variant_b,
    )  # fmt: skip
