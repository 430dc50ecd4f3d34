"""SLOR: how much more likely a causal LM finds a text than its words' frequencies alone would make it.

    SLOR(text) = (log P_LM(text) - log P_unigram(text)) / tokens

(Pauls and Klein 2012; Lau et al. 2017; Kann et al. 2018). Subtracting the unigram term takes word rarity out of
the LM's judgement, so "The aardvark slept." is not punished for "aardvark". P_LM is read with the sequence
``[<|endoftext|>] + text tokens`` (the model's document separator; the tokenizer's BOS when it has none), every
text token scored; batches are right-padded with an attention mask, as ``perplexity.py`` does, so a row computes
what it would alone. P_unigram is the shipped table (``unigram.py``, built from wordfreq, see ``SLOR.md``).

``value`` is P(acceptable) from a one-feature logistic regression on CoLA's shared in-domain half, and a sample
passes at the threshold that maximised MCC there (``data/slor_smollm2.json``, written by ``fit_slor.py``; its
cross-validated figures are in ``CALIBRATION.md``). Those numbers hold for the model they were fitted with; for
another model pass ``unigram=`` (a table for its tokenizer) and expect to fit your own ``slope/intercept/threshold``.

With no model given, the cached SmolLM2 is used; when it is not in the cache, every Score is *not applicable*
(neither pass nor fail) and says how to install it, so a suite falls back on its other fluency checks.
"""

from __future__ import annotations

import bisect
import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluators.base import Sample, Score
from evaluators.errors import EvaluatorError
from evaluators.fluency.text import split_sentences, truncate

__all__ = ["DEFAULT_MODEL", "SlorEvaluator", "SlorResult", "calibration_path", "resolve_model"]

DEFAULT_MODEL = "smollm2-135m-instruct"
_DATA = Path(__file__).with_name("data")
_PULL_HINT = "run `aigc models pull smollm2` (or give model=PATH)"


def calibration_path() -> Path:
    """Where the shipped CoLA calibration of SLOR under SmolLM2 lives."""
    return _DATA / "slor_smollm2.json"


@functools.cache
def _calibration() -> dict[str, Any]:
    path = calibration_path()
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def resolve_model(model: str | Path | None) -> Path | str | None:
    """A model folder or hub id: a known name or alias ("smollm2") means its cached folder; None the default's
    folder, or None when it is not cached."""
    from chains.model_store import cached_path, known

    if model is None:
        return cached_path(DEFAULT_MODEL)
    if known(str(model)) is not None:
        found = cached_path(str(model))
        if found is None:
            raise EvaluatorError(f"model {model!r} is not in the model cache: {_PULL_HINT}")
        return found
    return model


@dataclass(frozen=True)
class SlorResult:
    """Per-token log-probabilities of one text under the LM and the unigram table, and its sentence spans."""

    lm: np.ndarray  # log P_LM of each scored token
    unigram: np.ndarray  # log P_unigram of the same tokens
    sentences: tuple[tuple[str, int, int], ...] = ()  # (sentence, first token, end token)

    @property
    def tokens(self) -> int:
        """How many tokens were scored."""
        return int(self.lm.size)

    @property
    def slor(self) -> float:
        """(log P_LM - log P_unigram) / tokens; NaN for no tokens."""
        return float((self.lm - self.unigram).mean()) if self.tokens else math.nan

    def sentence_scores(self) -> list[tuple[str, float]]:
        """Each scored sentence with its SLOR (its tokens read in the context of the text before it); sentences
        past the token limit are left out."""
        diff = self.lm - self.unigram
        return [(sentence, float(diff[a:b].mean())) for sentence, a, b in self.sentences if b > a]

    def sentence_slors(self) -> list[float]:
        """SLOR of each scored sentence."""
        return [slor for _, slor in self.sentence_scores()]


