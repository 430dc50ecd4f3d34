"""Unigram log-probabilities over a tokenizer's vocabulary, for SLOR: built once from word frequencies, shipped.

A table is built by spreading each word's frequency over the pieces the tokenizer cuts it into, in the forms the
word takes in running text (``FORMS``: " word" 90 %, " Word" 5 %, "Word" 5 %, the last at the start of a text or a
line), adding punctuation at fixed rates (word lists leave it out), and giving every piece a floor
(``FLOOR`` of the total mass) so that no piece has probability zero. The shipped table for SmolLM2 comes from
wordfreq's English "large" list, top 100,000 words (``python -m evaluators.fluency.build_unigram``; see
``SLOR.md``). A table records a hash of the vocabulary it was built for, and refuses any other tokenizer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluators.errors import EvaluatorError

__all__ = ["FLOOR", "FORMS", "PUNCTUATION", "UnigramTable", "build_table", "load_table", "vocab_hash"]

FORMS = ((" {w}", 0.90), (" {W}", 0.05), ("{W}", 0.05))
"""How a word's frequency is shared between its surface forms ({w}: as listed, lower case; {W}: capitalised)."""
PUNCTUATION = {".": 0.05, ",": 0.05, '"': 0.005, "'s": 0.005, "?": 0.003}
"""Punctuation added as shares of the words' total mass (about one full stop and one comma per 20 words)."""
FLOOR = 1e-7
"""Mass every vocabulary piece gets, as a share of the total, before normalising."""
_LOCK = threading.Lock()


def vocab_hash(tokenizer: Any) -> str:
    """A short sha256 of the tokenizer's vocabulary (piece -> id), to tell whether a table fits a tokenizer."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()[:16]


def _width(tokenizer: Any) -> int:
    return max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)


def build_table(tokenizer: Any, words: Iterable[tuple[str, float]], **meta: Any) -> tuple[np.ndarray, dict]:
    """Log-probabilities (float32, one per vocabulary id) from ``(word, frequency)`` pairs, and their metadata."""
    counts = np.zeros(_width(tokenizer), dtype=np.float64)
    cache: dict[str, list[int]] = {}

    def pieces(text: str) -> list[int]:
        if text not in cache:
            cache[text] = tokenizer.encode(text, add_special_tokens=False)
        return cache[text]

    for word, frequency in words:
        for form, share in FORMS:
            np.add.at(counts, pieces(form.format(w=word, W=word[:1].upper() + word[1:])), frequency * share)
    total = counts.sum()
    if total <= 0:
        raise ValueError("no word frequencies to build a unigram table from")
    for mark, share in PUNCTUATION.items():
        np.add.at(counts, pieces(mark), total * share)
    counts += counts.sum() * FLOOR
    logp = np.log(counts / counts.sum()).astype(np.float32)
    info = {"vocab_hash": vocab_hash(tokenizer), "vocab_size": int(counts.size), "forms": FORMS, "floor": FLOOR}
    return logp, {**info, "punctuation": PUNCTUATION, **meta}


def save_table(path: Path, logp: np.ndarray, meta: dict[str, Any]) -> None:
    """Write a table as an ``.npz`` with no pickled objects (``logp`` and ``meta`` as JSON)."""
    np.savez_compressed(path, logp=logp.astype(np.float32), meta=np.array(json.dumps(meta)))


@dataclass(frozen=True)
class UnigramTable:
    """A loaded table: log P_unigram per vocabulary id, and how it was built."""

    logp: np.ndarray
    meta: dict[str, Any]

    def check(self, tokenizer: Any, where: str) -> None:
        """Raise EvaluatorError unless the table was built for this tokenizer's vocabulary."""
        if self.meta.get("vocab_hash") != vocab_hash(tokenizer):
            raise EvaluatorError(
                f"the unigram table {where} was built for another tokenizer (vocabulary {self.meta.get('vocab_hash')}"
                f", this model's is {vocab_hash(tokenizer)}); build one for this model with "
                f"`python -m evaluators.fluency.build_unigram --model MODEL --out TABLE.npz` and pass unigram=TABLE.npz"
            )


@functools.cache
def _read(path: Path) -> UnigramTable:
    with np.load(path, allow_pickle=False) as archive:
        return UnigramTable(archive["logp"].astype(np.float32), json.loads(str(archive["meta"])))


def load_table(path: str | Path) -> UnigramTable:
    """The table at ``path``, read once per process and shared."""
    path = Path(path).resolve()
    if not path.is_file():
        raise EvaluatorError(f"unigram table not found: {path}")
    with _LOCK:
        return _read(path)
