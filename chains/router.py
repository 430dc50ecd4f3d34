"""``Router``: one chat model that routes each call to a backend, with retries, fallbacks and cooldowns.

Choice, in order: an explicit ``model=`` per call; the first matching rule (task, prompt length, budget);
the configured default, where ``auto`` means OpenAI when credentials are configured, else the local model.
Then fallbacks in order. Within one call a backend that failed is never tried again, retries back off
exponentially with jitter and honour Retry-After, an authentication error is never retried, and a backend that
keeps failing rests (cooldown) before it is tried again. The answer's ``response_metadata["aigc_route"]`` says
which backend answered, after how many attempts, and what failed before; LangChain callbacks see it in
``on_llm_end``.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from chains.cache import ResponseCache, cache_key
from chains.config import ModelsConfig, RouterConfig
from chains.errors import (
    AllBackendsFailed,
    AuthenticationFailed,
    BackendError,
    BackendTimeout,
    ContextWindowExceeded,
    InvalidRequest,
    RateLimited,
    StreamInterrupted,
    UnknownModel,
)
from chains.model_store import default_local_model
from chains.openai_backend import classify_error
from chains.registry import ModelRegistry
from chains.shortcuts import calls_directly, first_message, unobserved_messages, untraced, with_run_id
from chains.structured import structured_runnable
from chains.tracing import ls_params

__all__ = ["Router"]

_ROUTER_KWARGS = ("model", "task", "cache", "sample_index")
# Backend calls run without the caller's callbacks: the router's own run reports tokens, usage and the route,
# and passing callbacks on would report every call and every token twice.
_ISOLATED: dict[str, Any] = {"callbacks": []}


@dataclass
class _Breaker:
    failures: int = 0
    open_until: float = 0.0


@dataclass
class _Call:
    """The bookkeeping of one routed call."""

    plan: list[str]
    cache_request: tuple[list[BaseMessage], dict[str, Any], int] | None = None
    attempts: int = 0
    tried: list[dict[str, str]] = field(default_factory=list)
    errors: list[tuple[str, BaseException]] = field(default_factory=list)
    retry: bool = False  # set after a failed attempt that should be repeated on the same backend
    hit: AIMessage | None = None  # a cached answer that ended the call before any backend was tried

    def route(self, backend: str, cached: bool = False) -> dict[str, Any]:
        return {"backend": backend, "attempts": self.attempts, "tried": self.tried, "cached": cached}

    def cache_key(self, backend: str) -> str | None:
        """The key of this request as answered by ``backend``; None when the call is not cached."""
        return None if self.cache_request is None else cache_key(backend, *self.cache_request)


class Router(BaseChatModel):
    """A chat model over several backends (``model id -> BaseChatModel``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backends: dict[str, BaseChatModel]
    config: RouterConfig = Field(default_factory=RouterConfig)
    auto: str | None = Field(None, description="What default 'auto' resolves to (set by from_config).")
    response_cache: ResponseCache | None = Field(None, description="Optional SQLite cache (per call: cache=True).")
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    timeout: float | None = Field(
        None,
        description="LangChain's standard parameter, accepted for compatibility; "
        "per-backend timeouts are RouterConfig.timeouts.",
    )
    max_retries: int | None = Field(
        None, description="LangChain's standard parameter, accepted for compatibility; retries are RouterConfig.retry."
    )

    @model_validator(mode="after")
    def _known_ids(self) -> Router:
        if not self.backends:
            raise UnknownModel(
                "no model is configured: run `aigc models pull smollm2` for a local model that works "
                "offline, or set OPENAI_API_KEY (or OPENAI_BASE_URL for a compatible server), or "
                "AIGC_LOCAL_MODEL=hf:<folder>, or pass --model / models.router.default"
            )
        named = {
            "default": [self.config.default] if self.config.default != "auto" else [],
            "fallbacks": self.config.fallbacks,
            "rules": [r.use for r in self.config.rules],
            "context_windows": list(self.config.context_windows),
            "prices": list(self.config.prices),
            "timeouts": list(self.config.timeouts),
        }
        for field_name, ids in named.items():
            unknown = [i for i in ids if i not in self.backends]
            if unknown:
                raise UnknownModel(
                    f"router {field_name} name {', '.join(unknown)}, which is not a backend "
                    f"({', '.join(sorted(self.backends))})",
                    model=unknown[0],
                )
        return self

    _breakers: dict[str, _Breaker] = PrivateAttr(default_factory=dict)
    _spent_usd: float = PrivateAttr(0.0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_config(cls, config: ModelsConfig, registry: ModelRegistry | None = None) -> Router:
        """Build every backend the configuration names (lazily: local weights load on first use)."""
        registry = registry or ModelRegistry()
        router_config = config.router
        auto = _auto_choice(config)
        ids = [
            auto if router_config.default == "auto" else router_config.default,
            *router_config.fallbacks,
            *(rule.use for rule in router_config.rules),
        ]
        backends = {
            model_id: registry.create(model_id, config, **_timeout(router_config, model_id))
            for model_id in dict.fromkeys(i for i in ids if i)
        }
        policy = router_config.cache
        cache = (
            ResponseCache(policy.path, ttl_s=policy.ttl_s, busy_timeout_s=policy.busy_timeout_s)
            if policy.path
            else None
        )
        return cls(backends=backends, config=router_config, auto=auto, response_cache=cache)

    @property
    def _llm_type(self) -> str:
        return "aigc-router"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"backends": sorted(self.backends), "default": self.config.default, "auto": self.auto}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return ls_params("aigc", self._default(), self, stop, kwargs)

    @property
    def spent_usd(self) -> float:
        """Estimated spend so far, from usage and the configured prices."""
        return self._spent_usd

    def close(self) -> None:
        """Close the response cache (backends hold no resources of ours)."""
        if self.response_cache is not None:
            self.response_cache.close()

    def cooldowns(self) -> dict[str, float]:
        """Backends resting now, with the seconds left."""
        now = time.monotonic()
        return {m: b.open_until - now for m, b in self._breakers.items() if b.open_until > now}

    # -- planning -----------------------------------------------------------------------------------

    def _default(self) -> str:
        choice = self.auto if self.config.default == "auto" else self.config.default
        return choice or next(iter(self.backends))

    def _plan(self, messages: list[BaseMessage], options: dict[str, Any], params: dict[str, Any]) -> _Call:
        explicit = options.get("model")
        if explicit is not None and explicit not in self.backends:
            raise UnknownModel(
                f"model {explicit!r} is not one of this router's backends: {', '.join(sorted(self.backends))}",
                model=explicit,
            )
        primary = (
            explicit or (self.config.rules and self._rule_choice(messages, options.get("task"))) or self._default()
        )
        call = _Call(plan=[m for m in dict.fromkeys([primary, *self.config.fallbacks]) if m in self.backends])
        if self.config.context_windows:
            call.plan = [m for m in call.plan if self._fits(m, messages, params, call)]
        if options.get("cache", self.config.cache.enabled_by_default) and self.response_cache is not None:
            call.cache_request = (messages, params, int(options.get("sample_index", 0)))
        return call

    def _rule_choice(self, messages: list[BaseMessage], task: str | None) -> str | None:
        if not self.config.rules:
            return None
        tokens = _estimate_tokens(messages)
        over_budget = self.config.budget_usd is not None and self._spent_usd >= self.config.budget_usd
        for rule in self.config.rules:
            if rule.task is not None and task not in rule.task:
                continue
            if rule.prompt_tokens_over is not None and tokens <= rule.prompt_tokens_over:
                continue
            if rule.budget_exceeded is not None and rule.budget_exceeded != over_budget:
                continue
            return rule.use
        return None

    def _fits(self, model_id: str, messages: list[BaseMessage], params: dict[str, Any], call: _Call) -> bool:
        window = self.config.context_windows.get(model_id)
        needed = _estimate_tokens(messages) + int(params.get("max_tokens") or 0)
        if window is None or needed <= window:
            return True
        call.tried.append({"backend": model_id, "error": f"skipped: about {needed} tokens > context window {window}"})
        return False

    def _split_kwargs(self, stop: list[str] | None, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        options = {k: kwargs.pop(k) for k in _ROUTER_KWARGS if k in kwargs}
        defaults = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        params = {**{k: v for k, v in defaults.items() if v is not None}, **kwargs}
        if stop is not None or self.stop:
            params["stop"] = stop if stop is not None else self.stop
        return options, params

    # -- failure policy -----------------------------------------------------------------------------

    def _cooling(self, model_id: str, call: _Call) -> bool:
        breaker = self._breakers.get(model_id)
        left = breaker.open_until - time.monotonic() if breaker else 0
        if left > 0:
            call.tried.append({"backend": model_id, "error": f"skipped: cooling down for {left:.1f} s more"})
            return True
        return False

    def _record(self, model_id: str, ok: bool) -> None:
        breaker = self._breakers.get(model_id)
        if ok and (breaker is None or (breaker.failures == 0 and breaker.open_until == 0.0)):
            return  # nothing to reset: the common case takes no lock
        with self._lock:
            breaker = self._breakers.setdefault(model_id, _Breaker())
            if ok:
                breaker.failures, breaker.open_until = 0, 0.0
                return
            breaker.failures += 1
            if breaker.failures >= self.config.cooldown.failures:
                breaker.open_until = time.monotonic() + self.config.cooldown.cooldown_s
                breaker.failures = 0

    def _next_delay(self, error: BaseException, attempt: int) -> float | None:
        """Seconds to wait before retrying the same backend, or None to move on."""
        policy = self.config.retry
        if attempt >= policy.max_attempts or isinstance(error, AuthenticationFailed | InvalidRequest):
            return None
        if isinstance(error, RateLimited):
            if error.retry_after is not None:
                return error.retry_after if error.retry_after <= policy.max_retry_after_s else None
        elif not isinstance(error, BackendError) or isinstance(error, BackendTimeout | StreamInterrupted):
            return None
        delay = min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1))
        return max(0.0, delay * (1 + random.uniform(-policy.jitter, policy.jitter)))

    def _may_fall_back(self, error: BaseException) -> bool:
        kinds = set(self.config.fallback_on)
        if isinstance(error, AuthenticationFailed | InvalidRequest):
            return False
        if isinstance(error, RateLimited):
            return "rate_limit" in kinds
        if isinstance(error, BackendTimeout):
            return "timeout" in kinds
        if isinstance(error, StreamInterrupted):
            return "stream" in kinds
        if isinstance(error, ContextWindowExceeded):
            return "context" in kinds
        if isinstance(error, BackendError):
            return ("server" if error.status else "connection") in kinds
        return False

    def _failed(self, call: _Call, model_id: str, exc: BaseException) -> BaseException:
        error = classify_error(exc, model_id)
        call.attempts += 1
        call.tried.append({"backend": model_id, "error": f"{type(error).__name__}: {error}"})
        call.errors.append((model_id, error))
        return error

    def _after_failure(self, call: _Call, model_id: str, exc: BaseException, attempt: int) -> float | None:
        """Seconds to wait before retrying ``model_id``, or None to move on; raises when the call must stop."""
        error = self._failed(call, model_id, exc)
        delay = self._next_delay(error, attempt)
        call.retry = delay is not None
        if delay is not None:
            return delay
        if self._may_fall_back(error):
            self._record(model_id, ok=False)  # only transient failures count towards the cooldown
            return None
        raise error from exc

    def _interrupted(self, model_id: str, count: int, exc: BaseException | None = None) -> StreamInterrupted:
        """The error for a stream that broke, or ended unfinished, after content went out."""
        self._record(model_id, ok=False)
        how = (
            f"broke after {count} chunks ({classify_error(exc, model_id)})"
            if exc
            else (f"ended after {count} chunks without a finish reason")
        )
        return StreamInterrupted(f"{model_id}: the stream {how}; the answer is incomplete", model=model_id)

    def _give_up(self, call: _Call) -> AllBackendsFailed:
        lines = "; ".join(f"{t['backend']}: {t['error']}" for t in call.tried) or "no backend was eligible"
        return AllBackendsFailed(f"every backend failed or was skipped ({lines})", errors=call.errors)

    # -- entry points -------------------------------------------------------------------------------

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """``BaseChatModel.invoke``; when no callback handler listens, without setting up a run nobody would see."""
        config = ensure_config(config)
        messages = unobserved_messages(self, input, config, kwargs, CallbackManager)
        if messages is None:
            return super().invoke(input, config, stop=stop, **kwargs)
        return with_run_id(self._route(messages, stop, untraced(kwargs)))

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """``BaseChatModel.ainvoke``, with the same shortcut as :meth:`invoke`."""
        config = ensure_config(config)
        messages = unobserved_messages(self, input, config, kwargs, AsyncCallbackManager)
        if messages is None:
            return await super().ainvoke(input, config, stop=stop, **kwargs)
        return with_run_id(await self._aroute(messages, stop, untraced(kwargs)))

    # -- calls --------------------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _result(self._route(messages, stop, kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _result(await self._aroute(messages, stop, kwargs))

    def _start(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> tuple[_Call, dict]:
        """The plan of one routed call and the parameters for its backends."""
        options, params = self._split_kwargs(stop, kwargs)
        return self._plan(messages, options, params), params

    def _tries(self, call: _Call) -> Iterator[tuple[str, int]]:
        """(backend, attempt) in order: a cache hit ends the call (``call.hit``), a resting backend is skipped, and a
        backend is tried again while the failure policy says so (``call.retry``, set by :meth:`_after_failure`)."""
        for model_id in call.plan:
            if (hit := self._cached(call, model_id)) is not None:
                call.hit = hit
                return
            if self._cooling(model_id, call):
                continue
            attempt = 1
            yield model_id, attempt
            while call.retry:
                call.retry = False
                attempt += 1
                yield model_id, attempt

    def _route(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> AIMessage:
        """One routed call, blocking: the answer, ``aigc_route`` in its metadata."""
        call, params = self._start(messages, stop, kwargs)
        for model_id, attempt in self._tries(call):
            try:
                message = self._call(model_id, messages, params)
            except Exception as exc:
                if delay := self._after_failure(call, model_id, exc, attempt):
                    time.sleep(delay)
                continue
            return self._answer(call, model_id, message)
        if call.hit is not None:
            return call.hit
        raise self._give_up(call)

    async def _aroute(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> AIMessage:
        """One routed call on the running event loop (the same plan and policy as :meth:`_route`)."""
        call, params = self._start(messages, stop, kwargs)
        for model_id, attempt in self._tries(call):
            try:
                message = await self._acall(model_id, messages, params)
            except Exception as exc:
                if delay := self._after_failure(call, model_id, exc, attempt):
                    await asyncio.sleep(delay)
                continue
            return self._answer(call, model_id, message)
        if call.hit is not None:
            return call.hit
        raise self._give_up(call)

    def _call(self, model_id: str, messages: list[BaseMessage], params: dict[str, Any]) -> BaseMessage:
        """One attempt on one backend: its ``_generate`` directly when ``invoke`` would add nothing but cost."""
        backend = self.backends[model_id]
        if calls_directly(backend, params):
            return first_message(backend._generate(messages, **params))
        return backend.invoke(messages, _ISOLATED, **params)

    async def _acall(self, model_id: str, messages: list[BaseMessage], params: dict[str, Any]) -> BaseMessage:
        """The async attempt: the backend's own ``_agenerate`` (natively async for the openai backend)."""
        backend = self.backends[model_id]
        if calls_directly(backend, params):
            return first_message(await backend._agenerate(messages, **params))
        return await backend.ainvoke(messages, _ISOLATED, **params)

    def _cached(self, call: _Call, model_id: str) -> AIMessage | None:
        """A stored answer of ``model_id`` to this request (checked before each backend is tried)."""
        key = call.cache_key(model_id)
        if key is None or self.response_cache is None:
            return None
        message = self.response_cache.get(key, model=model_id)
        if message is None:
            return None
        message.response_metadata["aigc_route"] = call.route(model_id, cached=True)
        return message

    def _stream_end(self, call: _Call, model_id: str, total: AIMessageChunk | None) -> ChatGenerationChunk:
        """The closing chunk that carries the route; a finished stream is also stored in the cache."""
        route = call.route(model_id)
        if total is not None:
            answer = AIMessage(
                content=total.content,
                usage_metadata=total.usage_metadata,
                response_metadata={**total.response_metadata, "aigc_route": route},
            )
            self._charge(model_id, answer)
            self._store(call, model_id, answer)
        return ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata={"aigc_route": route}))

    def _answer(self, call: _Call, model_id: str, message: BaseMessage) -> AIMessage:
        """The successful attempt's answer with its route; spend, cache and breaker updated."""
        call.attempts += 1
        self._record(model_id, ok=True)
        route = call.route(model_id)
        metadata = {**message.response_metadata, "aigc_route": route}
        if isinstance(message, AIMessage):  # a shallow copy: no re-validation of content, tool calls or usage
            answer = message.model_copy(update={"response_metadata": metadata})
        else:
            answer = AIMessage(content=message.content, additional_kwargs=message.additional_kwargs, id=message.id)
            answer.response_metadata = metadata
        self._charge(model_id, answer)
        self._store(call, model_id, answer)
        return answer

    def _store(self, call: _Call, model_id: str, message: AIMessage) -> None:
        """Cache an answer under the backend that gave it (a failed write is logged and skipped, never raised)."""
        key = call.cache_key(model_id)
        if key is not None and self.response_cache is not None:
            self.response_cache.put(key, model_id, message)

    def _charge(self, model_id: str, message: AIMessage) -> None:
        price = self.config.prices.get(model_id)
        usage = message.usage_metadata
        if price and usage:
            cost = (usage["input_tokens"] * price.input + usage["output_tokens"] * price.output) / 1e6
            with self._lock:
                self._spent_usd += cost

    # -- streaming ----------------------------------------------------------------------------------

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call, params = self._start(messages, stop, kwargs)
        for model_id, attempt in self._tries(call):
            try:
                stream = self.backends[model_id].stream(messages, _ISOLATED, **params)
                first = next(stream, None)
                if first is None:
                    raise StreamInterrupted(f"{model_id}: the stream ended before any content", model=model_id)
            except Exception as exc:
                if delay := self._after_failure(call, model_id, exc, attempt):
                    time.sleep(delay)
                continue
            call.attempts += 1
            yield from self._relay(call, model_id, first, stream, run_manager)
            return
        if call.hit is not None:
            yield _hit_chunk(call.hit)
            return
        raise self._give_up(call)

    def _relay(
        self,
        call: _Call,
        model_id: str,
        first: AIMessageChunk,
        stream: Iterator[AIMessageChunk],
        run_manager: CallbackManagerForLLMRun | None,
    ) -> Iterator[ChatGenerationChunk]:
        """Pass chunks on; once content has gone out, a broken or unfinished stream is an error, never a success."""
        count, finished, total = 0, False, None
        try:
            for chunk in _chain(first, stream):
                count += 1
                total = chunk if total is None else total + chunk
                finished = finished or bool(chunk.response_metadata.get("finish_reason"))
                out = ChatGenerationChunk(message=chunk)
                if run_manager:
                    run_manager.on_llm_new_token(out.text, chunk=out)
                yield out
        except Exception as exc:
            raise self._interrupted(model_id, count, exc) from exc
        if not finished:
            raise self._interrupted(model_id, count)
        self._record(model_id, ok=True)
        yield self._stream_end(call, model_id, total)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call, params = self._start(messages, stop, kwargs)
        for model_id, attempt in self._tries(call):
            try:
                stream = self.backends[model_id].astream(messages, _ISOLATED, **params)
                first = await anext(stream, None)
                if first is None:
                    raise StreamInterrupted(f"{model_id}: the stream ended before any content", model=model_id)
            except Exception as exc:
                if delay := self._after_failure(call, model_id, exc, attempt):
                    await asyncio.sleep(delay)
                continue
            call.attempts += 1
            async for out in self._arelay(call, model_id, first, stream, run_manager):
                yield out
            return
        if call.hit is not None:
            yield _hit_chunk(call.hit)
            return
        raise self._give_up(call)

    async def _arelay(
        self,
        call: _Call,
        model_id: str,
        first: AIMessageChunk,
        stream: AsyncIterator[AIMessageChunk],
        run_manager: AsyncCallbackManagerForLLMRun | None,
    ) -> AsyncIterator[ChatGenerationChunk]:
        count, finished, total = 0, False, None
        try:
            chunk: AIMessageChunk | None = first
            while chunk is not None:
                count += 1
                total = chunk if total is None else total + chunk
                finished = finished or bool(chunk.response_metadata.get("finish_reason"))
                out = ChatGenerationChunk(message=chunk)
                if run_manager:
                    await run_manager.on_llm_new_token(out.text, chunk=out)
                yield out
                chunk = await anext(stream, None)
        except Exception as exc:
            raise self._interrupted(model_id, count, exc) from exc
        if not finished:
            raise self._interrupted(model_id, count)
        self._record(model_id, ok=True)
        yield self._stream_end(call, model_id, total)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools in OpenAI's format; they reach whichever backend answers (a backend without tool support
        refuses them with a clear error rather than ignoring them)."""
        from langchain_core.utils.function_calling import convert_to_openai_tool

        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice in ("any", True):
            tool_choice = "required"
        elif isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "required"):
            tool_choice = {"type": "function", "function": {"name": tool_choice}}
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self, schema: dict[str, Any] | type, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[LanguageModelInput, Any]:
        """Schema in the prompt, parse, one repair retry: works whichever backend answers."""
        return structured_runnable(self, schema, include_raw=include_raw)


def _hit_chunk(message: AIMessage) -> ChatGenerationChunk:
    """A cache hit, as one stream chunk."""
    return ChatGenerationChunk(
        message=AIMessageChunk(
            content=message.content,
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
        )
    )


def _result(message: AIMessage) -> ChatResult:
    """A routed answer as LangChain's ``_generate`` returns it (callbacks see the route in ``llm_output``)."""
    return ChatResult(
        generations=[ChatGeneration(message=message)],
        llm_output={"aigc_route": message.response_metadata["aigc_route"]},
    )


def _chain(first: AIMessageChunk, rest: Iterator[AIMessageChunk]) -> Iterator[AIMessageChunk]:
    yield first
    yield from rest


def _estimate_tokens(messages: list[BaseMessage]) -> int:
    """About four characters a token plus a few per message: no tokenizer download needed."""
    return sum(len(m.text) // 4 + 4 for m in messages)


def _timeout(config: RouterConfig, model_id: str) -> dict[str, float]:
    return {"timeout": config.timeouts[model_id]} if model_id in config.timeouts else {}


def _auto_choice(config: ModelsConfig) -> str | None:
    """OpenAI when configured, else the configured local model, else the default local model when pulled."""
    if config.openai.configured:
        return f"openai:{config.openai.model}"
    return config.local.model or default_local_model()
