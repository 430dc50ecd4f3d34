"""Instruction adherence: IFEval's 25 checks, aigc's own checks, and the two evaluators (no shared data needed)."""

from __future__ import annotations

from typing import Any

import pytest

from evaluators.adherence import (
    CHECKS,
    EVALUATORS,
    IFEVAL_CHECKS,
    AdherenceEvaluator,
    IFEvalEvaluator,
    bind,
    calibrate,
)
from evaluators.adherence.text import count_sentences, count_words, flesch_kincaid_grade, word_tokens
from evaluators.base import Sample
from evaluators.errors import InvalidArguments, UnknownEvaluator

ENGLISH = "The quick brown fox jumps over the lazy dog. It was a sunny day in the park and everyone was happy."
GERMAN = "Der schnelle braune Fuchs springt über den faulen Hund. Es war ein sonniger Tag im Park."

# (instruction id, kwargs, passing output, failing output)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("keywords:existence", {"keywords": ["fox", "dog"]}, "A fox and a Dog.", "A fox alone."),
    ("keywords:frequency", {"keyword": "cat", "frequency": 2, "relation": "at least"}, "cat CAT", "one cat"),
    ("keywords:frequency", {"keyword": "cat", "frequency": 2, "relation": "less than"}, "one cat", "cat cat"),
    ("keywords:forbidden_words", {"forbidden_words": ["bad"]}, "a badge is fine", "this is Bad"),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "at least"}, "Zz", "z"),
    ("language:response_language", {"language": "de"}, GERMAN, ENGLISH),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "less than"}, "One.", "One. Two."),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"}, "Hi! Yes?", "Mr. Smith."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "a\n***\nb", "a\n***\n***\nb"),
    ("length_constraints:number_words", {"num_words": 3, "relation": "at least"}, "one two three", "one two"),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        'First.\n\n"Then, done.',
        "First.\n\nNow done.",
    ),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "[name] at [place]", "[name] only ]["),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\np.s. bye", "Hi. PS bye"),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hi.\nP.P.S more", "Hi. P.S. more"),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\n- b\n**c**", "* a\n* b\n- c"),
    ("detectable_format:constrained_response", {}, "My answer is yes.", "Yes."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* and **two**", "*one* and ** **"),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "SECTION 1\na\nSECTION 2\nb",
        "SECTION 1\na",
    ),
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', "{'a': 1}"),
    ("detectable_format:title", {}, "<<My Title>>\ntext", "<< >>\ntext"),
    ("combination:two_responses", {}, "one\n******\ntwo", "same\n******\nsame"),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Say hi."}, "say hi. Hi!", "Hi! Say hi."),
    ("startend:end_checker", {"end_phrase": "Any questions?"}, '"Done. any questions?"', "Any questions? No."),
    ("startend:quotation", {}, '  "quoted"  ', '"half'),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "I DON'T know",
        "Only ONE here",
    ),
    ("change_case:english_capital", {}, "THIS IS ALL IN CAPITAL LETTERS AND IN ENGLISH.", "This is not."),
    ("change_case:english_lowercase", {}, "this is all in lowercase letters and in english.", "this is Not."),
    ("punctuation:no_comma", {}, "no commas here", "one, two"),
]


def test_every_ifeval_instruction_has_cases() -> None:
    assert {case[0] for case in CASES} == set(IFEVAL_CHECKS)
    assert len(IFEVAL_CHECKS) == 25


@pytest.mark.parametrize(("check_id", "kwargs", "good", "bad"), CASES, ids=[c[0] for c in CASES])
def test_instruction_passes_and_fails(check_id: str, kwargs: dict[str, Any], good: str, bad: str) -> None:
    check = bind(check_id, kwargs, IFEVAL_CHECKS)
    assert check.strict(good).passed, check.strict(good).reason
    assert not check.strict(bad).passed


def test_none_valued_kwargs_are_ignored() -> None:
    check = bind("punctuation:no_comma", {"num_words": None, "relation": None}, IFEVAL_CHECKS)
    assert check.strict("fine").passed


def test_loose_mode_forgives_a_preamble_and_asterisks() -> None:
    check = bind("startend:quotation", {}, IFEVAL_CHECKS)
    text = 'Sure, here it is:\n"All quoted"'
    assert not check.strict(text).passed
    assert check.loose(text).passed
    words = bind("keywords:existence", {"keywords": ["bold move"]}, IFEVAL_CHECKS)
    assert not words.strict("a **bold** move").passed
    assert words.loose("a **bold** move").passed


def test_unknown_id_lists_valid_ids() -> None:
    with pytest.raises(UnknownEvaluator) as caught:
        bind("keywords:nope", {}, CHECKS)
    assert "keywords:existence" in str(caught.value)
    assert "json_schema" in str(caught.value)


@pytest.mark.parametrize(
    ("check_id", "kwargs", "named"),
    [
        ("keywords:frequency", {"keyword": "x"}, "frequency"),
        ("punctuation:no_comma", {"extra": 1}, "extra"),
        ("length_constraints:number_words", {"num_words": 3, "relation": "more than"}, "relation"),
        ("max_chars", {}, "limit"),
        ("regex", {"pattern": "("}, "pattern"),
    ],
)
def test_wrong_kwargs_name_the_expected_ones(check_id: str, kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidArguments) as caught:
        bind(check_id, kwargs, CHECKS)
    assert named in str(caught.value)
    assert check_id in str(caught.value)


