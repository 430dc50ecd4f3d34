"""The 25 verifiable instruction types of IFEval (Zhou et al. 2023), re-implemented from their published semantics,
with IFEval's ids and keyword arguments. :data:`IFEVAL_CHECKS` maps each id to its :class:`CheckSpec`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from evaluators.adherence.checks import CheckSpec, Param, Verdict
from evaluators.adherence.text import count_sentences, count_words, word_tokens
from evaluators.base import Sample

__all__ = ["IFEVAL_CHECKS", "RELATIONS", "compare", "detect_language"]

Args = Mapping[str, Any]

RELATIONS = ("less than", "at least")
_CONSTRAINED_ANSWERS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


# ---- argument converters -------------------------------------------------------------------------------------------


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str) or int(value) != float(value):
        raise ValueError("not an integer")
    return int(value)


def _relation(value: Any) -> str:
    if value not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _pattern(value: Any) -> re.Pattern[str]:
    """A keyword as IFEval searches it: as a case-insensitive regex, or literally when it is not a valid one."""
    try:
        return re.compile(_text(value), re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(value), re.IGNORECASE)


def _patterns(value: Any) -> tuple[re.Pattern[str], ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError("not a list of strings")
    return tuple(_pattern(v) for v in sorted(set(value)))


def _word_patterns(value: Any) -> tuple[re.Pattern[str], ...]:
    return tuple(_pattern(r"\b" + p.pattern + r"\b") for p in _patterns(value))


def compare(actual: int, relation: str, target: int) -> bool:
    """IFEval's comparison: ``actual < target`` for "less than", ``actual >= target`` for "at least"."""
    return actual < target if relation == "less than" else actual >= target


def _counted(what: str, actual: int, relation: str, target: int) -> Verdict:
    return Verdict(compare(actual, relation, target), f"{actual} {what}; needs {relation} {target}")


# ---- keywords, language --------------------------------------------------------------------------------------------


def _existence(text: str, args: Args, sample: Sample | None) -> Verdict:
    missing = [p.pattern for p in args["keywords"] if not p.search(text)]
    return Verdict(not missing, f"missing keywords {missing}" if missing else "all keywords present")


def _frequency(text: str, args: Args, sample: Sample | None) -> Verdict:
    found = sum(1 for _ in args["keyword"].finditer(text))
    return _counted(f"of {args['keyword'].pattern!r}", found, args["relation"], args["frequency"])


def _forbidden(text: str, args: Args, sample: Sample | None) -> Verdict:
    used = [p.pattern[2:-2] for p in args["forbidden_words"] if p.search(text)]
    return Verdict(not used, f"uses forbidden {used}" if used else "no forbidden words")


def _letter_frequency(text: str, args: Args, sample: Sample | None) -> Verdict:
    letter = args["letter"].strip().lower()
    found = text.lower().count(letter) if len(letter) == 1 else 0
    return _counted(f"of letter {letter!r}", found, args["let_relation"], args["let_frequency"])


@functools.cache
def _language_factory() -> Any:
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    return factory


def detect_language(text: str) -> str | None:
    """The language code langdetect (seed 0) gives ``text``, or None when it cannot tell."""
    from langdetect.lang_detect_exception import LangDetectException

    try:
        detector = _language_factory().create()
        detector.append(text)
        return detector.detect()
    except LangDetectException:
        return None


def _response_language(text: str, args: Args, sample: Sample | None) -> Verdict:
    found = detect_language(text)
    if found is None:
        return Verdict(True, "language undetectable (counted as followed, as IFEval does)")
    return Verdict(found == args["language"], f"language {found}; needs {args['language']}")


# ---- length ----------------------------------------------------------------------------------------------------------


def _number_sentences(text: str, args: Args, sample: Sample | None) -> Verdict:
    return _counted("sentences", count_sentences(text), args["relation"], args["num_sentences"])


def _number_words(text: str, args: Args, sample: Sample | None) -> Verdict:
    return _counted("words", count_words(text), args["relation"], args["num_words"])


_STARS = re.compile(r"\s?\*\*\*\s?")


def _number_paragraphs(text: str, args: Args, sample: Sample | None) -> Verdict:
    pieces = _STARS.split(text)
    inner_empty = any(not p.strip() for p in pieces[1:-1])
    found = len(pieces) - (not pieces[0].strip()) - (len(pieces) > 1 and not pieces[-1].strip())
    if inner_empty:
        return Verdict(False, "an empty paragraph between *** dividers")
    return Verdict(found == args["num_paragraphs"], f"{found} paragraphs; needs {args['num_paragraphs']}")


_FIRST_WORD_STOP = re.compile(r"[.,?!'\"]")


def _first_word(paragraph: str) -> str:
    word = paragraph.split()[0].lstrip("'").lstrip('"')
    return _FIRST_WORD_STOP.split(word, maxsplit=1)[0].lower()


