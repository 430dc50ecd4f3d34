"""Groundedness: the share of the output's claims that the retrieved context supports. Offline.

A claim is a sentence of at least four words ("Shop now." is not one). A claim is supported when

* some context sentence or passage is close to it in meaning: MiniLM cosine >= ``min_similarity`` (0.4), and
* every number in it (``20%``, ``1,200``, ``2026``) appears in the context or the brief, and
* every name in it (a capitalised word that does not start the sentence, an acronym) appears there too.

value = supported claims / claims; passed when value >= ``threshold`` (0.8). Not applicable when the sample has
no context. The unsupported claims and why are in ``details["unsupported"]``.

Calibration: no labelled set of (source, output, faithfulness) exists in the project's shared data (SummEval's
consistency ratings come without their source articles), so the two cuts are not fitted. 0.4 sits above the
cosine MiniLM gives unrelated sentences on one topic (~0.2-0.4) and below paraphrases (~0.6-0.9); calibrate both on
your own labelled outputs before gating releases on this score.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from evaluators.base import Sample, Score
from evaluators.fluency.text import split_sentences

__all__ = ["EVALUATORS", "Grounded"]

MIN_CLAIM_WORDS = 4
MAX_UNITS = 400  # context sentences and passages compared per sample (a long context is cut)
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z][\w'’&-]*")
_COMMON = (
    "i a an the and or but if so our we you your it its this that these those they their my me he she his her "
    "to of in on at by for with from as is are was were be been new now all every each more most no not"
)
_FUNCTION_WORDS = frozenset(_COMMON.split())  # capitalised mid-sentence after a colon or in a title: not names


@dataclass(frozen=True)
class _Claim:
    text: str
    numbers: frozenset[str]
    names: frozenset[str]


class Grounded:
    """Claims in the output that no passage of ``Sample.context`` supports (similarity + number/name overlap)."""

    name = "grounded"
    version = "1"

    def __init__(self, threshold: float = 0.8, min_similarity: float = 0.4) -> None:
        if not 0 <= threshold <= 1 or not 0 <= min_similarity <= 1:
            raise ValueError("grounded: threshold and min_similarity are between 0 and 1")
        self.threshold = threshold
        self.min_similarity = min_similarity

    def score(self, sample: Sample) -> Score:
        return self.score_batch([sample])[0]

    def score_batch(self, samples: Sequence[Sample]) -> list[Score]:
        from evaluators.embeddings import embed

        plans = [self._plan(s) for s in samples]
        texts = [t for plan in plans if isinstance(plan, tuple) for t in (*(c.text for c in plan[0]), *plan[1])]
        vectors = embed(texts) if texts else None
        scores, at = [], 0
        for plan in plans:
            if isinstance(plan, Score):
                scores.append(plan)
                continue
            claims, units, support = plan
            n, m = len(claims), len(units)
            assert vectors is not None
            sims = (vectors[at : at + n] @ vectors[at + n : at + n + m].T).max(axis=1)
            at += n + m
            scores.append(self._verdict(claims, [float(x) for x in sims], support))
        return scores

    def _plan(self, sample: Sample) -> Score | tuple[list[_Claim], list[str], str]:
        context = (sample.context or "").strip()
        if not context:
            return Score.not_applicable(self.name, "the sample has no retrieved context", self.version)
        if not sample.output.strip():
            return Score(self.name, 0.0, False, self.threshold, "empty output", evaluator_version=self.version)
        claims = [_claim(s) for s in split_sentences(sample.output) if len(_WORD.findall(s)) >= MIN_CLAIM_WORDS]
        if not claims:
            return Score(self.name, 1.0, True, self.threshold, "no claims to check", evaluator_version=self.version)
        support = f"{context}\n{sample.prompt_text}\n" + " ".join(str(v) for v in sample.inputs.values())
        return claims, _units(context), support

    def _verdict(self, claims: list[_Claim], sims: list[float], support: str) -> Score:
        numbers = {_plain(n) for n in _NUMBER.findall(support)}
        words = {w.lower() for w in _WORD.findall(support)}
        unsupported = []
        for claim, sim in zip(claims, sims, strict=True):
            why = _why_unsupported(claim, sim, self.min_similarity, numbers, words)
            if why:
                unsupported.append({"claim": claim.text[:300], "why": why, "similarity": round(sim, 3)})
        value = 1 - len(unsupported) / len(claims)
        reason = f"{len(claims) - len(unsupported)} of {len(claims)} claims supported by the context"
        if unsupported:
            first = unsupported[0]
            reason += f"; e.g. {first['claim'][:80]!r}: {first['why']}"
        return Score(
            self.name,
            value,
            value >= self.threshold,
            self.threshold,
            reason,
            {"claims": len(claims), "unsupported": unsupported},
            self.version,
        )


def _why_unsupported(claim: _Claim, sim: float, cut: float, numbers: set[str], words: set[str]) -> str:
    missing_numbers = sorted(claim.numbers - numbers)
    if missing_numbers:
        return f"number {', '.join(missing_numbers)} is not in the context"
    missing_names = sorted(n for n in claim.names if n.lower() not in words)
    if missing_names:
        return f"name {', '.join(missing_names)} is not in the context"
    if sim < cut:
        return f"no passage says this (best similarity {sim:.2f} < {cut:.2f})"
    return ""


def _claim(sentence: str) -> _Claim:
    numbers = frozenset(_plain(n) for n in _NUMBER.findall(sentence))
    tokens = _WORD.findall(sentence)
    names = frozenset(
        t
        for i, t in enumerate(tokens)
        if (t.isupper() and len(t) > 1) or (i > 0 and t[0].isupper() and t.lower() not in _FUNCTION_WORDS)
    )
    return _Claim(sentence, numbers, names)


def _units(context: str) -> list[str]:
    """What a claim may match: each context sentence, each pair of neighbours, each short passage."""
    passages = [p.strip() for p in re.split(r"\n\s*\n", context) if p.strip()]
    sentences = [s for p in passages for s in split_sentences(p)]
    pairs = [f"{a} {b}" for a, b in itertools.pairwise(sentences)]
    short = [p for p in passages if len(p) <= 1000 and p not in sentences]
    return (sentences + pairs + short)[:MAX_UNITS] or [context[:2000]]


def _plain(number: str) -> str:
    text = number.replace(",", "").lstrip("+")
    return text[:-2] if text.endswith(".0") else text


EVALUATORS = {"grounded": Grounded}