class SlorEvaluator:
    """Scores fluency as SLOR under a small local causal LM (default: the cached SmolLM2-135M-Instruct)."""

    name = "slor"
    version = "1"

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        unigram: str | Path | None = None,
        slope: float | None = None,
        intercept: float | None = None,
        threshold: float | None = None,
        batch_size: int = 16,
        batch_tokens: int = 4096,
        max_tokens: int = 512,
        device: str = "cpu",
    ) -> None:
        calibration = _calibration()
        self.model = resolve_model(model)
        self.unigram_path = Path(unigram) if unigram else _DATA / calibration.get("unigram", "unigram_smollm2.npz")
        self.slope = float(slope if slope is not None else calibration.get("slope", 1.0))
        self.intercept = float(intercept if intercept is not None else calibration.get("intercept", 0.0))
        self.threshold = float(threshold if threshold is not None else calibration.get("threshold", 0.5))
        self.batch_size, self.batch_tokens, self.max_tokens = batch_size, batch_tokens, max_tokens
        self.device = device

    def score(self, sample: Sample) -> Score:
        """One sample's SLOR score."""
        return self.score_batch([sample])[0]

    def score_batch(self, samples: Sequence[Sample]) -> list[Score]:
        """All samples, in length-sorted padded batches."""
        if self.model is None:
            why = f"the SLOR model {DEFAULT_MODEL} is not in the model cache: {_PULL_HINT}"
            return [Score.not_applicable(self.name, why, self.version, model=DEFAULT_MODEL) for _ in samples]
        return [self._score(result) for result in self.results([s.output for s in samples])]

    def results(self, texts: Sequence[str]) -> list[SlorResult]:
        """Token-level log-probabilities of each text (the raw material of SLOR and of ``fluency_long``)."""
        from evaluators.fluency.perplexity import load_lm

        if self.model is None:
            raise EvaluatorError(f"no SLOR model: {_PULL_HINT}")
        tokenizer, lm = load_lm(self.model, self.device)
        table = _table(self.unigram_path, tokenizer)
        context = _context_id(tokenizer)
        encoded = [self._encode(tokenizer, text) for text in texts]
        lm_lps: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(texts)
        order = sorted((i for i, e in enumerate(encoded) if e[0]), key=lambda i: len(encoded[i][0]))
        for chunk in _batches(order, [len(e[0]) + 1 for e in encoded], self.batch_size, self.batch_tokens):
            rows = [[context, *encoded[i][0]] if context is not None else encoded[i][0] for i in chunk]
            for i, lps in zip(chunk, token_logprobs(lm, rows, tokenizer), strict=True):
                lm_lps[i] = lps
        out = []
        for (ids, sentences), lps in zip(encoded, lm_lps, strict=True):
            if context is None:  # the first token was only context: ranges move one token down
                ids, sentences = ids[1:], tuple((t, max(a - 1, 0), max(b - 1, 0)) for t, a, b in sentences)
            out.append(SlorResult(lps, table[np.asarray(ids, dtype=np.int64)], sentences))
        return out

    def _encode(self, tokenizer: Any, text: str) -> tuple[list[int], tuple[tuple[str, int, int], ...]]:
        """Token ids of the text (at most ``max_tokens``) and each sentence's token range."""
        text = truncate(text)
        if not text.strip():
            return [], ()
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = encoding["input_ids"][: self.max_tokens], encoding["offset_mapping"][: self.max_tokens]
        return ids, _sentence_ranges(text, [start for start, _ in offsets])

    def p_acceptable(self, slor: float) -> float:
        """The value of a SLOR: P(acceptable) under the logistic map (fitted on CoLA for the shipped model)."""
        return 1.0 / (1.0 + math.exp(-min(60.0, max(-60.0, self.slope * slor + self.intercept))))

    def _score(self, result: SlorResult) -> Score:
        if result.tokens == 0:
            return Score(self.name, 0.0, False, self.threshold, "empty output", {"tokens": 0}, self.version)
        slor = result.slor
        value = self.p_acceptable(slor)
        sentences = result.sentence_scores()
        details: dict[str, Any] = {"slor": slor, "tokens": result.tokens, "model": str(self.model)}
        if len(sentences) > 1:
            worst, worst_slor = min(sentences, key=lambda pair: pair[1])
            details.update(sentences=len(sentences), worst_sentence_slor=worst_slor, worst_sentence=worst[:200])
        reason = f"SLOR {slor:.2f} over {result.tokens} tokens, P(acceptable) {value:.2f}"
        return Score(self.name, value, value >= self.threshold, self.threshold, reason, details, self.version)


def _batches(order: list[int], lengths: list[int], size: int, tokens: int) -> list[list[int]]:
    """Consecutive runs of ``order`` (sorted by length) with at most ``size`` rows and ``tokens`` padded tokens
    (the logits of a batch take rows x width x vocabulary floats)."""
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < size and (len(batches[-1]) + 1) * lengths[i] <= tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _sentence_ranges(text: str, starts: list[int]) -> tuple[tuple[str, int, int], ...]:
    """Each sentence of ``text`` with the range of tokens (by start offset) that fall in it."""
    spans, position = [], 0
    for sentence in split_sentences(text):
        at = text.find(sentence, position)
        if at >= 0:
            spans.append((sentence, at, at + len(sentence)))
            position = at + len(sentence)
    if not spans:
        return ()
    ends = [end for _, _, end in spans]
    owner = [min(bisect.bisect_right(ends, start), len(spans) - 1) for start in starts]
    ranges = []
    for k, (sentence, _, _) in enumerate(spans):
        first = bisect.bisect_left(owner, k)
        ranges.append((sentence, first, bisect.bisect_right(owner, k)))
    return tuple(ranges)


def _context_id(tokenizer: Any) -> int | None:
    """The token a text is read after: the document separator ``<|endoftext|>`` when the vocabulary has one
    (GPT-2-style pretraining), else BOS; None when there is neither (then the first token is only context)."""
    separator = tokenizer.get_vocab().get("<|endoftext|>")
    return separator if separator is not None else tokenizer.bos_token_id


def _table(path: Path, tokenizer: Any) -> np.ndarray:
    from evaluators.fluency.unigram import load_table

    table = load_table(path)
    table.check(tokenizer, str(path))
    return table.logp


def token_logprobs(lm: Any, rows: list[list[int]], tokenizer: Any) -> list[np.ndarray]:
    """log P(token | the tokens before it) for every token but the first of each row, in one padded batch."""
    import torch

    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row)
        attention[r, : len(row)] = 1
    out = []
    with torch.inference_mode():
        logits = lm(input_ids=ids.to(lm.device), attention_mask=attention.to(lm.device)).logits
        for r, row in enumerate(rows):  # one row at a time in float32: a batch's worth would take gigabytes
            n = len(row) - 1
            logprobs = torch.log_softmax(logits[r, :n].float(), dim=-1).cpu()
            out.append(logprobs.gather(1, ids[r, 1 : n + 1, None])[:, 0].numpy().astype(np.float32))
    return out