def _nth_paragraph_first_word(text: str, args: Args, sample: Sample | None) -> Verdict:
    pieces = text.split("\n\n")
    found = sum(1 for p in pieces if p.strip())
    nth, wanted = args["nth_paragraph"], args["first_word"].lower()
    if nth > found or not pieces[nth - 1].strip():
        return Verdict(False, f"no paragraph {nth} (found {found})")
    first = _first_word(pieces[nth - 1].strip())
    ok = found == args["num_paragraphs"] and first == wanted
    return Verdict(
        ok, f"{found} paragraphs, paragraph {nth} starts with {first!r}; needs {args['num_paragraphs']} and {wanted!r}"
    )


# ---- detectable content and format -----------------------------------------------------------------------------------


def _count_placeholders(text: str) -> int:
    found = 0
    for line in text.split("\n"):
        start = line.find("[")
        while start != -1:
            end = line.find("]", start + 1)
            if end == -1:
                break
            found += 1
            start = line.find("[", end + 1)
    return found


def _number_placeholders(text: str, args: Args, sample: Sample | None) -> Verdict:
    found = _count_placeholders(text)
    return Verdict(found >= args["num_placeholders"], f"{found} [placeholders]; needs {args['num_placeholders']}")


def _postscript_pattern(marker: Any) -> re.Pattern[str]:
    special = {"P.P.S": r"p\.\s?p\.\s?s", "P.S.": r"p\.\s?s\."}
    return _pattern(special.get(_text(marker), marker.lower()))


def _postscript(text: str, args: Args, sample: Sample | None) -> Verdict:
    found = args["postscript_marker"].search(text.lower()) is not None
    return Verdict(found, "postscript found" if found else "no postscript")


_STAR_BULLET = re.compile(r"^[^\S\n]*\*[^*].*$", re.MULTILINE)
_DASH_BULLET = re.compile(r"^[^\S\n]*-.*$", re.MULTILINE)


def _number_bullet_lists(text: str, args: Args, sample: Sample | None) -> Verdict:
    found = sum(1 for _ in _STAR_BULLET.finditer(text)) + sum(1 for _ in _DASH_BULLET.finditer(text))
    return Verdict(found == args["num_bullets"], f"{found} bullet points; needs exactly {args['num_bullets']}")


def _constrained_response(text: str, args: Args, sample: Sample | None) -> Verdict:
    found = any(answer in text for answer in _CONSTRAINED_ANSWERS)
    return Verdict(found, "has a constrained answer" if found else f"none of {list(_CONSTRAINED_ANSWERS)}")


_SINGLE_HIGHLIGHT = re.compile(r"\*[^\n*]*\*")
_DOUBLE_HIGHLIGHT = re.compile(r"\*\*[^\n*]*\*\*")


def _number_highlighted_sections(text: str, args: Args, sample: Sample | None) -> Verdict:
    single = sum(1 for m in _SINGLE_HIGHLIGHT.finditer(text) if m.group().strip("*").strip())
    double = sum(1 for m in _DOUBLE_HIGHLIGHT.finditer(text) if m.group()[2:-2].strip())
    found = single + double
    return Verdict(found >= args["num_highlights"], f"{found} highlighted sections; needs {args['num_highlights']}")


def _section_splitter(value: Any) -> re.Pattern[str]:
    splitter = _text(value).strip()
    try:
        return re.compile(r"\s?" + splitter + r"\s?\d+\s?")
    except re.error:
        return re.compile(r"\s?" + re.escape(splitter) + r"\s?\d+\s?")


def _multiple_sections(text: str, args: Args, sample: Sample | None) -> Verdict:
    found = sum(1 for _ in args["section_spliter"].finditer(text))
    return Verdict(found >= args["num_sections"], f"{found} sections; needs {args['num_sections']}")


def _json_format(text: str, args: Args, sample: Sample | None) -> Verdict:
    body = text.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        body = body.removeprefix(fence)
    body = body.removesuffix("```").strip()
    try:
        json.loads(body)
    except ValueError as exc:
        return Verdict(False, f"not JSON: {exc}")
    return Verdict(True, "valid JSON")


def _has_title(line: str) -> bool:
    start = line.find("<<")
    end = line.rfind(">>")
    return start != -1 and end >= start + 3 and bool(line[start : end + 2].lstrip("<").rstrip(">").strip())


def _title(text: str, args: Args, sample: Sample | None) -> Verdict:
    found = any(_has_title(line) for line in text.split("\n") if "<<" in line)
    return Verdict(found, "has a <<title>>" if found else "no <<title>>")


# ---- combination, start/end, case, punctuation -----------------------------------------------------------------------


def _two_responses(text: str, args: Args, sample: Sample | None) -> Verdict:
    pieces = text.split("******")
    if any(not p.strip() for p in pieces[1:-1]):
        return Verdict(False, "an empty response between ****** separators")
    responses = [p.strip() for p in pieces if p.strip()]
    ok = len(responses) == 2 and responses[0] != responses[1]
    return Verdict(ok, f"{len(responses)} responses separated by ******; needs 2 different ones")


