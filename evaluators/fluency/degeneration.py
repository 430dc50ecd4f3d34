"""Degeneration: the ways generated text visibly breaks, each found by a cheap, offline, linear-time check.

``value`` is the product of ``1 - penalty`` over the checks, so each check can only lower it:

- ``repeated_ngrams``: share of repeated word 4-grams ``r4`` (occurrences beyond the first / all 4-grams) and of
  3-grams ``r3``; penalty ``clip((max(r4, r3 - 0.05) - 0.10) / 0.40)``: none up to 10 % (ordinary prose repeats a
  few phrases), full at 50 % (a loop). Needs at least 12 words.
- ``repeated_sentences``: share ``d`` of sentences (3+ words) that repeat an earlier one word for word; penalty
  ``clip(2 * d)``: one repeat in eight sentences costs 0.25, half the text repeated costs everything.
- ``truncated``: the text stops mid-sentence. Penalty 0.5 when it ends on a dangling word (the, and, of, ...) or on
  a comma, colon or dash; 0.3 when it ends without terminal punctuation; nothing for outputs under four words or
  ending in a list item, table row or heading (those need no full stop), nor for a complete text that closes with
  what posts put last: hashtags, @mentions, URLs, emoji or other symbols, closing brackets and quotes.
- ``encoding``: U+FFFD replacement characters, UTF-8-read-as-Latin-1 mojibake ("Ã©", "â€™") and control
  characters; penalty ``min(1, 0.25 * count)``.
- ``language``: when a language is expected (the factory's ``language``, ``sample.inputs["language"]`` or
  ``sample.metadata["language"]``; codes or English names), langdetect (fixed seed, first 600 characters) must
  find it; penalty 1.0 when another language has probability >= 0.8, else 0. Skipped under five words.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Mapping
from typing import Any

from evaluators.base import Sample, Score
from evaluators.fluency.text import split_sentences

__all__ = ["LANGUAGE_CHARS", "DegenerationEvaluator", "detect_language", "expected_language"]

_DANGLING_WORDS = (
    "the a an and or but of to in on at for with by from that which who whose as than if because while "
    "when is are was were be been has have had will would can could should my your our their his her its"
)
_DANGLING = frozenset(_DANGLING_WORDS.split())
_TERMINAL = ".!?…\"'”’)]}`*>"
_MOJIBAKE = re.compile(r"Ã[\u0080-\u00bf]|Â[\u00a0-\u00bf]|â€[\u0080-\u00ff™œ\u009d˜”“¢¦]|ï»¿|Ã[©¨ª¤¶¼±]")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")
_WORDS = re.compile(r"\w+(?:'\w+)*")
_STRUCTURED_LINE = re.compile(r"^\s*([-*•+|#>]|\d+[.)]\s)")
# What a complete post may end with instead of a full stop: a hashtag, an @mention or a URL as the last token.
_TAIL_TOKEN = re.compile(r"(?:#\w[\w\-]*|@\w[\w.\-]*|(?:https?://|www\.)\S+)[.!?…)\]}\"'”’»]*$", re.IGNORECASE)
_CLOSERS = ")]}\"'”’»›`*>_~"
_NAMES = {
    "english": "en",
    "french": "fr",
    "german": "de",
    "spanish": "es",
    "italian": "it",
    "portuguese": "pt",
    "dutch": "nl",
    "swedish": "sv",
    "danish": "da",
    "norwegian": "no",
    "finnish": "fi",
    "polish": "pl",
    "russian": "ru",
    "ukrainian": "uk",
    "czech": "cs",
    "turkish": "tr",
    "greek": "el",
    "arabic": "ar",
    "hebrew": "he",
    "hindi": "hi",
    "japanese": "ja",
    "korean": "ko",
    "chinese": "zh-cn",
    "vietnamese": "vi",
    "indonesian": "id",
    "romanian": "ro",
    "hungarian": "hu",
}
_DETECTOR_LOCK = threading.Lock()
LANGUAGE_CHARS = 600
"""Characters of an output that langdetect reads (its cost grows with the text; 600 is plenty to tell a language)."""


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def _repeat_share(words: list[str], n: int) -> float:
    grams = list(zip(*(words[i:] for i in range(n)), strict=False))
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def check_ngrams(words: list[str]) -> dict[str, Any]:
    """Shares of repeated 3- and 4-grams and their penalty."""
    if len(words) < 12:
        return {"penalty": 0.0, "skipped": "under 12 words"}
    r3, r4 = _repeat_share(words, 3), _repeat_share(words, 4)
    return {
        "penalty": _clip((max(r4, r3 - 0.05) - 0.10) / 0.40),
        "repeated_3grams": round(r3, 4),
        "repeated_4grams": round(r4, 4),
    }


def check_sentences(sentences: list[str]) -> dict[str, Any]:
    """Share of sentences that repeat an earlier one, and its penalty."""
    keys = [" ".join(_WORDS.findall(s.lower())) for s in sentences]
    keys = [k for k in keys if k.count(" ") >= 2]
    if not keys:
        return {"penalty": 0.0, "repeated": 0}
    repeated = len(keys) - len(set(keys))
    most = Counter(keys).most_common(1)[0]
    return {
        "penalty": _clip(2 * repeated / len(keys)),
        "repeated": repeated,
        "sentences": len(keys),
        "most_repeated": most[0][:120] if most[1] > 1 else "",
    }


def _is_symbol(char: str) -> bool:
    """Emoji and other pictographs, including their joiners, variation selectors and skin-tone modifiers."""
    if char in "\u200d\ufe0e\ufe0f" or "\U0001f000" <= char <= "\U0001faff":
        return True
    return unicodedata.category(char) in ("So", "Sk")


def check_truncation(text: str, words: list[str]) -> dict[str, Any]:
    """Whether the text stops mid-sentence, and the penalty."""
    stripped = text.rstrip()
    if len(words) < 4:
        return {"penalty": 0.0, "skipped": "under 4 words"}
    if _TAIL_TOKEN.search(stripped.rsplit(None, 1)[-1]) or _is_symbol(stripped[-1]) or stripped[-1] in _CLOSERS:
        return {"penalty": 0.0}  # a post closing with tags, a link, emoji, or a closing bracket or quote
    last_line = stripped.rsplit("\n", 1)[-1]
    last_word = words[-1].lower()
    if stripped[-1] in ",:;-–—" or (last_word in _DANGLING and stripped.endswith(words[-1])):
        return {"penalty": 0.5, "ending": stripped[-30:], "why": "ends on a dangling word or mark"}
    if stripped[-1] in _TERMINAL or _STRUCTURED_LINE.match(last_line) or not stripped[-1].isalnum():
        return {"penalty": 0.0}
    return {"penalty": 0.3, "ending": stripped[-30:], "why": "no terminal punctuation"}


def check_encoding(text: str) -> dict[str, Any]:
    """Counts of replacement characters, mojibake and control characters, and the penalty."""
    counts = {
        "replacement": text.count("\ufffd"),
        "mojibake": len(_MOJIBAKE.findall(text)),
        "control": len(_CONTROL.findall(text)),
    }
    return {"penalty": _clip(0.25 * sum(counts.values())), **counts}


@functools.cache
def _factory() -> Any:
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    return factory


def detect_language(text: str) -> tuple[str, float]:
    """The most likely language of ``text`` and its probability (langdetect, seed 0, first LANGUAGE_CHARS chars)."""
    from langdetect.lang_detect_exception import LangDetectException

    with _DETECTOR_LOCK:
        factory = _factory()
    detector = factory.create()
    detector.append(text[:LANGUAGE_CHARS])
    try:
        best = detector.get_probabilities()[0]
    except (LangDetectException, IndexError):
        return "unknown", 0.0
    return best.lang, float(best.prob)


def expected_language(sample: Sample, default: str | None = None) -> str | None:
    """The language the output should be in: sample inputs, then metadata, then ``default``; as a code."""
    sources: list[Mapping[str, Any]] = [sample.inputs, sample.metadata]
    raw = next((str(s[k]) for s in sources for k in ("language", "lang") if s.get(k)), default)
    if not raw:
        return None
    raw = raw.strip().lower()
    return _NAMES.get(raw, raw if raw.startswith("zh") else raw.split("-")[0].split("_")[0])


def check_language(text: str, words: list[str], expected: str | None) -> dict[str, Any]:
    """Whether the detected language is the expected one, and the penalty."""
    if not expected:
        return {"penalty": 0.0, "skipped": "no expected language"}
    if len(words) < 5:
        return {"penalty": 0.0, "skipped": "under 5 words", "expected": expected}
    found, prob = detect_language(text)
    same = found.split("-")[0] == expected.split("-")[0]
    penalty = 1.0 if not same and prob >= 0.8 else 0.0
    return {"penalty": penalty, "expected": expected, "detected": found, "probability": round(prob, 3)}


class DegenerationEvaluator:
    """Penalises repetition loops, repeated sentences, cut-off endings, encoding garbage and the wrong language."""

    name = "degeneration"
    version = "1"

    def __init__(self, threshold: float = 0.7, language: str | None = None) -> None:
        self.threshold = threshold
        self.language = language

    def score(self, sample: Sample) -> Score:
        """One sample's degeneration score (1.0 = no problem found)."""
        text = sample.output
        if not text.strip():
            return Score(
                self.name,
                0.0,
                passed=False,
                threshold=self.threshold,
                reason="empty output",
                details={"empty": True},
                evaluator_version=self.version,
            )
        words = _WORDS.findall(text.lower())
        checks = {
            "repeated_ngrams": check_ngrams(words),
            "repeated_sentences": check_sentences(split_sentences(text)),
            "truncated": check_truncation(text, words),
            "encoding": check_encoding(text),
            "language": check_language(text, words, expected_language(sample, self.language)),
        }
        value = 1.0
        for check in checks.values():
            value *= 1.0 - check["penalty"]
        problems = [f"{name} ({check['penalty']:.2f})" for name, check in checks.items() if check["penalty"] > 0]
        reason = "problems: " + ", ".join(problems) if problems else "no degeneration found"
        return Score(
            self.name,
            _clip(value),
            passed=value >= self.threshold,
            threshold=self.threshold,
            reason=reason,
            details=checks,
            evaluator_version=self.version,
        )
