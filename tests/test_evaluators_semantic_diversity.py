"""Semantic adherence and variant diversity with the shipped all-MiniLM-L6-v2 embeddings."""

from __future__ import annotations

import json

from evaluators.base import Sample
from evaluators.diversity import Diversity, distinct_n, self_bleu, variants_of
from evaluators.semantic import SemanticSimilarity

BRIEF = [{"role": "user", "content": "Write a product description of a waterproof hiking jacket for rainy climates."}]


def test_on_topic_output_scores_above_off_topic_output() -> None:
    on = Sample(output="This waterproof jacket keeps hikers dry through heavy rain and wind.", messages=BRIEF)
    off = Sample(output="Preheat the oven and whisk the eggs with sugar until pale.", messages=BRIEF)
    scores = SemanticSimilarity(threshold=0.3).score_batch([on, off])
    assert scores[0].value > scores[1].value + 0.2
    assert scores[0].passed and not scores[1].passed


def test_empty_output_is_zero() -> None:
    assert SemanticSimilarity().score(Sample(output="", messages=BRIEF)).value == 0.0


def test_diverse_variants_score_higher_than_repeated_ones() -> None:
    distinct = json.dumps(
        {
            "variants": [
                {"headline": "Stay dry on every trail", "body": "Sealed seams stop the rain."},
                {"headline": "Pack it in your pocket", "body": "Weighs less than an apple."},
                {"headline": "Built for wild weather", "body": "Tested in Scottish storms."},
            ]
        }
    )
    same = json.dumps(
        {
            "variants": [
                {"headline": "Stay dry on every trail", "body": "Sealed seams stop the rain."},
                {"headline": "Stay dry on every trail!", "body": "Sealed seams stop the rain."},
                {"headline": "Stay dry on each trail", "body": "Sealed seams stop the rain."},
            ]
        }
    )
    high, low = Diversity(threshold=0.5).score_batch([Sample(output=distinct), Sample(output=same)])
    assert high.value > low.value and high.passed and not low.passed
    assert high.details["variants"] == 3 and low.details["self_bleu"] > 0.5


def test_metrics_on_known_values() -> None:
    assert distinct_n(["a b c", "a b d"], 1) == 4 / 6
    assert self_bleu(["the cat sat on the mat", "the cat sat on the mat"]) > 0.99
    assert variants_of(Sample(output="not json")) == []
    assert variants_of(Sample(output='["one", "two"]')) == ["one", "two"]
    assert Diversity().score(Sample(output="just one text")).passed is None
