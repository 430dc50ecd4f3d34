"""Diversity across variants (A/B ad copy and other multi-variant outputs): distinct-n, self-BLEU, embedding spread.

Variants come from ``sample.metadata["variants"]`` or from the output itself: a JSON array, or an object with one
array field (``{"variants": [...]}``); object variants are joined field by field. value = mean of distinct-2,
1 - self-BLEU and the mean pairwise embedding distance (each 0..1, higher is more diverse). An output with fewer
than two variants (a single social post) is not applicable: neither passed nor failed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from itertools import combinations
from typing import Any

from evaluators.base import Sample, Score

__all__ = ["EVALUATORS", "Diversity", "distinct_n", "self_bleu", "variants_of"]

_WORD = re.compile(r"\w+", re.UNICODE)


def variants_of(sample: Sample) -> list[str]:
    """The variant texts of a sample (empty when there are fewer than two)."""
    raw: Any = sample.metadata.get("variants")
    if raw is None:
        from chains.structured import extract_json

        try:
            raw = extract_json(sample.output)
        except ValueError:
            return []
        if isinstance(raw, dict):
            lists = [v for v in raw.values() if isinstance(v, list)]
            raw = lists[0] if len(lists) == 1 else []
    texts = [
        v if isinstance(v, str) else " ".join(str(x) for x in v.values()) if isinstance(v, dict) else str(v)
        for v in raw or []
    ]
    return texts if len(texts) >= 2 else []


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams over all n-grams across the texts."""
    grams = [tuple(t[i : i + n]) for t in map(_tokens, texts) for i in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _bleu(candidate: list[str], references: list[list[str]], max_n: int = 4) -> float:
    """Sentence BLEU with add-one smoothing (Lin and Och 2004) and the brevity penalty."""
    if not candidate:
        return 0.0
    log_sum = 0.0
    for n in range(1, max_n + 1):
        cand = Counter(tuple(candidate[i : i + n]) for i in range(len(candidate) - n + 1))
        best: Counter[tuple[str, ...]] = Counter()
        for ref in references:
            best |= Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
        overlap = sum(min(c, best[g]) for g, c in cand.items())
        total = max(sum(cand.values()), 0)
        log_sum += math.log((overlap + 1) / (total + 1))
    closest = min((abs(len(r) - len(candidate)), len(r)) for r in references)[1]
    brevity = 1.0 if len(candidate) > closest else math.exp(1 - closest / len(candidate))
    return brevity * math.exp(log_sum / max_n)


def self_bleu(texts: Sequence[str]) -> float:
    """Mean BLEU of each variant against the others (high means the variants repeat each other)."""
    tokens = [_tokens(t) for t in texts]
    return sum(_bleu(tokens[i], tokens[:i] + tokens[i + 1 :]) for i in range(len(tokens))) / len(tokens)


class Diversity:
    """How different the variants of one output are from each other."""

    name = "diversity"
    version = "1"

    def __init__(self, threshold: float | None = None, embeddings: bool = True) -> None:
        self.threshold = threshold
        self.embeddings = embeddings

    def score(self, sample: Sample) -> Score:
        return self.score_batch([sample])[0]

    def score_batch(self, samples: Sequence[Sample]) -> list[Score]:
        variant_lists = [variants_of(s) for s in samples]
        spreads = self._spreads(variant_lists) if self.embeddings else [None] * len(samples)
        return [self._one(v, spread) for v, spread in zip(variant_lists, spreads, strict=True)]

    def _spreads(self, variant_lists: list[list[str]]) -> list[float | None]:
        flat = [t for v in variant_lists for t in v]
        if not flat:
            return [None] * len(variant_lists)
        from evaluators.embeddings import embed

        vectors, spreads, start = embed(flat), [], 0
        for variants in variant_lists:
            block = vectors[start : start + len(variants)]
            start += len(variants)
            pairs = list(combinations(range(len(variants)), 2))
            spreads.append(sum(1 - float(block[i] @ block[j]) for i, j in pairs) / len(pairs) if pairs else None)
        return spreads

    def _one(self, variants: list[str], spread: float | None) -> Score:
        if not variants:
            return Score.not_applicable(self.name, "the output holds fewer than two variants", self.version)
        d1, d2, sb = distinct_n(variants, 1), distinct_n(variants, 2), self_bleu(variants)
        parts = [d2, 1 - sb] + ([min(1.0, max(0.0, spread))] if spread is not None else [])
        value = sum(parts) / len(parts)
        details = {
            "variants": len(variants),
            "distinct_1": d1,
            "distinct_2": d2,
            "self_bleu": sb,
            "embedding_spread": spread,
        }
        passed = None if self.threshold is None else value >= self.threshold
        return Score(
            self.name,
            value,
            passed,
            self.threshold,
            f"{len(variants)} variants: distinct-2 {d2:.2f}, self-BLEU {sb:.2f}",
            details,
            self.version,
        )


EVALUATORS = {"diversity": Diversity}