def test_text_measures() -> None:
    assert count_words("It's a well-known fact.") == 6
    assert count_sentences("Dr. Smith arrived. He sat down!") == 2
    assert count_sentences("1. first item\n2. second item") == 1
    assert count_sentences("") == 0
    assert word_tokens("I DON'T know (NASA).") == ["I", "DO", "N'T", "know", "(", "NASA", ")", "."]


def test_reading_grade_orders_simple_and_complex_text() -> None:
    simple = flesch_kincaid_grade("The cat sat. The dog ran. We had fun.")
    hard = flesch_kincaid_grade(
        "Notwithstanding considerable methodological heterogeneity, comprehensive investigations "
        "demonstrated statistically significant improvements in organizational effectiveness."
    )
    assert simple is not None and hard is not None
    assert simple < 3 < 12 < hard


def _adherence(output: str | bytes, expect: list[dict[str, Any]], **extra: Any) -> Any:
    return AdherenceEvaluator().score(Sample(output=output, expect=expect, **extra))  # type: ignore[arg-type]


def test_adherence_with_a_realistic_expect_block() -> None:
    inputs = {"product": "Acme Kettle", "platform": "x", "keywords": ["fast", "quiet"], "grade_level": 8}
    expect = [
        {"check": "max_chars", "by_input": "platform", "limits": {"x": 280, "linkedin": 3000}},
        {"check": "must_mention", "inputs": ["product"]},
        {"check": "keywords_from_input", "input": "keywords"},
        {"check": "reading_grade", "by_input": "grade_level"},
        {"check": "punctuation:no_comma"},
        {"check": "regex", "pattern": r"#\w+", "flags": "i"},
        {"check": "keywords:forbidden_words", "forbidden_words": ["cheap"]},
    ]
    good = "Meet the acme  kettle. It is fast and quiet. Tea in two minutes! #TeaTime"
    score = _adherence(good, expect, inputs=inputs)
    assert score.passed, score.reason
    assert score.value == 1.0
    assert [c["id"] for c in score.details["checks"]] == [e["check"] for e in expect]

    bad = "A cheap kettle, fast. " * 20
    score = _adherence(bad, expect, inputs=inputs)
    assert not score.passed
    failed = {c["id"] for c in score.details["checks"] if not c["passed"]}
    assert {"max_chars", "must_mention", "punctuation:no_comma", "keywords:forbidden_words"} <= failed
    assert 0 < score.value < 1


def test_max_chars_by_platform() -> None:
    expect = [{"check": "max_chars", "by_input": "platform"}]
    post = "x" * 1000
    assert not _adherence(post, expect, inputs={"platform": "x"}).passed
    assert _adherence(post, expect, inputs={"platform": "LinkedIn"}).passed
    assert not _adherence(post, expect, inputs={"platform": "myspace"}).passed
    assert _adherence("short", [{"check": "max_chars", "limit": 5}]).passed


def test_json_schema_with_fences_and_output_schema() -> None:
    schema = {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}
    fenced = '```json\n{"title": "Hello"}\n```'
    assert _adherence(fenced, [{"check": "json_schema"}], output_schema=schema).passed
    assert _adherence(fenced, [{"check": "json_schema", "schema": schema}]).passed
    wrong = _adherence('{"title": 3}', [{"check": "json_schema", "schema": schema}])
    assert not wrong.passed and "title" in wrong.reason
    assert not _adherence("not json", [{"check": "json_schema", "schema": schema}]).passed


def test_reading_grade_bounds() -> None:
    text = "The cat sat on the mat. The dog ran to the park. We all had fun."
    assert _adherence(text, [{"check": "reading_grade", "max": 4}]).passed
    assert not _adherence(text, [{"check": "reading_grade", "min": 9}]).passed
    assert _adherence(text, [{"check": "reading_grade", "by_input": "grade"}], inputs={"grade": "grade 3"}).passed


def test_empty_output_fails_every_check() -> None:
    score = _adherence("", [{"check": "punctuation:no_comma"}, {"check": "max_chars", "limit": 10}])
    assert score.value == 0.0 and not score.passed
    assert (
        IFEvalEvaluator()
        .score(Sample(output="", metadata={"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}))
        .value
        == 0.0
    )


def test_one_megabyte_output_completes() -> None:
    big = ("Word, and [more] words. *Bold* line!\n- item\n<<t>>\n" * 25_000)[:1_000_000]
    expect = [{"check": check_id, **kwargs} for check_id, kwargs, _, _ in CASES]
    score = _adherence(big, expect)
    assert len(score.details["checks"]) == len(CASES)


def test_non_utf8_bytes_output() -> None:
    score = _adherence(b"caf\xe9 ok \xff", [{"check": "punctuation:no_comma"}, {"check": "regex", "pattern": "ok"}])
    assert score.passed


def test_ifeval_evaluator_strict_and_loose() -> None:
    metadata = {"instruction_id_list": ["startend:quotation", "punctuation:no_comma"], "kwargs": [{}, {}]}
    sample = Sample(output='Here you go:\n"A quote"', metadata=metadata)
    strict, loose = IFEvalEvaluator().score(sample), IFEvalEvaluator(mode="loose").score(sample)
    assert (strict.value, strict.passed) == (0.5, False)
    assert (loose.value, loose.passed) == (1.0, True)
    assert EVALUATORS["ifeval"](mode="loose").score(sample).passed
    assert EVALUATORS["adherence"]().name == "adherence"


def test_calibrate_names_a_missing_folder(tmp_path: Any) -> None:
    with pytest.raises(FileNotFoundError, match="ifeval"):
        calibrate(tmp_path)
