"""Fluency evaluators: degeneration checks, perplexity on the tiny model, the shipped acceptability classifier."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from evaluators.base import BatchEvaluator, Evaluator, Sample, safe_score_batch
from evaluators.fluency import EVALUATORS, calibrate, normalise_perplexity
from evaluators.fluency.acceptability import AcceptabilityEvaluator, load_model
from evaluators.fluency.degeneration import DegenerationEvaluator
from evaluators.fluency.perplexity import PerplexityEvaluator
from evaluators.fluency.text import split_sentences

FLUENT = (
    "The new library opens on Monday. It has a reading room, a café and a garden for children. "
    "Volunteers will run free workshops every weekend."
)
HUGE = ("The river rose quickly after the storm. " * 30_000)[:1_000_000]


def degeneration(text: str, **sample: object) -> object:
    return DegenerationEvaluator().score(Sample(output=text, **sample))


# --- registry -----------------------------------------------------------------------------------------------------


def test_registry_names_and_protocols(tiny_model_path: Path) -> None:
    assert set(EVALUATORS) == {"degeneration", "perplexity", "acceptability", "slor", "fluency_long"}
    built = [EVALUATORS["degeneration"](), EVALUATORS["acceptability"](), EVALUATORS["perplexity"](tiny_model_path)]
    assert all(isinstance(e, Evaluator) for e in built)
    assert isinstance(built[1], BatchEvaluator) and isinstance(built[2], BatchEvaluator)


def test_calibrate_names_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cola"):
        calibrate(tmp_path)


# --- degeneration ---------------------------------------------------------------------------------------------------


def test_fluent_text_has_no_degeneration() -> None:
    score = degeneration(FLUENT)
    assert score.value == 1.0 and score.passed
    assert set(score.details) == {"repeated_ngrams", "repeated_sentences", "truncated", "encoding", "language"}


def test_repetition_loop_is_penalised() -> None:
    loop = "I think that the answer is yes and " * 12 + "that is all."
    score = degeneration(loop)
    assert score.details["repeated_ngrams"]["penalty"] == 1.0
    assert score.value == 0.0 and not score.passed


def test_repeated_sentences_are_penalised() -> None:
    text = (
        FLUENT + " Volunteers will run free workshops every weekend. Volunteers will run free workshops every weekend."
    )
    score = degeneration(text)
    assert score.details["repeated_sentences"]["repeated"] == 2
    assert score.value < 1.0


@pytest.mark.parametrize(
    ("ending", "penalty"),
    [(" and then the", 0.5), (" and then we went home", 0.3), (" we went home,", 0.5), (" we went home.", 0.0)],
)
def test_cut_off_text(ending: str, penalty: float) -> None:
    score = degeneration("After the concert the crowd slowly left the hall" + ending)
    assert score.details["truncated"]["penalty"] == penalty


def test_list_ending_is_not_truncation() -> None:
    assert degeneration("Bring these things:\n- a warm coat\n- good boots").details["truncated"]["penalty"] == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "Loving our new trail shoe. #running #trail",
        "Loving our new trail shoe #running",
        "Big thanks to everyone who ran with us today @trailclub",
        "Read the full review of the shoe at https://example.com/reviews/trail-shoe",
        "Our new trail shoe is finally here \U0001f3c3\u200d\u2640\ufe0f",
        "Our new trail shoe is finally here \U0001f44d\U0001f3fd",
        "The shoe comes in three colours (red, blue, black)",
        'Our tester called it "the best grip on wet rock"',
        "Ready for the weekend?\n\n#running #trail #newshoes",
    ],
)
def test_a_complete_post_ending_in_tags_links_emoji_or_closers_is_not_truncated(text: str) -> None:
    score = degeneration(text)
    assert score.details["truncated"]["penalty"] == 0.0 and score.value == 1.0


@pytest.mark.parametrize(
    ("text", "penalty"),
    [("Join us for the #TrailDay run with", 0.5), ("Our shoe grips wet rock, drains fast,", 0.5)],
)
def test_a_post_cut_after_a_tag_is_still_truncated(text: str, penalty: float) -> None:
    assert degeneration(text).details["truncated"]["penalty"] == penalty


def test_summeval_calibration_reports_each_fluency_score_on_its_own(tmp_path: Path) -> None:
    from evaluators.fluency.calibration import summeval_rows

    texts = [FLUENT, "I think that the answer is yes and " * 12, "After the concert the crowd slowly left the"]
    rows = [
        {"summary": t, "expert_mean": {"fluency": f}} for t, f in zip(texts * 2, [5, 2, 3, 4.5, 1.5, 2.5], strict=True)
    ]
    path = tmp_path / "summeval.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    produced = summeval_rows(path)
    assert sorted(r["evaluator"] for r in produced) == ["acceptability", "degeneration"]  # no product of the two


@pytest.mark.parametrize("garbage", ["cafÃ© and rÃ©sumÃ©", "it\u2019s â€™broken", "bad \ufffd byte", "bell\x07 char"])
def test_encoding_garbage(garbage: str) -> None:
    score = degeneration(f"The menu lists {garbage} for everyone today.")
    assert score.details["encoding"]["penalty"] > 0 and score.value < 1.0


def test_wrong_language_from_inputs_metadata_or_kwarg() -> None:
    german = "Das Wetter ist heute sehr schön und wir gehen am Nachmittag in den Park spazieren."
    assert degeneration(german, inputs={"language": "English"}).details["language"]["penalty"] == 1.0
    assert degeneration(german, metadata={"language": "de"}).details["language"]["penalty"] == 0.0
    assert DegenerationEvaluator(language="en").score(Sample(output=german)).value == 0.0
    assert degeneration(FLUENT, inputs={"language": "en-GB"}).details["language"]["detected"] == "en"
    assert degeneration(german).details["language"]["skipped"]


def test_language_detection_is_deterministic() -> None:
    text = "Ciao, come stai? Oggi andiamo al mare con gli amici."
    assert (
        len({degeneration(text, inputs={"language": "it"}).details["language"]["probability"] for _ in range(5)}) == 1
    )


# --- perplexity -----------------------------------------------------------------------------------------------------


def test_normalisation_is_documented_shape() -> None:
    assert normalise_perplexity(1.0) == 1.0
    assert normalise_perplexity(1000.0) == 0.0
    assert math.isclose(normalise_perplexity(1000.0**0.5), 0.5)
    assert normalise_perplexity(float("inf")) == 0.0


def test_perplexity_batched_equals_one_by_one(tiny_model_path: Path) -> None:
    scorer = PerplexityEvaluator(tiny_model_path, batch_size=4)
    texts = ["the quick brown fox", "a new product launch for the brand team today", "coffee", "learn and grow with us"]
    samples = [Sample(output=t) for t in texts]
    batched = scorer.score_batch(samples)
    for sample, together in zip(samples, batched, strict=True):
        alone = scorer.score(sample)
        assert math.isclose(alone.details["perplexity"], together.details["perplexity"], rel_tol=1e-4)
        assert 0.0 <= together.value <= 1.0


def test_perplexity_counts_only_output_tokens(tiny_model_path: Path) -> None:
    plain = PerplexityEvaluator(tiny_model_path)
    conditioned = PerplexityEvaluator(tiny_model_path, condition_on_prompt=True)
    sample = Sample(output="the new coffee brand", messages=[{"role": "user", "content": "write a long story " * 5}])
    a, b = plain.score(sample), conditioned.score(sample)
    assert a.details["tokens"] == b.details["tokens"]  # the prompt's tokens are context, never scored
    assert a.details["perplexity"] != b.details["perplexity"]


# --- acceptability --------------------------------------------------------------------------------------------------

PAIRS = [
    ("The children were playing in the garden.", "Garden the in playing were children the."),
    ("She has lived in this town for ten years.", "She have lived in this town for for ten years."),
    ("We will meet at the station tomorrow morning.", "We will meet the at station tomorrow morning of."),
    ("The report was written by two engineers.", "The report written was by by engineers two."),
    ("He asked whether the museum was open on Sundays.", "He asked whether museum the open was Sundays on the."),
    ("Our team has been working on this problem for months.", "Our team have been work on this problem for month."),
]


def test_acceptability_ranks_grammatical_above_scrambled() -> None:
    scorer = AcceptabilityEvaluator()
    for good, bad in PAIRS:
        good_score, bad_score = scorer.score(Sample(output=good)), scorer.score(Sample(output=bad))
        assert good_score.value > bad_score.value, (good, bad)
    goods = scorer.score_batch([Sample(output=g) for g, _ in PAIRS])
    bads = scorer.score_batch([Sample(output=b) for _, b in PAIRS])
    assert sum(s.passed for s in goods) >= 4 and sum(s.passed for s in bads) <= 1


def test_acceptability_batch_equals_single() -> None:
    scorer = AcceptabilityEvaluator()
    samples = [Sample(output=FLUENT), Sample(output=PAIRS[0][1]), Sample(output="One. Two three four five six.")]
    for sample, batched in zip(samples, scorer.score_batch(samples), strict=True):
        assert math.isclose(scorer.score(sample).value, batched.value, rel_tol=1e-5)


def test_acceptability_model_is_shared_and_small() -> None:
    assert load_model() is load_model()
    assert load_model().meta["threshold"] == load_model().threshold
    weights = Path(__file__).resolve().parents[1] / "evaluators" / "fluency" / "data" / "acceptability.npz"
    assert weights.stat().st_size < 1_000_000


def test_weights_hold_no_pickle() -> None:
    import numpy as np

    with np.load(
        Path(load_model.__code__.co_filename).with_name("data") / "acceptability.npz", allow_pickle=False
    ) as archive:
        assert {"w1", "b1", "w2", "b2", "w_out", "b_out", "meta"} <= set(archive.files)


# --- bad input and threads ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["", "   \n ", b"caf\xe9 au lait is \xff\xfe good", HUGE])
def test_bad_inputs_give_scores_not_crashes(output: str | bytes, tiny_model_path: Path) -> None:
    sample = Sample(output=output)  # type: ignore[arg-type]  # bytes are decoded by Sample
    for scorer in (DegenerationEvaluator(), AcceptabilityEvaluator(), PerplexityEvaluator(tiny_model_path)):
        score = safe_score_batch(scorer, [sample])[0]
        assert score.error is None and 0.0 <= score.value <= 1.0
        if not sample.output.strip():
            assert score.value == 0.0 and score.passed is False


def test_non_utf8_bytes_show_as_encoding_garbage() -> None:
    assert degeneration(b"The caf\xe9 opens at nine every morning.").details["encoding"]["replacement"] == 1  # type: ignore[arg-type]


def test_huge_output_is_bounded() -> None:
    score = AcceptabilityEvaluator().score(Sample(output=HUGE))
    assert score.details["sentences"] <= 48
    assert degeneration(HUGE).details["repeated_sentences"]["penalty"] == 1.0


def test_sentence_splitter() -> None:
    assert split_sentences('Dr. Smith came. He said "hi." Then he left!') == [
        "Dr. Smith came.",
        'He said "hi."',
        "Then he left!",
    ]
    assert split_sentences("it rained . we left .") == ["it rained .", "we left ."]


def test_thread_safety(tiny_model_path: Path) -> None:
    samples = [Sample(output=t, inputs={"language": "en"}) for t in (FLUENT, PAIRS[1][1], "Short text here.")] * 8
    scorers = [DegenerationEvaluator(), AcceptabilityEvaluator(), PerplexityEvaluator(tiny_model_path)]
    expected = [[s.value for s in safe_score_batch(e, samples)] for e in scorers]

    def run(i: int) -> list[float]:
        scorer = scorers[i % 3]
        return [scorer.score(s).value for s in samples]

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run, range(12)))
    for i, values in enumerate(results):
        assert values == pytest.approx(expected[i % 3], rel=1e-5)
