"""``ChatTransformers``: a LangChain chat model over a local transformers causal LM.

Invoke, stream (token by token), batch (one batched decode), their async forms, ``stop`` everywhere, usage from
the real tokenizer, logprobs on request and ``with_structured_output``. Concurrent calls to the same model from
threads or asyncio tasks are coalesced into batches by a :class:`~chains.batching.DynamicBatcher`.

``response_format`` (OpenAI's shapes: ``{"type": "json_schema", "json_schema": {"schema": ...}}`` or
``{"type": "json_object"}``) is a decoding constraint here: each row of the batch that carries one is decoded
under the schema's grammar (:mod:`chains.constrained`), so the answer is JSON of that shape even from a tiny model.

The weights are loaded once per process and shared by every ``ChatTransformers`` naming the same model, device
and dtype; :func:`unload_model` / :func:`unload_all` free them. Nothing heavy is imported until the first call.
"""

from __future__ import annotations

import asyncio
import atexit
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict, Field

from chains.errors import BackendTimeout
from chains.structured import structured_runnable
from chains.tracing import ls_params

if TYPE_CHECKING:
    from chains.batching import DynamicBatcher
    from chains.constrained import Grammar, GrammarCompiler
    from chains.hf_engine import GenRequest, GenResult, HFEngine, TokenLogprob

__all__ = ["ChatTransformers", "loaded_models", "unload_all", "unload_model"]

_GEN_KWARGS = {
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "logprobs",
    "top_logprobs",
    "stop",
    "timeout",
    "response_format",
}
_IGNORED_KWARGS = {"model"}
_DONE = object()


@dataclass
class _Loaded:
    engine: HFEngine
    batcher: DynamicBatcher[GenRequest, GenResult]
    grammars: GrammarCompiler


