"""SLOR and fluency_long on the tiny model: the formula by hand, batching, the unigram table, fallbacks, fitting."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from evaluators.base import Sample
from evaluators.errors import EvaluatorError
from evaluators.fluency import EVALUATORS, fitting
from evaluators.fluency.long import FEATURES, FluencyLongEvaluator, long_features
from evaluators.fluency.slor import SlorEvaluator, token_logprobs
from evaluators.fluency.unigram import build_table, load_table, save_table, vocab_hash
from evaluators.suite import Suite, SuiteSpec

SHIPPED = Path(__file__).resolve().parents[1] / "evaluators" / "fluency" / "data" / "unigram_smollm2.npz"
WORDS = [("the", 0.05), ("a", 0.02), ("new", 0.004), ("coffee", 0.0005), ("brand", 0.0004), ("team", 0.0006)]
TEXTS = [
    "the quick brown fox",
    "A new product launch for the brand team today.",
    "coffee",
    "Learn and grow with us. Our team will help you start. Then check your answer!",
    "the the the the the the the the the the the the",
]


@pytest.fixture(scope="module")
def tiny_table(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_path))
    logp, meta = build_table(tokenizer, WORDS, source="test words")
    path = tmp_path_factory.mktemp("unigram") / "tiny.npz"
    save_table(path, logp, meta)
    return path


@pytest.fixture(scope="module")
def tiny_slor(tiny_model_path: Path, tiny_table: Path) -> SlorEvaluator:
    return SlorEvaluator(tiny_model_path, unigram=tiny_table, batch_size=3)


# --- the unigram table --------------------------------------------------------------------------------------------


def test_the_shipped_table_loads_is_small_and_a_distribution() -> None:
    table = load_table(SHIPPED)
    assert table.logp.shape == (49152,) and table.logp.dtype == np.float32
    assert math.isclose(float(np.exp(table.logp.astype(np.float64)).sum()), 1.0, rel_tol=1e-4)
    assert table.logp.max() < 0 and np.isfinite(table.logp).all()
    assert "wordfreq" in table.meta["source"] and "CC BY-SA 4.0" in table.meta["attribution"]
    assert SHIPPED.stat().st_size < 1_000_000
    with np.load(SHIPPED, allow_pickle=False) as archive:  # no pickled objects inside
        assert set(archive.files) == {"logp", "meta"}
    assert load_table(SHIPPED) is table  # read once per process


def test_a_built_table_gives_listed_words_their_mass(tiny_model_path: Path, tiny_table: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_path))
    table = load_table(tiny_table)
    the = tokenizer.encode(" the", add_special_tokens=False)
    unlisted = tokenizer.encode("ü", add_special_tokens=False)
    assert table.logp[the].max() > table.logp[unlisted].max() + 5  # a frequent word vs the floor
    assert table.meta["vocab_hash"] == vocab_hash(tokenizer)
    with pytest.raises(ValueError, match="no word frequencies"):
        build_table(tokenizer, [])


def test_a_table_for_another_tokenizer_is_refused(tiny_model_path: Path) -> None:
    scorer = SlorEvaluator(tiny_model_path, unigram=SHIPPED)  # SmolLM2's table, the tiny model's tokenizer
    with pytest.raises(EvaluatorError, match=r"built for another tokenizer.*build_unigram"):
        scorer.score(Sample(output="the new coffee"))
    with pytest.raises(EvaluatorError, match="unigram table not found"):
        SlorEvaluator(tiny_model_path, unigram="/nowhere/table.npz").score(Sample(output="the new coffee"))


# --- the formula ----------------------------------------------------------------------------------------------------


def test_slor_matches_the_formula_computed_by_hand(tiny_model_path: Path, tiny_slor: SlorEvaluator) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_path))
    lm = AutoModelForCausalLM.from_pretrained(str(tiny_model_path), dtype=torch.float32).eval()
    unigram = load_table(tiny_slor.unigram_path).logp
    text = "A new coffee brand for the team."
    ids = tokenizer.encode(text, add_special_tokens=False)
    context = tokenizer.bos_token_id  # the tiny vocabulary has no <|endoftext|>
    with torch.no_grad():
        logits = lm(torch.tensor([[context, *ids]])).logits[0].double()
    log_p_lm = sum(float(torch.log_softmax(logits[i], -1)[token]) for i, token in enumerate(ids))
    log_p_unigram = float(sum(unigram[token] for token in ids))
    expected = (log_p_lm - log_p_unigram) / len(ids)
    score = tiny_slor.score(Sample(output=text))
    assert score.details["tokens"] == len(ids)
    assert score.details["slor"] == pytest.approx(expected, abs=1e-4)
    p = 1 / (1 + math.exp(-(tiny_slor.slope * expected + tiny_slor.intercept)))
    assert score.value == pytest.approx(p, abs=1e-5) and score.passed is (score.value >= tiny_slor.threshold)


def test_batched_equals_one_by_one(tiny_slor: SlorEvaluator) -> None:
    samples = [Sample(output=t) for t in TEXTS]
    small_batches = SlorEvaluator(tiny_slor.model, unigram=tiny_slor.unigram_path, batch_size=2, batch_tokens=24)
    for scorer in (tiny_slor, small_batches):
        batched = scorer.score_batch(samples)
        for sample, together in zip(samples, batched, strict=True):
            alone = scorer.score(sample)
            assert together.details["slor"] == pytest.approx(alone.details["slor"], abs=1e-4)
            assert together.details["tokens"] == alone.details["tokens"] and 0.0 <= together.value <= 1.0


def test_padding_never_leaks_into_a_row(tiny_model_path: Path) -> None:
    from evaluators.fluency.perplexity import load_lm

    tokenizer, lm = load_lm(tiny_model_path)
    short, long = [1, 20, 30], [1, 20, 30, 40, 50, 60, 70]
    together = token_logprobs(lm, [short, long], tokenizer)
    assert np.allclose(together[0], token_logprobs(lm, [short], tokenizer)[0], atol=1e-5)
    assert together[0].shape == (2,) and together[1].shape == (6,)


def test_sentence_slors_partition_the_tokens(tiny_slor: SlorEvaluator) -> None:
    (result,) = tiny_slor.results([TEXTS[3]])
    assert [s for s, _, _ in result.sentences] == ["Learn and grow with us.", "Our team will help you start.",
                                                   "Then check your answer!"]  # fmt: skip
    spans = [(a, b) for _, a, b in result.sentences]
    assert spans[0][0] == 0 and spans[-1][1] == result.tokens
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(spans))
    weighted = sum((b - a) * s for (a, b), s in zip(spans, result.sentence_slors(), strict=True)) / result.tokens
    assert weighted == pytest.approx(result.slor, abs=1e-5)
    score = tiny_slor.score(Sample(output=TEXTS[3]))
    assert score.details["sentences"] == 3 and score.details["worst_sentence"] in TEXTS[3]


def test_sentences_past_the_token_limit_are_left_out(tiny_slor: SlorEvaluator) -> None:
    short = SlorEvaluator(tiny_slor.model, unigram=tiny_slor.unigram_path, max_tokens=12)
    score = short.score(Sample(output=TEXTS[3] + " Bad bad words words here."))
    (result,) = short.results([TEXTS[3] + " Bad bad words words here."])
    assert result.tokens == 12 and len(result.sentences) == 4
    assert score.details["sentences"] == len(result.sentence_scores()) < 4
    assert score.details["worst_sentence"] in [s for s, _ in result.sentence_scores()]


@pytest.mark.parametrize("output", ["", "   \n ", b"caf\xe9 \xff", "word " * 50_000])
def test_bad_inputs_give_scores(tiny_slor: SlorEvaluator, output: str | bytes) -> None:
    score = tiny_slor.score(Sample(output=output))  # type: ignore[arg-type]
    assert score.error is None and 0.0 <= score.value <= 1.0
    if not Sample(output=output).output.strip():  # type: ignore[arg-type]
        assert score.value == 0.0 and score.passed is False
    else:
        assert score.details["tokens"] <= tiny_slor.max_tokens


# --- without the model ------------------------------------------------------------------------------------------------


def test_without_the_cached_model_slor_is_not_applicable_and_the_suite_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AIGC_MODELS_DIR", str(tmp_path / "empty-cache"))
    scorer = EVALUATORS["slor"]()
    score = scorer.score(Sample(output="A calm note."))
    assert not score.applicable and score.passed is None and "aigc models pull smollm2" in score.reason
    spec = SuiteSpec(name="t", evaluators=[{"evaluator": "slor"}, {"evaluator": "fluency_long"},
                                           {"evaluator": "degeneration"}])  # fmt: skip
    (row,) = Suite(spec).score([Sample(output="A calm and friendly note about our new trail shoe.")])
    assert [s.applicable for s in row] == [False, False, True] and row[2].passed is True
    assert all(s.error is None and s.passed is None for s in row[:2])
    with pytest.raises(EvaluatorError, match="not in the model cache"):
        EVALUATORS["slor"](model="smollm2")  # asked for by name: an error, not a quiet n/a


# --- fluency_long -----------------------------------------------------------------------------------------------------

LONG = (
    "The city council approved a new budget on Tuesday after a long debate. It adds money for schools and "
    "repairs two bridges. The mayor said the plan would not raise taxes next year."
)


def test_fluency_long_features_and_applicability(tiny_model_path: Path, tiny_table: Path) -> None:
    scorer = FluencyLongEvaluator(tiny_model_path, unigram=tiny_table)
    short, long = scorer.score_batch([Sample(output="Too short to rate."), Sample(output=LONG)])
    assert not short.applicable and "under 20" in short.reason
    assert long.applicable and 0.0 <= long.value <= 1.0 and long.passed is None
    assert 1.0 <= long.details["expected_rating"] <= 5.0
    assert long.value == pytest.approx((long.details["expected_rating"] - 1) / 4)
    (result,) = scorer.slor.results([LONG])
    features = long_features(result, LONG)
    assert tuple(features) == FEATURES and features["sentences"] == 3.0 and features["truncated"] == 0.0
    loop = FluencyLongEvaluator(tiny_model_path, unigram=tiny_table, threshold=0.99).score(Sample(output=LONG * 3))
    assert loop.details["repeated_sentences"] > 0 and loop.passed is (loop.value >= 0.99)


# --- fitting ----------------------------------------------------------------------------------------------------------


def test_threshold_fit_and_its_cross_validation() -> None:
    rng = np.random.default_rng(0)
    y = np.array([1] * 140 + [0] * 60)
    x = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 0.8, size=y.size)
    fit = fitting.fit_threshold(x, y)
    assert fit["slope"] > 0 and 0 < fit["threshold"] < 1
    values = 1 / (1 + np.exp(-(fit["slope"] * x + fit["intercept"])))
    in_sample = fitting.mcc(y, (values >= fit["threshold"]).astype(int))
    assert 0.5 < fitting.cv_mcc(x, y) <= in_sample + 0.05
    assert fitting.auroc(y, x) > 0.85 and fitting.auroc(y, -x) < 0.15


def test_ridge_cross_validation_is_grouped() -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(20), 6)
    leak = rng.normal(size=20)[groups]  # a per-group constant: learnable only if a group sits on both sides
    target = leak + rng.normal(0, 0.1, size=groups.size)
    features = np.column_stack([np.eye(20)[groups], rng.normal(size=groups.size)])
    grouped = fitting.cv_ridge(features, target, groups)
    in_sample = fitting.predict_ridge(fitting.fit_ridge(features, target), features)
    assert fitting.spearman(in_sample, target) > 0.9 and abs(fitting.spearman(grouped, target)) < 0.5
    per_doc, documents = fitting.per_document_spearman(target, target, groups)
    assert per_doc == pytest.approx(1.0) and documents == 20
