"""Per-row KV storage and attention for the batched decoding loop of :mod:`chains.hf_engine`.

Why it exists: a row's answer must not depend on what else is in its batch. With the usual left padding it does, in
bf16: a padded row's keys sit at another offset of the key axis than alone, and attention kernels sum over keys in
an order that depends on that offset, so a batched answer drifts from the same call alone after a few dozen tokens.
Here instead

- each row's keys live from index 0 of its own row of the cache (a *slot*), never behind padding;
- every decoding step attends over a key axis whose length is a multiple of :data:`ALIGN`, the row's own keys first
  and masked zeros after them (a zero adds nothing, whatever sits beyond it);
- new prompts are packed into one sequence (no padding at all) and each prompt is attended on its own;
- no forward pass has a single row: the single-row projection kernel (gemv) rounds differently from the batched
  one, so a lone row is decoded beside a throwaway copy of itself (see ``HFEngine``).

Finished rows free their slot (the last row moves into it), and new rows join between steps. torch and transformers
are imported here only by :mod:`chains.hf_engine`, lazily.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["ALIGN", "ATTENTION", "Plan", "SlotCache", "slots_supported", "use_slot_attention"]

ALIGN = 64  # the key axis of every step is a multiple of this
ATTENTION = "aigc_slots"  # the attention implementation's name in transformers' registry


@dataclass(frozen=True)
class Plan:
    """What one forward pass does with the cache: a packed prefill (``spans``) or one decoding step (``mask``)."""

    spans: tuple[tuple[int, int, int], ...] = ()  # prefill: (slot, start in the packed sequence, length) per prompt
    mask: torch.Tensor | None = None  # decoding: (rows, 1, 1, keys) bool, True where a row may attend
    positions: torch.Tensor | None = None  # decoding: the slot index each row's new token is written to


def slots_supported(model: Any) -> bool:
    """Whether the model routes attention through transformers' pluggable interface with plain causal attention
    over one KV cache (Llama, Qwen2, SmolLM, Phi-3 without a window, ...); others use the padded loop."""
    config = model.config
    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    windowed = getattr(config, "sliding_window", None) is not None and getattr(config, "use_sliding_window", True)
    params = inspect.signature(model.forward).parameters
    return (
        bool(getattr(model, "_supports_attention_backend", False))
        and not getattr(config, "is_encoder_decoder", False)
        and layer_types == {"full_attention"}
        and not windowed
        and not getattr(config, "attn_logit_softcapping", None)
        and "logits_to_keep" in params
        and ("cache" in params or "past_key_values" in params)
    )


def use_slot_attention(model: Any) -> None:
    """Switch ``model`` to slot attention. Outside the engine's own calls (no plan given) it is plain SDPA, so
    ``model.generate`` still works on the same weights."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, _slot_attention)  # idempotent: the same function under the same name
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    model.set_attn_implementation(ATTENTION)


def _slot_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    aigc_plan: Plan | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    if aigc_plan is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    gqa = query.shape[1] != key.shape[1]
    if aigc_plan.spans:
        out = torch.zeros_like(query)  # (1, heads, packed, dim); a token outside every span stays zero
        for _, start, length in aigc_plan.spans:
            part = slice(start, start + length)
            out[:, :, part] = F.scaled_dot_product_attention(
                query[:, :, part], key[:, :, part], value[:, :, part], is_causal=True, scale=scaling, enable_gqa=gqa
            )
    else:
        mask = aigc_plan.mask.to(query.device)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling, enable_gqa=gqa)
    return out.transpose(1, 2).contiguous(), None


class SlotCache:
    """Keys and values per layer as (slots, heads, capacity, dim) buffers; slot ``s`` holds one row from index 0.

    The engine sets :attr:`plan` before each forward pass; the model calls :meth:`update` once per layer.
    """

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.plan = Plan()
        self.width = 0  # keys each row attends over in the current step
        self._slots = 2  # capacity wanted by the next forward pass
        self._tokens = ALIGN

    def reserve(self, slots: int, tokens: int) -> None:
        """Make room (lazily, layer by layer) for ``slots`` rows of ``tokens`` keys each; capacity only grows."""
        self._slots = max(self._slots, slots, 2)
        self._tokens = max(self._tokens, _aligned(tokens))

    def decode_plan(self, lengths: list[int], device: torch.device) -> Plan:
        """One step: row ``r`` (slot ``r``) has ``lengths[r]`` keys and writes its new one at that index."""
        positions = torch.tensor(lengths, device=device)
        self.width = _aligned(max(lengths) + 1)
        self.reserve(len(lengths), self.width)
        mask = torch.arange(self.width, device=device)[None, :] <= positions[:, None]
        return Plan(mask=mask[:, None, None, :], positions=positions)

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this pass's keys and values; return what the layer attends over."""
        keys, values = self._layer(layer_idx, key_states, value_states)
        plan = self.plan
        if plan.spans:
            for slot, start, length in plan.spans:
                keys[slot, :, :length] = key_states[0, :, start : start + length]
                values[slot, :, :length] = value_states[0, :, start : start + length]
            return key_states, value_states  # packed prompts attend to themselves (see _slot_attention)
        rows = torch.arange(key_states.shape[0], device=keys.device)
        positions = plan.positions.to(keys.device)  # a no-op but on a model spread over devices
        keys[rows, :, positions] = key_states[:, :, 0]
        values[rows, :, positions] = value_states[:, :, 0]
        return keys[: len(rows), :, : self.width], values[: len(rows), :, : self.width]

    def move(self, source: int, target: int, length: int) -> None:
        """Copy slot ``source``'s first ``length`` keys into slot ``target`` (a finished row's slot)."""
        for keys, values in zip(self.keys, self.values, strict=True):
            keys[target, :, :length] = keys[source, :, :length]
            values[target, :, :length] = values[source, :, :length]

    def clear(self) -> None:
        """Free the buffers (no row left)."""
        self.keys, self.values = [], []
        self._slots, self._tokens = 2, ALIGN

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Longest row (transformers asks when no positions are given; the engine always gives them)."""
        return self.width

    def _layer(self, index: int, key_states: torch.Tensor, value_states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if index == len(self.keys):
            self.keys.append(_buffer(key_states, self._slots, self._tokens))
            self.values.append(_buffer(value_states, self._slots, self._tokens))
        keys, values = self.keys[index], self.values[index]
        if keys.shape[0] < self._slots or keys.shape[2] < self._tokens:
            slots, tokens = _more(keys.shape[0], self._slots), _aligned(_more(keys.shape[2], self._tokens))
            self.keys[index] = _grown(keys, slots, tokens)
            self.values[index] = _grown(values, slots, tokens)
        return self.keys[index], self.values[index]


def _more(have: int, want: int) -> int:
    """Capacity for ``want``: unchanged if it fits, else by half again at least (growth copies everything)."""
    return have if have >= want else max(want, have * 3 // 2)


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _buffer(like: torch.Tensor, slots: int, tokens: int) -> torch.Tensor:
    # Zeros, not empty: masked keys are multiplied by 0, and 0 * (a stale NaN bit pattern) would be NaN.
    return like.new_zeros((slots, like.shape[1], tokens, like.shape[3]))


def _grown(buffer: torch.Tensor, slots: int, tokens: int) -> torch.Tensor:
    grown = buffer.new_zeros((slots, buffer.shape[1], tokens, buffer.shape[3]))
    grown[: buffer.shape[0], :, : buffer.shape[2]] = buffer
    return grown
