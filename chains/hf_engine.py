"""A batched decoding loop over a transformers causal LM: the engine under the local chat model.

One forward pass serves every row of a batch (left padding, a shared KV cache, finished rows dropped from the
cache), while each row keeps its own sampling parameters, seed, stop strings, token budget and streaming
callback. ``model.generate`` cannot mix those per row, which is why this loop exists.

torch and transformers are imported here and only here (and in ``chains.testing.tiny_model``).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from chains.errors import ContextWindowExceeded, ModelUnavailable

if TYPE_CHECKING:
    from chains.constrained import Grammar, RowConstraint

__all__ = ["GenRequest", "GenResult", "HFEngine", "TokenLogprob", "quiet_transformers", "resolve_device"]

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class TokenLogprob:
    """Log probability of one generated token and the most likely alternatives at that step."""

    token: str
    logprob: float
    top_logprobs: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class GenRequest:
    """One row of a batch."""

    prompt_ids: list[int]
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: Sequence[str] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    on_text: Callable[[str, list[TokenLogprob]], None] | None = None
    dropped_prompt_tokens: int = 0
    grammar: Grammar | None = None  # the answer must match it (chains.constrained); None decodes freely


@dataclass(frozen=True)
class GenResult:
    """What one row produced."""

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[TokenLogprob] | None = None
    dropped_prompt_tokens: int = 0


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; an explicit CUDA request without CUDA fails."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailable(
            f"device {device!r} was asked for but CUDA is not available here; use device='auto' or 'cpu'"
        )
    return device


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Within the block, transformers and the hub show no progress bars and log errors only; then as before."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _resolve_dtype(dtype: str | None, device: str) -> torch.dtype | str:
    if dtype in (None, "auto"):
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return getattr(torch, dtype)
    except AttributeError:
        raise ModelUnavailable(f"unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16") from None


class HFEngine:
    """A loaded model and tokenizer plus the batched decoding loop."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.device = next(model.parameters()).device
        self.context_window = int(getattr(model.config, "max_position_embeddings", 0) or tokenizer.model_max_length)
        eos = model.generation_config.eos_token_id if model.generation_config else None
        eos = eos if eos is not None else tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(self.eos_ids))
        # Control tokens (role markers, padding, ...) other than end-of-sequence never belong in an answer.
        special = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special} | set(tokenizer.all_special_ids)
        self.suppress_ids = sorted(special - self.eos_ids)
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"  # transformers >= 5.x renamed it

    @classmethod
    def load(
        cls,
        model_id: str,
        *,
        device: str = "auto",
        dtype: str | None = "auto",
        device_map: str | None = None,
        show_progress: bool = False,
    ) -> HFEngine:
        """Load a hub id or local folder with ``from_pretrained``; a missing offline model fails fast and clearly.
        The load is quiet (no progress bars, errors only from transformers' logging) unless ``show_progress``."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        target = resolve_device(device) if device_map is None else "cpu"
        kwargs: dict[str, Any] = {"dtype": _resolve_dtype(dtype, target)}
        if device_map is not None:
            kwargs["device_map"] = device_map
        try:
            with contextlib.nullcontext() if show_progress else quiet_transformers():
                tokenizer = AutoTokenizer.from_pretrained(model_id, padding_side="left")
                model = AutoModelForCausalLM.from_pretrained(model_id, **kwargs)
        except (OSError, ValueError) as exc:  # missing files, or a folder without a usable tokenizer/config
            raise _unavailable(model_id, exc) from exc
        if device_map is None:
            model = model.to(target)
        if tokenizer.chat_template is None:
            raise ModelUnavailable(
                f"hf:{model_id} has no chat template; use an instruction-tuned model or add "
                f"chat_template.jinja to its folder",
                model=f"hf:{model_id}",
            )
        return cls(model, tokenizer, name=model_id)

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of a conversation formatted by the tokenizer's chat template, ready for the answer."""
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)

    def fit(
        self, prompt_ids: list[int], max_tokens: int, policy: str = "error", *, conversation: bool = False
    ) -> list[int]:
        """Check ``prompt + max_tokens`` against the context window; ``policy='truncate_left'`` drops old tokens.
        ``conversation``: the prompt has earlier turns, so the error may suggest dropping them."""
        room = self.context_window - max_tokens
        if len(prompt_ids) <= room:
            return prompt_ids
        if policy == "truncate_left" and room > 0:
            return prompt_ids[-room:]
        raise ContextWindowExceeded(
            f"hf:{self.name}: the prompt has {len(prompt_ids)} tokens and max_tokens is {max_tokens}, but the "
            f"context window is {self.context_window}; {self._what_fits(len(prompt_ids), max_tokens, conversation)}",
            model=f"hf:{self.name}",
        )

    def _what_fits(self, prompt_tokens: int, max_tokens: int, conversation: bool) -> str:
        """The advice of a ContextWindowExceeded error: the change that would make this call fit."""
        window, over = self.context_window, prompt_tokens + max_tokens - self.context_window
        if prompt_tokens < window:
            advice = f"it fits with max_tokens <= {window - prompt_tokens} (aigc generate --max-tokens), or a prompt "
            advice += f"shorter by {over} tokens"
        else:
            advice = f"the prompt alone is over the window: shorten it by at least {prompt_tokens - window + 1} tokens "
            advice += "plus the room the answer needs, or use a model with a larger window"
        if conversation and window > max_tokens:  # dropping old turns keeps the newest question and the system rules
            advice += "; for a long conversation, context_overflow='truncate_left' drops the oldest tokens"
        return advice

    @torch.inference_mode()
    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Decode every request in one batch; each row stops on its own EOS, stop string or token budget."""
        rows = [_Row(r, self) for r in requests]
        input_ids, attention = self._left_pad([r.prompt_ids for r in requests])
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True)
        cache, logits = _cache_of(out), out.logits[:, -1, :]
        last_pos = positions[:, -1]
        active = list(range(len(rows)))
        while True:
            tokens = self._choose([rows[i] for i in active], logits)
            keep = [k for k, i in enumerate(active) if not rows[i].push(tokens[k])]
            if not keep:
                break
            next_ids = torch.tensor([[tokens[k]] for k in keep], device=self.device)
            if len(keep) < len(active):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                attention, last_pos = attention[index], last_pos[index]
                active = [active[k] for k in keep]
            attention = torch.cat([attention, attention.new_ones((len(active), 1))], dim=1)
            last_pos = last_pos + 1
            out = self.model(
                input_ids=next_ids,
                attention_mask=attention,
                position_ids=last_pos[:, None],
                use_cache=True,
                **{self._cache_arg: cache},
            )
            cache, logits = _cache_of(out), out.logits[:, -1, :]
        return [row.result() for row in rows]

    def _left_pad(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _choose(self, rows: list[_Row], logits: torch.Tensor) -> list[int]:
        """Pick each row's next token (greedy or seeded top-p sampling) and record logprobs where asked."""
        logits = logits.float()
        if self.suppress_ids:
            logits[:, self.suppress_ids] = -math.inf
        for k, row in enumerate(rows):
            if row.constraint is not None:
                row.constraint.mask(logits[k])
        greedy = logits.argmax(dim=-1).tolist()
        want_logprobs = any(r.request.logprobs for r in rows)
        logprobs = torch.log_softmax(logits, dim=-1) if want_logprobs else None
        chosen = []
        for k, row in enumerate(rows):
            token = greedy[k] if row.request.temperature <= 0 else row.sample(logits[k])
            chosen.append(token)
            if logprobs is not None and row.request.logprobs:
                row.record_logprob(token, logprobs[k])
        return chosen

    def token_text(self, token_id: int) -> str:
        """The text of one token (for logprobs)."""
        return self.tokenizer.decode([token_id], skip_special_tokens=False)

    def unload(self) -> None:
        """Free the weights (and GPU memory)."""
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class _Row:
    """Decoding state of one request: generated ids, emitted text, stop handling, streaming."""

    def __init__(self, request: GenRequest, engine: HFEngine) -> None:
        self.request = request
        self.engine = engine
        self.ids: list[int] = []
        self.text = ""
        self.emitted = 0
        self.finish: FinishReason | None = None
        self.logprobs: list[TokenLogprob] = []
        self._pending_logprobs: list[TokenLogprob] = []
        self.generator = None
        self.constraint: RowConstraint | None = request.grammar.start() if request.grammar is not None else None
        if request.temperature > 0 and request.seed is not None:
            self.generator = torch.Generator(device=engine.device).manual_seed(request.seed)

    def sample(self, logits: torch.Tensor) -> int:
        probs = torch.softmax(logits / self.request.temperature, dim=-1)
        if self.request.top_p < 1.0:
            sorted_probs, order = probs.sort(descending=True)
            outside = sorted_probs.cumsum(-1) - sorted_probs > self.request.top_p
            sorted_probs[outside] = 0.0
            probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
        return int(torch.multinomial(probs, 1, generator=self.generator).item())

    def record_logprob(self, token: int, logprobs: torch.Tensor) -> None:
        top: list[tuple[str, float]] = []
        if self.request.top_logprobs:
            values, indices = logprobs.topk(self.request.top_logprobs)
            top = [(self.engine.token_text(int(i)), float(v)) for v, i in zip(values, indices, strict=True)]
        entry = TokenLogprob(self.engine.token_text(token), float(logprobs[token]), top)
        self.logprobs.append(entry)
        self._pending_logprobs.append(entry)

    def push(self, token: int) -> bool:
        """Add one token; return True when this row is finished."""
        if token in self.engine.eos_ids:
            self.finish = "stop"
            self._emit(len(self.text))
            return True
        self.ids.append(token)
        self.text = self.engine.tokenizer.decode(self.ids, skip_special_tokens=True)
        cut = self._stop_position()
        if cut is not None:
            self.text, self.finish = self.text[:cut], "stop"
        elif self.constraint is not None and (not self.constraint.advance(token) or self.constraint.is_done()):
            self.finish = "stop"  # the value is complete (or, never expected, the grammar refused the token)
        elif len(self.ids) >= self.request.max_tokens:
            self.finish = "length"
        if self.finish:
            self._emit(len(self.text))
            return True
        if not self.text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
            self._emit(len(self.text) - self._holdback())
        return False

    def _stop_position(self) -> int | None:
        if not self.request.stop:
            return None
        longest = max(len(s) for s in self.request.stop)
        start = max(0, self.emitted - longest)
        hits = [i for s in self.request.stop if s and (i := self.text.find(s, start)) >= 0]
        return min(hits) if hits else None

    def _holdback(self) -> int:
        """Characters at the end that could start a stop string: not streamed until resolved."""
        for size in range(min(len(self.text), max((len(s) for s in self.request.stop), default=0)), 0, -1):
            tail = self.text[-size:]
            if any(s.startswith(tail) for s in self.request.stop):
                return size
        return 0

    def _emit(self, upto: int) -> None:
        if upto > self.emitted or (self.finish and self._pending_logprobs):
            delta = self.text[self.emitted : upto]
            self.emitted = max(self.emitted, upto)
            if self.request.on_text is not None and (delta or self._pending_logprobs):
                self.request.on_text(delta, self._pending_logprobs)
            self._pending_logprobs = []

    def result(self) -> GenResult:
        return GenResult(
            text=self.text,
            finish_reason=self.finish or "length",
            prompt_tokens=len(self.request.prompt_ids),
            completion_tokens=len(self.ids),
            logprobs=self.logprobs if self.request.logprobs else None,
            dropped_prompt_tokens=self.request.dropped_prompt_tokens,
        )


def _cache_of(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _unavailable(model_id: str, exc: Exception) -> ModelUnavailable:
    from huggingface_hub.constants import HF_HUB_CACHE

    if os.path.isdir(model_id):
        hint = f"the folder exists but does not hold a loadable model ({exc})"
    else:
        hint = (
            f"it is not a local folder and not in the Hugging Face cache at {HF_HUB_CACHE} (offline mode: "
            f"{os.environ.get('HF_HUB_OFFLINE', '0')}). Download it where you have a network "
            f"(huggingface-cli download {model_id}) or pass a local path: hf:/path/to/model"
        )
    return ModelUnavailable(f"hf:{model_id} cannot be loaded: {hint}", model=f"hf:{model_id}")
