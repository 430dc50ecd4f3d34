"""Text helpers shared by the safety evaluators: data files, strings inside inputs, obfuscation-aware tokens."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = [
    "DATA_PACKAGE",
    "canonical",
    "collect_strings",
    "json_lines",
    "load_json",
    "normal_tokens",
    "token_variants",
    "word_spans",
]

DATA_PACKAGE = "evaluators.safety.data"

# Look-alike characters used to dodge filters: sh1t, b!tch, @ss, $hit, f0ck.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
# A token may hide letters behind *, #, . or - (f*ck, f**k, s.h.i.t, b-i-t-c-h); bounded so it never backtracks.
_TOKEN = re.compile(r"[\w@$!*#]{1,60}(?:[.\-_][\w@$!*#]{1,60}){0,30}")
_SEPARATORS = re.compile(r"[.\-_]")
_RUN3 = re.compile(r"(\w)\1{2,}")
_WORD = re.compile(r"\w+")


@cache
def load_json(name: str) -> Any:
    """A JSON file from ``evaluators/safety/data`` (read once; callers must treat the result as read-only)."""
    return json.loads(files(DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8"))


def json_lines(data: Mapping[str, Any]) -> str:
    """``data`` as a JSON object with one top-level key a line (weights files: short diffs, no line per number)."""
    lines = [
        f" {json.dumps(key, ensure_ascii=False)}: {json.dumps(value, ensure_ascii=False)}"
        for key, value in data.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def collect_strings(value: Any) -> Iterator[str]:
    """Every string inside ``value``: itself, or the strings in its mapping values and sequence items."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", errors="replace")
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from collect_strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from collect_strings(item)


def canonical(raw: str) -> str:
    """A raw token lower-cased, with separators dropped and look-alike characters undone (``Sh.1t`` -> ``shit``)."""
    return _SEPARATORS.sub("", raw.lower().strip("!.*#-_")).translate(_LEET)


def token_variants(raw: str) -> set[str]:
    """The forms a raw token may stand for: its canonical form with letter runs of 3+ kept, squeezed to 1 or 2."""
    token = canonical(raw)
    if not token:
        return set()
    if not _RUN3.search(token):
        return {token}
    return {token, _RUN3.sub(r"\1", token), _RUN3.sub(r"\1\1", token)}


def normal_tokens(text: str) -> list[tuple[str, int, int]]:
    """``(raw token, start, end)`` for each token of ``text``, with obfuscation characters kept inside the token."""
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """``(lowercased word, start, end)`` for each run of word characters."""
    return [(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(text)]
