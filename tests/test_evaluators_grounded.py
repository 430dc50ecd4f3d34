"""The grounded evaluator: claims the retrieved context does not support, on real MiniLM embeddings."""

from __future__ import annotations

import pytest

from evaluators.base import Sample
from evaluators.grounded import Grounded
from evaluators.registry import EvaluatorRegistry
from evaluators.suite import load_suite

CONTEXT = """The Trailblazer 2 trail shoe weighs 280 grams. Its Vibram outsole grips wet rock.

It comes in teal and sand. It costs 129 euros and ships in 3 days."""


def scored(output: str, context: str | None = CONTEXT, **extra):
    return Grounded().score(Sample(output=output, context=context, **extra))


def test_a_faithful_paraphrase_passes() -> None:
    score = scored("At just 280 grams, the Trailblazer 2 grips wet rock with its Vibram sole. Shop now.")
    assert score.passed is True and score.value == 1.0 and score.details["claims"] == 1  # "Shop now." is no claim


def test_a_wrong_number_and_an_invented_name_are_unsupported() -> None:
    score = scored("The Trailblazer 2 weighs 200 grams. It is made by Nike in Portugal. It comes in teal and sand.")
    assert score.passed is False and score.value == pytest.approx(1 / 3)
    whys = [u["why"] for u in score.details["unsupported"]]
    assert whys == ["number 200 is not in the context", "name Nike, Portugal is not in the context"]
    assert "1 of 3 claims supported" in score.reason and "200 grams" in score.reason


def test_an_off_topic_claim_is_unsupported_by_similarity() -> None:
    score = scored("Quantum computers will transform every bank within a decade.")
    (item,) = score.details["unsupported"]
    assert score.value == 0.0 and item["why"].startswith("no passage says this") and item["similarity"] < 0.4


def test_numbers_and_names_from_the_brief_count_as_support() -> None:
    messages = [{"role": "user", "content": "Write an ad for the Trailblazer 2 for Acme's 2027 spring sale."}]
    score = scored("Acme's spring sale brings the Trailblazer 2 trail shoe, 280 grams, in 2027.", messages=messages)
    assert score.passed is True, score.details


def test_formatted_numbers_match() -> None:
    context = "The hall seats 1,200 people. Tickets cost 15.0 dollars."
    assert scored("The hall seats 1200 people, and tickets cost 15 dollars.", context=context).passed is True


def test_not_applicable_without_context_and_empty_output_fails() -> None:
    for context in (None, "  \n"):
        score = scored("Anything at all goes here.", context=context)
        assert score.applicable is False and score.passed is None
    empty = scored("   ")
    assert empty.passed is False and empty.reason == "empty output"


def test_batch_equals_one_by_one_and_registry_and_suites_know_it() -> None:
    outputs = ["The Trailblazer 2 weighs 200 grams.", "It comes in teal and sand colours.", "Buy it."]
    samples = [Sample(output=o, context=CONTEXT) for o in outputs] + [Sample(output="No context here at all.")]
    evaluator = EvaluatorRegistry(load_entry_points=False).create("grounded", threshold=0.5)
    batch = evaluator.score_batch(samples)
    assert [s.value for s in batch] == [evaluator.score(s).value for s in samples]
    assert [s.passed for s in batch] == [False, True, True, None]
    for suite in ("marketing", "writing"):
        assert "grounded" in [e.evaluator for e in load_suite(suite).spec.evaluators]
    with pytest.raises(ValueError, match="between 0 and 1"):
        Grounded(threshold=2)
