"""Text helpers shared by the fluency evaluators: a fast sentence splitter, word tokens and truncation.

The splitter is a regular expression rather than pysbd: pysbd handles ~220 outputs of 150 words a second on one
core, which alone would use the offline suite's whole time budget; this one handles ~60,000.
"""

from __future__ import annotations

import re

__all__ = ["MAX_MODEL_CHARS", "detokenize", "split_sentences", "truncate", "word_tokens"]

MAX_MODEL_CHARS = 20_000
"""Model-based scorers read at most this many characters of an output (about 3,000 words)."""

_ABBREVIATIONS = (
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "inc",
    "ltd",
    "co",
    "no",
    "fig",
    "approx",
    "dept",
    "est",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
)
_BOUNDARY = re.compile(
    r"(?:(?<=[.!?…])|(?<=[.!?…][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n+|\n(?=\s*[-*•#]|\s*\d+[.)]\s)"
)
_LOWERCASE_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[a-z0-9\"'(])")
_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]}'’]|n't)")
_NO_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def truncate(text: str, limit: int = MAX_MODEL_CHARS) -> str:
    """At most ``limit`` characters of ``text``, cut at a whitespace where one is near the limit."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", limit - 200, limit)
    return text[: cut if cut > 0 else limit]


def _ends_with_abbreviation(piece: str) -> bool:
    """Whether a piece ends with a known abbreviation or an initial ("J."), so the split there was wrong."""
    tail = piece.rstrip().rsplit(None, 1)[-1].lower().rstrip(".") if piece.strip() else ""
    return tail in _ABBREVIATIONS or (len(tail) == 1 and tail.isalpha())


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (also paragraph breaks and list items), stripped, empty pieces dropped. Linear time."""
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        piece = text[start : match.start()]
        if match.group(0).strip() or not _ends_with_abbreviation(piece):
            pieces.append(piece)
            start = match.end()
    pieces.append(text[start:])
    if not any(c.isupper() for c in text[:2000]):  # all-lowercase text ("it rained . we left ."): no capitals to see
        pieces = [part for piece in pieces for part in _LOWERCASE_BOUNDARY.split(piece)]
    return [p.strip() for p in pieces if p.strip()]


def word_tokens(sentence: str) -> list[str]:
    """Words (with inner apostrophes) and punctuation marks of a sentence."""
    return _WORD.findall(sentence)


def detokenize(tokens: list[str]) -> str:
    """Join word tokens back into text with ordinary spacing around punctuation."""
    text = _NO_SPACE_BEFORE.sub(r"\1", " ".join(tokens))
    return _NO_SPACE_AFTER.sub(r"\1", text)