class _ModelPool:
    """Process-wide cache of loaded models, keyed by (model, device, dtype, device_map)."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, str, str | None, str | None], _Loaded] = {}
        self._lock = threading.Lock()

    def get(self, chat: ChatTransformers) -> _Loaded:
        key = (chat.model, chat.device, chat.dtype, chat.device_map)
        with self._lock:
            loaded = self._models.get(key)
            if loaded is None:
                from chains.batching import DynamicBatcher

                try:
                    from chains.hf_engine import HFEngine
                except ImportError as exc:  # an install without the local extra (torch, transformers)
                    from chains.registry import local_extra_missing

                    raise local_extra_missing(f"hf:{chat.model}", str(exc)) from None
                engine = HFEngine.load(
                    chat.model,
                    device=chat.device,
                    dtype=chat.dtype,
                    device_map=chat.device_map,
                    show_progress=chat.show_progress,
                )
                batcher = DynamicBatcher(
                    engine.decoder(),
                    max_batch_size=chat.max_batch_size,
                    max_wait_s=chat.max_wait_ms / 1000,
                    name=f"aigc-batcher:{chat.model}",
                )
                from chains.constrained import GrammarCompiler  # numpy: there with transformers

                grammars = GrammarCompiler(engine.tokenizer, eos_ids=engine.eos_ids, label=f"hf:{chat.model}")
                loaded = self._models[key] = _Loaded(engine, batcher, grammars)
            return loaded

    def unload(self, model: str | None = None) -> int:
        with self._lock:
            keys = [k for k in self._models if model is None or k[0] == model]
            for key in keys:
                loaded = self._models.pop(key)
                loaded.batcher.close()
                loaded.engine.unload()
            return len(keys)

    def keys(self) -> list[str]:
        with self._lock:
            return [k[0] for k in self._models]


_POOL = _ModelPool()
# Stop the decoding threads before the interpreter finalizes: a daemon thread still inside a torch call while
# torch's thread pools are torn down aborts the process ("terminate called without an active exception").
atexit.register(_POOL.unload)


def unload_model(model: str) -> int:
    """Free every loaded copy of ``model`` (all devices and dtypes); return how many were loaded."""
    return _POOL.unload(model)


def unload_all() -> int:
    """Free every loaded local model."""
    return _POOL.unload()


def loaded_models() -> list[str]:
    """Models currently held in memory."""
    return _POOL.keys()


class ChatTransformers(BaseChatModel):
    """A chat model backed by a local Hugging Face transformers model (hub id or folder)."""

    model_config = ConfigDict(populate_by_name=True, protected_namespaces=())

    model: str = Field(alias="model_name", description="Hub id or local folder of a causal LM with a chat template.")
    device: str = Field("auto", description="auto (CUDA when present, else CPU), cpu, cuda, cuda:1, mps.")
    dtype: str | None = Field("auto", description="auto (bf16/fp16 on GPU, fp32 on CPU), float32, bfloat16, ...")
    device_map: str | None = Field(None, description="Passed to from_pretrained for multi-GPU placement.")
    temperature: float = Field(0.0, ge=0, le=2, description="0 is greedy decoding.")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(256, gt=0)
    stop: list[str] | None = None
    seed: int | None = None
    timeout: float | None = Field(None, description="Seconds to wait for an answer before BackendTimeout.")
    max_retries: int = Field(0, description="Accepted for interface parity; local calls are not retried.")
    streaming: bool = False
    logprobs: bool = False
    top_logprobs: int = Field(0, ge=0, le=20)
    max_batch_size: int = Field(16, ge=1, description="Most calls decoded together (dynamic batching).")
    max_wait_ms: float = Field(
        4.0, ge=0, description="A batch starts once no call arrived for this long (capped at 50 ms in all)."
    )
    context_overflow: Literal["error", "truncate_left"] = "error"
    show_progress: bool = Field(False, description="Show transformers' progress bars and warnings while loading.")

    @property
    def _llm_type(self) -> str:
        return "transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "dtype": self.dtype,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return ls_params("transformers", self.model, self, stop, kwargs)

    @property
    def engine(self) -> HFEngine:
        """The loaded engine (loads the weights on first use)."""
        return _POOL.get(self).engine

    # -- requests -----------------------------------------------------------------------------------

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any], on_text: Any = None
    ) -> GenRequest:
        unknown = {k for k in kwargs if k not in _GEN_KWARGS | _IGNORED_KWARGS and not k.startswith("ls_")}
        if unknown:
            raise TypeError(f"ChatTransformers does not accept {sorted(unknown)}; it takes {sorted(_GEN_KWARGS)}")
        if kwargs.get("model") not in (None, self.model):
            raise TypeError(f"this ChatTransformers serves {self.model!r}; make another one for {kwargs['model']!r}")
        engine = self.engine  # first: without the local extra, this is the error that names it
        from chains.hf_engine import GenRequest

        max_tokens = int(kwargs["max_tokens"]) if kwargs.get("max_tokens") is not None else self.max_tokens
        temperature = float(kwargs.get("temperature", self.temperature))
        top_p = float(kwargs.get("top_p", self.top_p))
        if max_tokens < 1 or not 0 <= temperature <= 2 or not 0 < top_p <= 1:
            raise ValueError(
                f"hf:{self.model}: max_tokens must be >= 1 (got {max_tokens}), temperature in 0..2 "
                f"(got {temperature}), top_p in (0, 1] (got {top_p})"
            )
        seed = kwargs.get("seed", self.seed)
        if seed is not None and not (isinstance(seed, int) and -(2**63) <= seed < 2**64):
            raise ValueError(f"hf:{self.model}: seed must be a 64-bit integer (got {seed!r})")
        grammar = self._grammar(kwargs.get("response_format"))
        full_ids = engine.encode_chat(_to_chat(messages))
        conversation = sum(m.type != "system" for m in messages) > 1  # earlier turns could be dropped
        prompt_ids = engine.fit(full_ids, max_tokens, self.context_overflow, conversation=conversation)
        return GenRequest(
            prompt_ids=prompt_ids,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            stop=tuple(stop if stop is not None else kwargs.get("stop") or self.stop or ()),
            logprobs=bool(kwargs.get("logprobs", self.logprobs)),
            top_logprobs=int(kwargs.get("top_logprobs", self.top_logprobs)),
            on_text=on_text,
            dropped_prompt_tokens=len(full_ids) - len(prompt_ids),
            grammar=grammar,
        )

    def _grammar(self, response_format: Any) -> Grammar | None:
        """The compiled grammar of a ``response_format`` (cached per schema), or None to decode freely."""
        from chains.constrained import schema_of_response_format

        schema = schema_of_response_format(response_format)
        return _POOL.get(self).grammars.compile(schema) if schema is not None else None

    def _submit(self, request: GenRequest) -> Future[GenResult]:
        return _POOL.get(self).batcher.submit(request)

    def _wait(self, future: Future[GenResult], timeout: float | None) -> GenResult:
        try:
            return future.result(timeout=timeout if timeout is not None else self.timeout)
        except FutureTimeout:
            raise BackendTimeout(
                f"hf:{self.model} gave no answer within {self.timeout} s", model=f"hf:{self.model}"
            ) from None

    def _metadata(self, result: GenResult) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "model_name": f"hf:{self.model}",
            "model_provider": "transformers",
            "finish_reason": result.finish_reason,
        }
        if result.dropped_prompt_tokens:
            meta["truncated_prompt_tokens"] = result.dropped_prompt_tokens
        if result.logprobs is not None:
            meta["logprobs"] = {"content": [_logprob_dict(t) for t in result.logprobs]}
        return meta

    @staticmethod
    def _usage(result: GenResult) -> dict[str, int]:
        return {
            "input_tokens": result.prompt_tokens,
            "output_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        }

    def _result(self, result: GenResult) -> ChatResult:
        message = AIMessage(
            content=result.text, usage_metadata=self._usage(result), response_metadata=self._metadata(result)
        )
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"model_name": f"hf:{self.model}", "token_usage": self._usage(result)},
        )

    # -- LangChain hooks ----------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            chunks = list(self._stream(messages, stop, run_manager, **kwargs))
            return _join_chunks(chunks)
        future = self._submit(self._request(messages, stop, kwargs))
        return self._result(self._wait(future, kwargs.get("timeout")))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = await asyncio.to_thread(self._request, messages, stop, kwargs)
        future = self._submit(request)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), kwargs.get("timeout") or self.timeout)
        except TimeoutError:
            raise BackendTimeout(
                f"hf:{self.model} gave no answer within {self.timeout} s", model=f"hf:{self.model}"
            ) from None
        return self._result(result)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        deltas: queue.Queue[Any] = queue.Queue()
        future = self._submit(self._request(messages, stop, kwargs, on_text=lambda t, lp: deltas.put((t, lp))))
        future.add_done_callback(lambda _: deltas.put(_DONE))
        timeout = kwargs.get("timeout") or self.timeout
        while (item := _get(deltas, timeout, self.model)) is not _DONE:
            chunk = _delta_chunk(*item)
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
        yield self._final_chunk(future.result())

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue[Any] = asyncio.Queue()

        def push(item: Any) -> None:
            loop.call_soon_threadsafe(deltas.put_nowait, item)

        request = await asyncio.to_thread(self._request, messages, stop, kwargs, lambda t, lp: push((t, lp)))
        future = self._submit(request)
        future.add_done_callback(lambda _: push(_DONE))
        timeout = kwargs.get("timeout") or self.timeout
        while True:
            try:
                item = await asyncio.wait_for(deltas.get(), timeout)
            except TimeoutError:
                raise BackendTimeout(
                    f"hf:{self.model} stream stalled for {timeout} s", model=f"hf:{self.model}"
                ) from None
            if item is _DONE:
                break
            chunk = _delta_chunk(*item)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
        yield self._final_chunk(future.result())

    def _final_chunk(self, result: GenResult) -> ChatGenerationChunk:
        metadata = {k: v for k, v in self._metadata(result).items() if k != "logprobs"}  # streamed with the deltas
        message = AIMessageChunk(
            content="", usage_metadata=self._usage(result), chunk_position="last", response_metadata=metadata
        )
        return ChatGenerationChunk(message=message)

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[BaseMessage]:
        """Run every input concurrently so that the dynamic batcher decodes them together."""
        return super().batch(
            inputs, _with_concurrency(config, len(inputs)), return_exceptions=return_exceptions, **kwargs
        )

    def with_structured_output(
        self, schema: dict[str, Any] | type, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """Decoded under the schema's grammar, with the schema also in the prompt; parsed and validated, with one
        repair retry for what a grammar cannot check (``method`` is accepted and ignored: every method works the
        same way on a local model)."""
        return structured_runnable(self, schema, include_raw=include_raw)


def _with_concurrency(config: RunnableConfig | list[RunnableConfig] | None, n: int) -> Any:
    if isinstance(config, list):
        return [{**c, "max_concurrency": c.get("max_concurrency") or n} for c in config]
    config = dict(config or {})
    config.setdefault("max_concurrency", n)
    return config


def _get(deltas: queue.Queue[Any], timeout: float | None, model: str) -> Any:
    try:
        return deltas.get(timeout=timeout)
    except queue.Empty:
        raise BackendTimeout(f"hf:{model} stream stalled for {timeout} s", model=f"hf:{model}") from None


def _delta_chunk(text: str, logprobs: list[TokenLogprob]) -> ChatGenerationChunk:
    meta = {"logprobs": {"content": [_logprob_dict(t) for t in logprobs]}} if logprobs else {}
    return ChatGenerationChunk(message=AIMessageChunk(content=text, response_metadata=meta))


def _join_chunks(chunks: list[ChatGenerationChunk]) -> ChatResult:
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    message = AIMessage(
        content=total.message.content,
        usage_metadata=total.message.usage_metadata,
        response_metadata=total.message.response_metadata,
    )
    return ChatResult(generations=[ChatGeneration(message=message)])


def _logprob_dict(entry: TokenLogprob) -> dict[str, Any]:
    return {
        "token": entry.token,
        "logprob": entry.logprob,
        "top_logprobs": [{"token": t, "logprob": lp} for t, lp in entry.top_logprobs],
    }


def _to_chat(messages: list[BaseMessage]) -> list[dict[str, str]]:
    roles = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool", "chat": "user"}
    return [{"role": getattr(m, "role", None) or roles.get(m.type, "user"), "content": m.text} for m in messages]
