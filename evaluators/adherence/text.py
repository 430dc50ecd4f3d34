"""Text measurements the instruction checks share: sentences, words, tokens, syllables, reading grade.

The sentence splitter and the word counter reproduce what IFEval's reference checker counts (nltk's Punkt
sentence tokenizer, approximated without its trained tables, and a ``\\w+`` word tokenizer); :func:`word_tokens`
approximates nltk's ``word_tokenize`` closely enough for counting all-caps words. Every function here runs in time
linear in the length of the text.
"""

from __future__ import annotations

import itertools
import re

__all__ = [
    "count_sentences",
    "count_syllables",
    "count_words",
    "flesch_kincaid_grade",
    "normalise",
    "split_sentences",
    "word_tokens",
]

_Rule = tuple[re.Pattern[str], str]

# A Punkt-style sentence splitter (what IFEval's ``count_sentences`` uses through nltk), without Punkt's trained
# tables: the abbreviation list and the "is the next word a sentence starter" evidence are approximated below.
_NON_WORD = "[\u201d)\\\";}\\]*:@'({\\[!?]"
_CANDIDATE = re.compile(r"[.?!](?=" + _NON_WORD + r"|\s+(\S+))")
_TOKEN_START = re.compile(r"(?=" + _NON_WORD + ")")
_NOT_WORD_START = '("`{[:;&#*@)}]-,'
_NUMBER = re.compile(r"^-?[.,]?\d[\d,.-]*\.?$")
_INITIAL = re.compile(r"^[^\W\d]\.$")
_BOUNDARY_REALIGNMENT = re.compile(r"[\"')\]}]+?(?:\s+|(?=--)|$)")
_LOOKBACK = 200
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr inc ltd co corp vs etc e.g i.e u.s u.k a.m p.m jan feb mar apr jun jul "  # noqa: SIM905 - a word list
    "aug sep sept oct nov dec gen gov sen rep capt lt col sgt mt ft approx dept est fig no.s u.n n.y "
    "calif".split()
)
_COMMON_STARTERS = frozenset(
    "the a an this that these those it its i we you he she they there here in on at for but and or so if "  # noqa: SIM905 - a word list
    "when while as after before however also then our my your his her their what how why who".split()
)


def _period_token(chunk: str) -> str:
    """The Punkt word token that ends ``chunk`` (a whitespace-free run ending with a period)."""
    if chunk.endswith(".."):
        return "..."
    return _TOKEN_START.split(chunk)[-1].lstrip(_NOT_WORD_START) or "."


def _starts_sentence(next_token: str) -> bool | None:
    """Punkt's orthographic evidence, approximated: lowercase words and punctuation do not start sentences."""
    if not next_token or next_token[0] in ";:,.!?":
        return False
    if next_token[0].islower():
        return False
    if next_token[0].isupper() and next_token.lower().strip("\"'") in _COMMON_STARTERS:
        return True
    return None


def _is_break(text: str, match: re.Match[str]) -> bool:
    if match.group() != ".":
        return True
    chunk = text[max(0, match.start() - _LOOKBACK) : match.end()].split()[-1]
    token, following = _period_token(chunk), match.group(1) or ""
    kind = token[:-1].lower()
    starter = _starts_sentence(following)
    if token == "..." or kind in _ABBREVIATIONS or kind.split("-")[-1] in _ABBREVIATIONS:
        return starter is True
    if _INITIAL.match(token):
        return starter is not False and (starter is True or not following[:1].isupper())
    if _NUMBER.match(token):
        return starter is not False
    return True


def _candidates(text: str) -> list[re.Match[str]]:
    """Potential sentence ends, keeping only the last of several that touch (as in "?!")."""
    found = list(_CANDIDATE.finditer(text))
    kept = []
    for match, after in itertools.pairwise(found):
        if any(c.isspace() for c in text[match.end() : after.start()]):
            kept.append(match)
    return [*kept, found[-1]] if found else []


