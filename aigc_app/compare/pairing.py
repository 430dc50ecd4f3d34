"""Which results face each other: variants matched across runs, cases paired by case id, repeats gathered.

    pairs = pair_cases(a.of_variant(va), b.of_variant(vb))
    for pair in pairs.pairs:
        base, cand = side_outcomes(pair.a, "fluency"), side_outcomes(pair.b, "fluency")

A generation error counts as a failed output (value 0, not passed) for every evaluator; a score that errored or
does not apply is left out. With ``rescore``, an output's value is the mean of its scorings and its pass/fail
is the first scoring's (as :attr:`CaseResult.passed` reads it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from aigc_app.compare.errors import CompareError
from aigc_app.results import CaseResult, RunResults

__all__ = [
    "CasePair",
    "Pairing",
    "SideOutcomes",
    "match_variants",
    "pair_cases",
    "resolve_variant",
    "side_outcomes",
]


@dataclass(frozen=True)
class CasePair:
    """One case id with its repeats on each side (sorted by sample index)."""

    case_id: str
    a: tuple[CaseResult, ...]
    b: tuple[CaseResult, ...]


@dataclass(frozen=True)
class Pairing:
    """The cases both sides ran, and the case ids only one side has."""

    pairs: tuple[CasePair, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]


@dataclass(frozen=True)
class SideOutcomes:
    """One evaluator's view of one case on one side: a value and a pass/fail per usable repeat, and every
    scoring of each repeat (for the judge's share of the variance)."""

    values: tuple[float, ...]
    passed: tuple[bool | None, ...]
    scorings: tuple[tuple[float, ...], ...]
    advisory: bool

    @property
    def pass_flags(self) -> list[bool]:
        """The repeats that have a pass/fail."""
        return [p for p in self.passed if p is not None]

    @property
    def flaky(self) -> bool:
        """Repeats that disagree on pass/fail."""
        return len(set(self.pass_flags)) > 1


def _by_case(cases: Sequence[CaseResult]) -> dict[str, tuple[CaseResult, ...]]:
    grouped: dict[str, list[CaseResult]] = defaultdict(list)
    for case in cases:
        grouped[case.case_id].append(case)
    return {cid: tuple(sorted(rows, key=lambda c: c.sample_index)) for cid, rows in grouped.items()}


def pair_cases(cases_a: Sequence[CaseResult], cases_b: Sequence[CaseResult]) -> Pairing:
    """Pair two variants' cases by case id (baseline order)."""
    a, b = _by_case(cases_a), _by_case(cases_b)
    pairs = tuple(CasePair(cid, a[cid], b[cid]) for cid in a if cid in b)
    return Pairing(pairs, tuple(c for c in a if c not in b), tuple(c for c in b if c not in a))


def side_outcomes(repeats: Sequence[CaseResult], evaluator: str) -> SideOutcomes:
    """The named evaluator's outcomes over one side's repeats of one case."""
    values: list[float] = []
    passed: list[bool | None] = []
    scorings: list[tuple[float, ...]] = []
    advisory = True
    for case in repeats:
        if case.error is not None:
            values.append(0.0)
            passed.append(False)
            scorings.append((0.0,))
            advisory = False
            continue
        rows = [s for s in case.scores if s.evaluator == evaluator and s.applicable and s.error is None]
        first = next((s for s in rows if s.rescore == 0), None)
        if first is None:
            continue
        advisory = advisory and first.advisory
        scored = tuple(float(s.value) for s in sorted(rows, key=lambda s: s.rescore))
        values.append(sum(scored) / len(scored))
        passed.append(first.passed)
        scorings.append(scored)
    return SideOutcomes(tuple(values), tuple(passed), tuple(scorings), advisory and bool(values))


def resolve_variant(results: RunResults, spec: str) -> str:
    """The variant of ``results`` that ``spec`` names: the full ``prompt@version | model``, or just the prompt ref,
    the prompt name or the model when only one variant has it."""
    variants = results.variants
    wanted = " | ".join(part.strip() for part in spec.split("|"))
    if wanted in variants:
        return wanted
    hits = [
        v
        for v in variants
        if wanted in {c.prompt_ref for c in results.of_variant(v)[:1]}
        or wanted in {c.prompt_name for c in results.of_variant(v)[:1]}
        or wanted in {c.model for c in results.of_variant(v)[:1]}
    ]
    if len(hits) == 1:
        return hits[0]
    listed = "; ".join(variants) or "none"
    if hits:
        raise CompareError(
            f"variant {spec!r} is ambiguous in run {results.info.run_id}: it matches {'; '.join(hits)}. "
            f"Give the full 'prompt@version | model'"
        )
    raise CompareError(f"run {results.info.run_id} has no variant {spec!r}; its variants: {listed}")


def _parts(results: RunResults, variant: str) -> tuple[str, str]:
    first = results.of_variant(variant)[0]
    return first.prompt_name, first.model


def match_variants(a: RunResults, b: RunResults) -> tuple[list[tuple[str, str]], list[str]]:
    """Pairs of (baseline variant, candidate variant) to compare, and notes on variants left unmatched.

    Same variant names pair first; the rest pair by prompt name, then by model, when that leaves exactly one
    variant on each side; two single-variant runs always pair."""
    left, right = list(a.variants), list(b.variants)
    matched = [(v, v) for v in left if v in right]
    left = [v for v in left if v not in right]
    right = [v for v in right if v not in a.variants]
    for part in (0, 1):
        for va in list(left):
            key = _parts(a, va)[part]
            same_a = [v for v in left if _parts(a, v)[part] == key]
            same_b = [v for v in right if _parts(b, v)[part] == key]
            if len(same_a) == 1 and len(same_b) == 1:
                matched.append((va, same_b[0]))
                left.remove(va)
                right.remove(same_b[0])
    if len(left) == 1 and len(right) == 1:
        matched.append((left.pop(), right.pop()))
    notes = [f"baseline variant {v} has no counterpart in the candidate" for v in left]
    notes += [f"candidate variant {v} has no counterpart in the baseline" for v in right]
    return matched, notes
