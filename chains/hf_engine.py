"""A batched decoding loop over a transformers causal LM: the engine under the local chat model.

One forward pass serves every row of a batch, while each row keeps its own sampling parameters, seed, stop strings,
token budget and streaming callback. ``model.generate`` cannot mix those per row, which is why this loop exists.

Two layouts. For models with plain causal attention (Llama, Qwen2, SmolLM, ...) rows live in slots of a
:class:`~chains.hf_slots.SlotCache`: rows join between decoding steps (continuous batching), finished rows leave
at once, and a row decodes the same tokens whatever else is in the batch (see :mod:`chains.hf_slots`). Other
models decode whole batches with left padding and transformers' own cache, finished rows dropped from it.

torch and transformers are imported here and only here (and in ``chains.hf_slots``, ``chains.testing.tiny_model``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from chains.errors import ContextWindowExceeded, ModelUnavailable
from chains.hf_slots import Plan, SlotCache, slots_supported, use_slot_attention

if TYPE_CHECKING:
    from chains.constrained import Grammar, RowConstraint

__all__ = [
    "GenRequest",
    "GenResult",
    "HFEngine",
    "PaddedDecoder",
    "SlotDecoder",
    "TokenLogprob",
    "quiet_transformers",
    "resolve_device",
]

FinishReason = Literal["stop", "length"]
Layout = Literal["auto", "slots", "padded"]
_NO_MASK = torch.ones((1, 1, 1, 1), dtype=torch.bool)  # a 4-D mask is used as given: transformers builds none


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


LOADING = threading.RLock()
"""Held while any model loads: ``from_pretrained`` builds weights on the meta device through process-wide state,
so two loads in two threads (an evaluator's model beside a chat model) can fail with 'Cannot copy out of meta
tensor'. Every loader of ours goes through :func:`quiet_transformers`, which holds it."""


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Within the block, transformers and the hub show no progress bars and log errors only; then as before.
    Loads in the block run one at a time across threads (:data:`LOADING`)."""
    from transformers.utils import logging as hf_logging

    with LOADING:
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

    def __init__(self, model: Any, tokenizer: Any, *, name: str, layout: Layout = "auto") -> None:
        """``layout``: ``slots`` (continuous batching, batch-independent answers; switches the model's attention
        to :func:`~chains.hf_slots.use_slot_attention`), ``padded`` (whole left-padded batches), or ``auto``:
        slots where the model supports them."""
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
        self._suppress = torch.tensor(self.suppress_ids, dtype=torch.long, device=self.device)
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"  # transformers >= 5.x renamed it
        if layout == "slots" and not slots_supported(model):
            raise ModelUnavailable(f"hf:{name}: this model's attention cannot use the slot layout; use 'padded'")
        self.layout: Layout = "padded" if layout == "padded" or not slots_supported(model) else "slots"
        if self.layout == "slots":
            use_slot_attention(model)

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
            with LOADING, contextlib.nullcontext() if show_progress else quiet_transformers():
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

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Decode every request together; each row stops on its own EOS, stop string or token budget."""
        results: list[Any] = [None] * len(requests)
        decoder = self.decoder()
        for i, request in enumerate(requests):
            decoder.add(request, functools.partial(results.__setitem__, i))
        while decoder.pending():
            decoder.step()
        return results

    def decoder(self) -> SlotDecoder | PaddedDecoder:
        """A decoding loop to feed requests to step by step (what :class:`~chains.batching.DynamicBatcher` drives);
        rows join a running decode only in the slot layout."""
        return SlotDecoder(self) if self.layout == "slots" else PaddedDecoder(self)

    def _forward(self, ids: list[list[int]], positions: list[list[int]], cache: Any, **kwargs: Any) -> torch.Tensor:
        """Logits of one forward pass over ``ids`` at ``positions``, reading and extending ``cache``."""
        out = self.model(
            input_ids=torch.tensor(ids, device=self.device),
            position_ids=torch.tensor(positions, device=self.device),
            use_cache=True,
            **{self._cache_arg: cache},
            **kwargs,
        )
        return out.logits

    @torch.inference_mode()
    def _decode_padded(self, rows: list[_Row]) -> None:
        """The padded layout: the rows as one left-padded batch, to the end."""
        input_ids, attention = self._left_pad([r.request.prompt_ids for r in rows])
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
            logits.index_fill_(1, self._suppress, -math.inf)
        for k, row in enumerate(rows):
            if row.constraint is not None:
                row.constraint.mask(logits[k])
        greedy = logits.argmax(dim=-1).tolist()
        chosen = [greedy[k] if row.request.temperature <= 0 else row.sample(logits[k]) for k, row in enumerate(rows)]
        wanted = [k for k, row in enumerate(rows) if row.request.logprobs]
        if wanted:  # log_softmax over the vocabulary only for the rows that asked
            logprobs = torch.log_softmax(logits[wanted], dim=-1)
            for j, k in enumerate(wanted):
                rows[k].record_logprob(chosen[k], logprobs[j])
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
        self._detok = _Detokenizer(engine.tokenizer, self.ids)
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
            self.text = self._detok.full()
            self._emit(len(self.text))
            return True
        self.ids.append(token)
        self.text += self._detok.push()  # complete characters only: a split one waits for its last byte
        cut = self._stop_position()
        if cut is not None:
            self.text, self.finish = self.text[:cut], "stop"
        elif self.constraint is not None and (not self.constraint.advance(token) or self.constraint.is_done()):
            self.finish = "stop"  # the value is complete (or, never expected, the grammar refused the token)
        elif len(self.ids) >= self.request.max_tokens:
            self.finish = "length"
        if self.finish:
            if cut is None:  # all of it, as one decode of every id gives it (a character cut short included)
                self.text = self._detok.full()
            self._emit(len(self.text))
            return True
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


class _Detokenizer:
    """The text of a growing list of ids, decoding a short window of the latest ids per token (decoding them all
    each time is quadratic in the answer's length). The window starts where earlier text ended on a whole
    character, so what it adds is what a decode of every id would add."""

    def __init__(self, tokenizer: Any, ids: list[int]) -> None:
        self.tokenizer, self.ids = tokenizer, ids
        self.start = self.read = 0  # ids[start:] is decoded each time; ids[start:read] gave text already

    def push(self) -> str:
        """The text the latest ids complete (empty while a character waits for its last byte)."""
        seen = self._decode(self.ids[self.start : self.read])
        window = self._decode(self.ids[self.start :])
        if len(window) <= len(seen) or window.endswith("\ufffd"):
            return ""
        self.start, self.read = self.read, len(self.ids)
        return window[len(seen) :]

    def full(self) -> str:
        """The decode of every id, once (when the row finishes)."""
        return self._decode(self.ids)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


Done = Callable[[Any], None]  # called once per request with its GenResult, or the exception that ended it


@dataclass
class _Live:
    """A row in a decoder: its state, where its result goes, keys in the cache, the token to feed next."""

    row: _Row
    done: Done
    cached: int = 0
    token: int = 0


class SlotDecoder:
    """Continuous batching over a :class:`~chains.hf_slots.SlotCache`: a step prefills the rows that joined (one
    packed sequence) or else decodes one token for every row; finished rows hand their slot to the last row."""

    joinable = True

    def __init__(self, engine: HFEngine) -> None:
        self.engine = engine
        self.cache = SlotCache()
        self.rows: list[_Live] = []  # rows[k] lives in slot k
        self.waiting: list[_Live] = []

    def pending(self) -> int:
        """Rows not finished yet."""
        return len(self.rows) + len(self.waiting)

    def add(self, request: GenRequest, done: Done) -> None:
        """Queue a row; it joins at the next step."""
        self.waiting.append(_Live(_Row(request, self.engine), done))

    @torch.inference_mode()
    def step(self) -> None:
        """One forward pass; rows that finish are handed to their ``done``."""
        if self.waiting:
            self._prefill()
        elif self.rows:
            self._decode()

    def abort(self, error: BaseException) -> None:
        """Fail every row (a forward pass raised) and start afresh."""
        lives, self.rows, self.waiting = self.rows + self.waiting, [], []
        self.cache.clear()
        for live in lives:
            live.done(error)

    def _prefill(self) -> None:
        new, self.waiting = self.waiting, []
        spans, ids, positions = [], [], []
        for k, live in enumerate(new):
            prompt = live.row.request.prompt_ids
            spans.append((len(self.rows) + k, len(ids), len(prompt)))
            ids.extend(prompt)
            positions.extend(range(len(prompt)))
            live.cached = len(prompt)
        if len(ids) == 1:  # never one row through the projections (see chains.hf_slots); the copy is ignored
            ids, positions = ids * 2, positions * 2
        budget = max(len(p.row.request.prompt_ids) + min(p.row.request.max_tokens, 512) for p in new)
        self.cache.reserve(len(self.rows) + len(new), budget)
        self.cache.plan = Plan(spans=tuple(spans))
        keep = torch.tensor([start + length - 1 for _, start, length in spans], device=self.engine.device)
        logits = self.engine._forward(
            [ids], [positions], self.cache, attention_mask=_NO_MASK, logits_to_keep=keep, aigc_plan=self.cache.plan
        )
        self.rows += new
        self._advance(new, logits[0])

    def _decode(self) -> None:
        tokens, lengths = [live.token for live in self.rows], [live.cached for live in self.rows]
        if len(tokens) == 1:  # a throwaway twin in the free slot 1: never one row through the projections
            tokens, lengths = tokens * 2, lengths * 2
        self.cache.plan = plan = self.cache.decode_plan(lengths, self.engine.device)
        logits = self.engine._forward(
            [[t] for t in tokens], [[n] for n in lengths], self.cache, attention_mask=plan.mask, aigc_plan=plan
        )
        for live in self.rows:
            live.cached += 1
        self._advance(self.rows, logits[: len(self.rows), -1])

    def _advance(self, lives: list[_Live], logits: torch.Tensor) -> None:
        tokens = self.engine._choose([live.row for live in lives], logits)
        for live, token in zip(lives, tokens, strict=True):
            live.token = token
            live.row.push(token)
        self._release()

    def _release(self) -> None:
        """Hand finished rows their results; move the last rows into the slots they leave."""
        rows = self.rows
        alive = [k for k, live in enumerate(rows) if live.row.finish is None]
        if len(alive) == len(rows):
            return
        for live in rows:
            if live.row.finish is not None:
                live.done(live.row.result())
        holes = [k for k in range(len(alive)) if rows[k].row.finish is not None]
        for hole, source in zip(holes, [k for k in alive if k >= len(alive)], strict=True):
            self.cache.move(source, hole, rows[source].cached)
            rows[hole] = rows[source]
        self.rows = rows[: len(alive)]
        if not self.rows:
            self.cache.clear()


class PaddedDecoder:
    """Whole batches, left padded, in transformers' own cache: the layout for models slots do not support."""

    joinable = False

    def __init__(self, engine: HFEngine) -> None:
        self.engine = engine
        self.waiting: list[_Live] = []

    def pending(self) -> int:
        """Rows not finished yet."""
        return len(self.waiting)

    def add(self, request: GenRequest, done: Done) -> None:
        """Queue a row for the next batch."""
        self.waiting.append(_Live(_Row(request, self.engine), done))

    def step(self) -> None:
        """Decode every queued row to its end."""
        self.engine._decode_padded([live.row for live in self.waiting])
        lives, self.waiting = self.waiting, []
        for live in lives:
            live.done(live.row.result())

    def abort(self, error: BaseException) -> None:
        """Fail every queued row."""
        lives, self.waiting = self.waiting, []
        for live in lives:
            live.done(error)


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