def _slices(text: str) -> list[tuple[int, int]]:
    slices, last = [], 0
    for match in _candidates(text):
        if _is_break(text, match):
            slices.append((last, match.end()))
            last = match.start(1) if match.group(1) else match.end()
    slices.append((last, len(text.rstrip())))
    return slices


def split_sentences(text: str) -> list[str]:
    """Sentences as Punkt (nltk's English sentence tokenizer, which IFEval counts with) would split them."""
    sentences, shift = [], 0
    slices = _slices(text)
    for (start, end), following in zip(slices, [*slices[1:], None], strict=True):
        start += shift
        shift = 0
        realign = _BOUNDARY_REALIGNMENT.match(text, following[0]) if following else None
        if realign:
            shift = realign.end() - following[0]
            sentences.append(text[start : following[0] + len(realign.group().rstrip())])
        elif start < end:
            sentences.append(text[start:end])
    return sentences


def count_sentences(text: str) -> int:
    """The number of sentences IFEval counts in ``text``."""
    return len(split_sentences(text))


_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    """The number of words IFEval counts: runs of word characters."""
    return sum(1 for _ in _WORD.finditer(text))


# nltk's Treebank-style tokenizer, reduced to the splits that change which tokens are all caps.
_TOKEN_RULES: tuple[_Rule, ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        ("([\u00ab\u201c\u2018\u201e\u00bb\u201d\u2019]|`+)", r" \1 "),
        ('"', " '' "),
        (r"([:,])([^\d])", r" \1 \2"),
        (r"([:,])$", r" \1 "),
        (r"\.{2,}", r" \g<0> "),
        (r"[;@#$%&?!\[\](){}<>]", r" \g<0> "),
        ("--", " -- "),
        (r"([^.\s])(\.)([\])}>\"']*)(?=\s|$)", r"\1 \2\3 "),
        (r"^|$", " "),
        (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"\1 \2 "),
        (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1 \2 "),
        (r"(?i) ('t)(is|was)\b", r" \1 \2 "),
    )
)


_CONTRACTIONS = re.compile(
    r"(?i)\b(?:(can)(not)|(d)('ye)|(gim|lem)(me)|(gon)(na)|(got)(ta)|(more)('n))\b|\b(wan)(na)(?=\s)"
)


def _split_contraction(match: re.Match[str]) -> str:
    return " " + " ".join(g for g in match.groups() if g) + " "


def word_tokens(text: str) -> list[str]:
    """Word and punctuation tokens, split the way nltk's ``word_tokenize`` splits English text."""
    for pattern, replacement in _TOKEN_RULES:
        text = pattern.sub(replacement, text)
    return _CONTRACTIONS.sub(_split_contraction, text).split()


_WHITESPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Case-folded text with every run of whitespace made one space, for lenient substring matching."""
    return _WHITESPACE.sub(" ", text).strip().casefold()


_ENGLISH_WORD = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)*")
_VOWEL_GROUP = re.compile(r"[aeiouy]+")


def count_syllables(word: str) -> int:
    """A heuristic syllable count for an English word: vowel groups, less a silent final e; at least one."""
    lowered = word.lower()
    groups = len(_VOWEL_GROUP.findall(lowered))
    if groups > 1 and lowered.endswith("e") and not lowered.endswith(("le", "ee", "ye")):
        groups -= 1
    if groups > 1 and lowered.endswith(("ed", "es")) and not lowered.endswith(("ted", "ded", "ses", "zes", "ces")):
        groups -= 1
    return max(1, groups)


def flesch_kincaid_grade(text: str) -> float | None:
    """The Flesch-Kincaid grade level of ``text``; None when it has no words."""
    words = _ENGLISH_WORD.findall(text)
    if not words:
        return None
    sentences = max(1, sum(1 for s in split_sentences(text) if _WORD.search(s)))
    syllables = sum(count_syllables(w) for w in words)
    return 0.39 * len(words) / sentences + 11.8 * syllables / len(words) - 15.59
