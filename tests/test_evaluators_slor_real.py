"""SLOR, fluency_long and the local judge tier on the real SmolLM2-135M-Instruct (``aigc models pull smollm2``)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chains import ModelsConfig
from evaluators.base import Sample
from evaluators.fluency import EVALUATORS as FLUENCY
from evaluators.judge import EVALUATORS as JUDGES
from evaluators.suite import load_suite

pytestmark = pytest.mark.real_model

SENTENCES = [
    "The children were playing in the garden when it started to rain.",
    "She has lived in this small town for almost ten years.",
    "We will meet at the train station tomorrow morning.",
    "The report was written by two engineers from the city council.",
    "He asked whether the museum was open on Sundays.",
    "Our team has been working on this problem for several months.",
    "The bakery on the corner sells fresh bread every morning.",
    "My brother forgot his umbrella at the office yesterday.",
    "The teacher explained the lesson again for the new students.",
    "They painted the kitchen a pale shade of yellow last summer.",
    "Most visitors arrive by bus because parking is hard to find.",
    "The river flooded the low fields after a week of heavy rain.",
    "I usually drink a cup of tea before I start working.",
    "The company plans to open two new stores next spring.",
    "Please send me the final version of the document by Friday.",
    "The old bridge was closed for repairs during the winter.",
    "Her grandmother taught her how to bake apple pies.",
    "The concert was cancelled because the singer had a cold.",
    "Farmers in the valley grow wheat, barley and potatoes.",
    "You can return the shoes within thirty days if they do not fit.",
]


def shuffled(sentence: str, seed: int) -> str:
    """The sentence's words in a random order (a different one), with the full stop kept at the end."""
    words = sentence.rstrip(".").split()
    rng = random.Random(seed)
    order = words[:]
    while order == words:
        rng.shuffle(order)
    return " ".join(order) + "."


@pytest.fixture(scope="module")
def slor(smollm2_path: Path):
    return FLUENCY["slor"]()


def test_slor_ranks_every_fluent_sentence_above_its_shuffled_words(slor) -> None:
    fluent = slor.score_batch([Sample(output=s) for s in SENTENCES])
    scrambled = slor.score_batch([Sample(output=shuffled(s, i)) for i, s in enumerate(SENTENCES)])
    wins = [f.details["slor"] > s.details["slor"] for f, s in zip(fluent, scrambled, strict=True)]
    assert sum(wins) == 20, [SENTENCES[i] for i, won in enumerate(wins) if not won]
    assert sum(f.passed for f in fluent) >= 17 and sum(s.passed for s in scrambled) <= 3  # the shipped cut
    assert all(f.details["model"].endswith("smollm2-135m-instruct") for f in fluent)


def test_fluency_long_prefers_a_summary_to_its_shuffled_sentences_words(smollm2_path: Path) -> None:
    text = " ".join(SENTENCES[:4])
    broken = " ".join(shuffled(s, i) for i, s in enumerate(SENTENCES[:4]))
    good, bad = FLUENCY["fluency_long"]().score_batch([Sample(output=text), Sample(output=broken)])
    assert good.applicable and bad.applicable and good.value > bad.value
    assert good.details["min_sentence_slor"] > bad.details["min_sentence_slor"]


def test_the_writing_suite_gates_on_slor(smollm2_path: Path) -> None:
    samples = [Sample(output=SENTENCES[0]), Sample(output=shuffled(SENTENCES[0], 1))]
    fluent, scrambled = load_suite("writing").score(samples)
    verdicts = [next(s for s in row if s.name == "slor") for row in (fluent, scrambled)]
    assert [v.passed for v in verdicts] == [True, False] and all(v.applicable for v in verdicts)


@pytest.mark.parametrize("name", ["geval_fluency", "judge_rubric"])
def test_the_local_judge_tier_runs_on_smollm2_with_logprobs(smollm2_path: Path, name: str) -> None:
    config = ModelsConfig.model_validate({"router": {"default": f"hf:{smollm2_path}"}})
    judge = (
        JUDGES[name](config=config, criteria="Fluent, grammatical sentences.")
        if name == "judge_rubric"
        else (JUDGES[name](config=config))
    )
    brief = [{"role": "user", "content": "Summarise a news article in a few sentences."}]
    samples = [Sample(output=" ".join(SENTENCES[:3]), messages=brief), Sample(output=shuffled(SENTENCES[3], 0))]
    for score in (judge.score(s) for s in samples):
        assert score.error is None, score.error
        assert 0.0 <= score.value <= 1.0 and all(1.0 <= v <= 5.0 for v in score.details["scores"])
        assert score.details["judge_prompt"].startswith(f"other/{name.replace('geval_', 'judge_')}@")