def _repeat_prompt(text: str, args: Args, sample: Sample | None) -> Verdict:
    ok = text.strip().lower().startswith(args["prompt_to_repeat"].strip().lower())
    return Verdict(ok, "starts with the prompt" if ok else "does not start by repeating the prompt")


def _end_checker(text: str, args: Args, sample: Sample | None) -> Verdict:
    phrase = args["end_phrase"].strip().lower()
    ok = text.strip().strip('"').lower().endswith(phrase)
    return Verdict(ok, f"ends with {phrase!r}" if ok else f"does not end with {phrase!r}")


def _quotation(text: str, args: Args, sample: Sample | None) -> Verdict:
    body = text.strip()
    ok = len(body) > 1 and body[0] == '"' and body[-1] == '"'
    return Verdict(ok, "wrapped in double quotes" if ok else "not wrapped in double quotes")


def _capital_word_frequency(text: str, args: Args, sample: Sample | None) -> Verdict:
    found = sum(1 for token in word_tokens(text) if token.isupper())
    return _counted("all-caps words", found, args["capital_relation"], args["capital_frequency"])


def _case_in_english(text: str, is_case: bool, case: str) -> Verdict:
    if not is_case:
        return Verdict(False, f"not all {case}")
    found = detect_language(text)
    if found is None:
        return Verdict(True, f"all {case}; language undetectable")
    return Verdict(found == "en", f"all {case}, language {found}")


def _english_capital(text: str, args: Args, sample: Sample | None) -> Verdict:
    return _case_in_english(text, text.isupper(), "capitals")


def _english_lowercase(text: str, args: Args, sample: Sample | None) -> Verdict:
    return _case_in_english(text, text.islower(), "lowercase")


def _no_comma(text: str, args: Args, sample: Sample | None) -> Verdict:
    found = text.count(",")
    return Verdict(found == 0, f"{found} commas" if found else "no commas")


# ---- the registry ----------------------------------------------------------------------------------------------------


def _count_params(count: str, relation: str) -> tuple[Param, Param]:
    return Param(count, _int), Param(relation, _relation)


_SPECS = (
    CheckSpec("keywords:existence", _existence, (Param("keywords", _patterns),), description="keywords appear"),
    CheckSpec(
        "keywords:frequency",
        _frequency,
        (Param("keyword", lambda v: _pattern(_text(v).strip())), *_count_params("frequency", "relation")),
    ),
    CheckSpec("keywords:forbidden_words", _forbidden, (Param("forbidden_words", _word_patterns),)),
    CheckSpec(
        "keywords:letter_frequency",
        _letter_frequency,
        (Param("letter", _text), *_count_params("let_frequency", "let_relation")),
    ),
    CheckSpec("language:response_language", _response_language, (Param("language", _text),)),
    CheckSpec("length_constraints:number_sentences", _number_sentences, _count_params("num_sentences", "relation")),
    CheckSpec("length_constraints:number_paragraphs", _number_paragraphs, (Param("num_paragraphs", _int),)),
    CheckSpec("length_constraints:number_words", _number_words, _count_params("num_words", "relation")),
    CheckSpec(
        "length_constraints:nth_paragraph_first_word",
        _nth_paragraph_first_word,
        (Param("num_paragraphs", _int), Param("nth_paragraph", _int), Param("first_word", _text)),
    ),
    CheckSpec("detectable_content:number_placeholders", _number_placeholders, (Param("num_placeholders", _int),)),
    CheckSpec("detectable_content:postscript", _postscript, (Param("postscript_marker", _postscript_pattern),)),
    CheckSpec("detectable_format:number_bullet_lists", _number_bullet_lists, (Param("num_bullets", _int),)),
    CheckSpec("detectable_format:constrained_response", _constrained_response),
    CheckSpec(
        "detectable_format:number_highlighted_sections", _number_highlighted_sections, (Param("num_highlights", _int),)
    ),
    CheckSpec(
        "detectable_format:multiple_sections",
        _multiple_sections,
        (Param("section_spliter", _section_splitter), Param("num_sections", _int)),
    ),
    CheckSpec("detectable_format:json_format", _json_format),
    CheckSpec("detectable_format:title", _title),
    CheckSpec("combination:two_responses", _two_responses),
    CheckSpec("combination:repeat_prompt", _repeat_prompt, (Param("prompt_to_repeat", _text),)),
    CheckSpec("startend:end_checker", _end_checker, (Param("end_phrase", _text),)),
    CheckSpec("startend:quotation", _quotation),
    CheckSpec(
        "change_case:capital_word_frequency",
        _capital_word_frequency,
        _count_params("capital_frequency", "capital_relation"),
    ),
    CheckSpec("change_case:english_capital", _english_capital),
    CheckSpec("change_case:english_lowercase", _english_lowercase),
    CheckSpec("punctuation:no_comma", _no_comma),
)

IFEVAL_CHECKS: Mapping[str, CheckSpec] = MappingProxyType({spec.id: spec for spec in _SPECS})
"""IFEval's 25 instruction ids mapped to their checks."""
