"""Perplexity of an output under a causal language model (a local path or a hub id already in the cache).

Normalisation to 0..1 (higher is better)::

    value = clip(1 - ln(ppl) / ln(ppl_max), 0, 1)        # ppl_max defaults to 1000

so ppl 1 -> 1.0, ppl 31.6 -> 0.5, ppl >= ppl_max -> 0.0; a sample passes when value >= threshold (default 0.5).

Only the output's tokens are scored: the sequence is ``[BOS] + prompt tokens (when conditioned) + output tokens``
and the loss of every position before the first output token is masked out. Batches are right-padded with an
attention mask, so a padded row computes exactly what it would alone (causal attention never sees later pads).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluators.base import Sample, Score
from evaluators.fluency.text import truncate

__all__ = ["PerplexityEvaluator", "normalise_perplexity"]

_LOAD_LOCK = threading.Lock()


def normalise_perplexity(ppl: float, ppl_max: float = 1000.0) -> float:
    """``clip(1 - ln(ppl) / ln(ppl_max), 0, 1)``: 1.0 for a perfectly predicted text, 0.0 at ``ppl_max`` or worse."""
    if not math.isfinite(ppl):
        return 0.0
    return min(1.0, max(0.0, 1.0 - math.log(max(ppl, 1.0)) / math.log(ppl_max)))


@functools.cache
def _load(model: str, device: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chains.hf_engine import quiet_transformers

    with quiet_transformers():  # no weights progress bar while a suite scores
        tokenizer = AutoTokenizer.from_pretrained(model)
        dtype = "auto" if device.startswith("cuda") else "float32"  # as chains does: fp32 is the faster on CPU
        lm = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(device).eval()
    return tokenizer, lm


def load_lm(model: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """Tokenizer and model, loaded once per process and shared (inference only, so safe across threads)."""
    with _LOAD_LOCK:
        return _load(str(model), device)


class PerplexityEvaluator:
    """Scores how predictable an output is to a causal LM (lower perplexity reads as more fluent)."""

    name = "perplexity"
    version = "1"

    def __init__(
        self,
        model: str | Path,
        *,
        condition_on_prompt: bool = False,
        ppl_max: float = 1000.0,
        threshold: float = 0.5,
        batch_size: int = 8,
        max_tokens: int = 512,
        max_prompt_tokens: int = 256,
        device: str = "cpu",
    ) -> None:
        if ppl_max <= 1.0:
            raise ValueError("ppl_max must be above 1")
        self.model, self.device = str(model), device
        self.condition_on_prompt, self.ppl_max, self.threshold = condition_on_prompt, ppl_max, threshold
        self.batch_size, self.max_tokens, self.max_prompt_tokens = batch_size, max_tokens, max_prompt_tokens

    def score(self, sample: Sample) -> Score:
        """One sample's perplexity score."""
        return self.score_batch([sample])[0]

    def score_batch(self, samples: Sequence[Sample]) -> list[Score]:
        """All samples, in length-sorted padded batches."""
        tokenizer, lm = load_lm(self.model, self.device)
        rows = [self._ids(tokenizer, s) for s in samples]
        nll: list[tuple[float, int]] = [(0.0, 0)] * len(rows)
        order = sorted((i for i, r in enumerate(rows) if r[1]), key=lambda i: len(rows[i][0]) + len(rows[i][1]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for i, result in zip(chunk, self._nll(lm, [rows[i] for i in chunk], tokenizer), strict=True):
                nll[i] = result
        return [self._score(total, count) for total, count in nll]

    def _ids(self, tokenizer: Any, sample: Sample) -> tuple[list[int], list[int]]:
        """(context ids, output ids): BOS and, when conditioned, the prompt's last tokens; the output's first."""
        if not sample.output.strip():
            return [], []
        output = tokenizer.encode(truncate(sample.output), add_special_tokens=False)[: self.max_tokens]
        context = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        if self.condition_on_prompt and sample.prompt_text:
            prompt = tokenizer.encode(truncate(sample.prompt_text), add_special_tokens=False)
            context += prompt[-self.max_prompt_tokens :]
        if not context and output:  # no BOS: the first output token has nothing to be predicted from
            context, output = output[:1], output[1:]
        return context, output

    def _nll(self, lm: Any, rows: list[tuple[list[int], list[int]]], tokenizer: Any) -> list[tuple[float, int]]:
        """Summed negative log-likelihood of the output tokens and their count, for each row of one batch."""
        import torch

        width = max(len(c) + len(o) for c, o in rows)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        target = torch.zeros((len(rows), width), dtype=torch.bool)
        for r, (context, output) in enumerate(rows):
            ids[r, : len(context) + len(output)] = torch.tensor(context + output)
            attention[r, : len(context) + len(output)] = 1
            target[r, len(context) : len(context) + len(output)] = True
        with torch.inference_mode():
            logits = lm(input_ids=ids.to(lm.device), attention_mask=attention.to(lm.device)).logits.float().cpu()
        losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
        mask = target[:, 1:]
        totals = (losses * mask).sum(dim=1)
        return [(float(t), int(n)) for t, n in zip(totals, mask.sum(dim=1), strict=True)]

    def _score(self, total: float, count: int) -> Score:
        if count == 0:
            return Score(
                self.name,
                0.0,
                passed=False,
                threshold=self.threshold,
                reason="empty output",
                details={"tokens": 0},
                evaluator_version=self.version,
            )
        ppl = math.exp(min(total / count, 700.0))
        value = normalise_perplexity(ppl, self.ppl_max)
        return Score(
            self.name,
            value,
            passed=value >= self.threshold,
            threshold=self.threshold,
            reason=f"perplexity {ppl:.1f} over {count} tokens",
            details={
                "perplexity": ppl,
                "tokens": count,
                "mean_nll": total / count,
                "model": self.model,
                "conditioned_on_prompt": self.condition_on_prompt,
            },
            evaluator_version=self.version,
        )
