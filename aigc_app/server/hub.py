"""The models one server serves: model id -> backend, and how a chat request runs on it.

Served ids: every model the configuration names (``local.model``, the router's default, fallbacks and rule
targets, ``openai:<openai.model>`` when OpenAI is configured, and whatever ``auto`` resolves to) plus
``aigc:router``, the configured :class:`~chains.Router` (routing, fallback, cooldown, cache). Nothing else: a
client cannot make the server load an arbitrary folder.

A ``hf:`` model is one :class:`~chains.ChatTransformers` (the router's own backend object where the router has
it), so every HTTP client shares its one copy of the weights and its dynamic batcher. Requests to it skip
LangChain: the hub builds the engine's rows with ``ChatTransformers._request`` and submits them to the batcher,
streaming the text the engine reports per token. ``openai:`` models and the router run through LangChain's
``astream`` / ``ainvoke``. Either way a request becomes a stream of :class:`Delta` and :class:`Done` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import functools
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aigc_app.server.errors import ApiError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from chains import ChatTransformers, ModelsConfig, Router

__all__ = ["ROUTER_ID", "Delta", "Done", "GenParams", "ModelHub"]

ROUTER_ID = "aigc:router"


@dataclass(frozen=True)
class GenParams:
    """What a chat request asks of the model, validated already."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    response_format: dict[str, Any] | None = None

    def kwargs(self, index: int = 0) -> dict[str, Any]:
        """Keyword arguments for a LangChain chat model (row ``index`` of n gets seed + index)."""
        out: dict[str, Any] = {
            k: v
            for k, v in (
                ("max_tokens", self.max_tokens),
                ("temperature", self.temperature),
                ("top_p", self.top_p),
                ("response_format", self.response_format),
            )
            if v is not None
        }
        if self.seed is not None:
            out["seed"] = self.seed + index
        if self.stop:
            out["stop"] = list(self.stop)
        if self.logprobs:
            out["logprobs"] = True
            if self.top_logprobs:
                out["top_logprobs"] = self.top_logprobs
        return out


@dataclass(frozen=True)
class Delta:
    """New text of choice ``index`` (and the logprobs of its tokens, OpenAI's ``logprobs.content`` items)."""

    index: int
    text: str
    logprobs: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Done:
    """Choice ``index`` finished."""

    index: int
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class _Slots:
    """Rows queued or decoding per local model, and requests in flight on aigc:router (what 429 counts)."""

    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, model_id: str, rows: int, limit: int) -> None:
        if rows > limit:  # would never fit: a 429 would have the client retry for ever
            raise ApiError(400, f"n={rows} is over this server's queue limit of {limit} rows per model", param="n")
        with self.lock:
            busy = self.counts.get(model_id, 0)
            if busy + rows > limit:
                raise ApiError(
                    429,
                    f"{model_id} is busy: {busy} requests are queued or decoding (limit {limit}); retry shortly",
                    code="queue_full",
                    headers={"Retry-After": "1"},
                )
            self.counts[model_id] = busy + rows

    def give(self, model_id: str, rows: int = 1) -> None:
        with self.lock:
            self.counts[model_id] = max(0, self.counts.get(model_id, 0) - rows)


class ModelHub:
    """Served model ids and their backends, built lazily, once (see the module docstring)."""

    def __init__(self, config: ModelsConfig, *, max_queue: int = 256) -> None:
        self.config = config
        self.max_queue = max_queue
        self._lock = threading.Lock()
        self._router: Router | None = None
        self._router_error: Exception | None = None
        self._built = False
        self._models: dict[str, BaseChatModel] = {}
        self._slots = _Slots()

    # -- which models ---------------------------------------------------------------------------------

    def _build(self) -> None:
        with self._lock:
            if self._built:
                return
            from chains import Router
            from chains.errors import UnknownModel

            try:
                self._router = Router.from_config(self.config)
                self._models.update(self._router.backends)
            except UnknownModel as exc:  # nothing configured: only aigc:router answers, with this error
                self._router_error = exc
            self._built = True

    def ids(self) -> list[str]:
        """Every served model id, the router last."""
        self._build()
        config = self.config
        named = [config.local.model, *(m for m in self._models)]
        if config.openai.configured:
            named.append(f"openai:{config.openai.model}")
        return [*dict.fromkeys(m for m in named if m), ROUTER_ID]

    def resolve(self, model_id: str) -> BaseChatModel:
        """The backend serving ``model_id``; an id not served is a 404 naming the served ids and the nearest."""
        ids = self.ids()
        if model_id == ROUTER_ID:
            if self._router is None:
                raise self._router_error or RuntimeError("no router")
            return self._router
        if model_id not in ids:
            near = difflib.get_close_matches(model_id, ids, n=2, cutoff=0.5)
            hint = f" (did you mean {' or '.join(near)}?)" if near else ""
            raise ApiError(
                404,
                f"model {model_id!r} is not served here{hint}. Served models: {', '.join(ids)} "
                f"(GET /v1/models lists them; add others to the models section of aigc.yaml)",
                param="model",
                code="model_not_found",
            )
        with self._lock:
            model = self._models.get(model_id)
            if model is None:
                from chains import ModelRegistry

                model = self._models[model_id] = ModelRegistry().create(model_id, self.config)
        return model

    def warm(self) -> list[str]:
        """Load the weights of every served local model now (the CLI does this before listening)."""
        from chains import ChatTransformers

        loaded = []
        for model_id in self.ids():
            if model_id != ROUTER_ID and isinstance(model := self.resolve(model_id), ChatTransformers):
                _ = model.engine
                loaded.append(model_id)
        return loaded

    # -- running a request ----------------------------------------------------------------------------

    def generate(
        self, model_id: str, messages: list[BaseMessage], params: GenParams, n: int = 1, *, stream: bool = True
    ) -> AsyncIterator[Delta | Done]:
        """The events of ``n`` choices for one request (resolving the model first: errors raise here)."""
        from chains import ChatTransformers

        model = self.resolve(model_id)
        if isinstance(model, ChatTransformers):
            if params.temperature is None and params.top_p is not None and params.top_p < 1:
                raise ApiError(
                    400,
                    f"top_p {params.top_p} would be ignored: on {model_id} an omitted temperature means greedy "
                    f"decoding; send a temperature too (1 is OpenAI's default)",
                    param="top_p",
                )
            return self._local(model_id, model, messages, params, n)
        return self._langchain(model_id, model, messages, params, n, stream=stream)

    async def _local(
        self, model_id: str, chat: ChatTransformers, messages: list[BaseMessage], params: GenParams, n: int
    ) -> AsyncIterator[Delta | Done]:
        self._slots.take(model_id, n, self.max_queue)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Delta | Done | BaseException] = asyncio.Queue()
        futures: list[Any] = []
        rows: list[Any] = []
        try:
            base = await asyncio.to_thread(chat._request, messages, None, params.kwargs())
            for index in range(n):
                seed = None if params.seed is None else params.seed + index
                row = dataclasses.replace(base, seed=seed, on_text=_text_pusher(loop, events, index))
                rows.append(row)
                future = chat._submit(row)
                futures.append(future)
                # Slots free when the row ends in the engine (a cancelled row that never ran included).
                future.add_done_callback(functools.partial(self._row_done, model_id, loop, events, index))
        except BaseException:
            self._slots.give(model_id, n - len(futures))
            _stop_rows(rows, futures)
            raise
        try:
            async for event in _drain(events, n):
                yield event
        finally:
            _stop_rows(rows, futures)

    def _row_done(
        self, model_id: str, loop: asyncio.AbstractEventLoop, events: asyncio.Queue, index: int, future: Any
    ) -> None:
        """A row ended in the engine (or was cancelled before it ran): free its slot, tell the request."""
        self._slots.give(model_id)
        _push_done(loop, events, index, future)

    async def _langchain(
        self,
        model_id: str,
        model: BaseChatModel,
        messages: list[BaseMessage],
        params: GenParams,
        n: int,
        *,
        stream: bool,
    ) -> AsyncIterator[Delta | Done]:
        from chains.openai_backend import classify_error

        limited = model_id == ROUTER_ID  # mostly local backends: the router's requests have a queue limit too
        if limited:
            self._slots.take(model_id, n, self.max_queue)
        events: asyncio.Queue[Delta | Done | BaseException] = asyncio.Queue()

        async def run(index: int) -> None:
            try:
                if stream:
                    await _stream_choice(model, messages, params.kwargs(index), index, events)
                else:
                    message = await model.ainvoke(messages, **params.kwargs(index))
                    await _put_message(message, index, events, final=True)
            except Exception as exc:  # the openai client's errors become ours (and so get their status)
                await events.put(classify_error(exc, model_id))

        tasks = [asyncio.create_task(run(i)) for i in range(n)]
        try:
            async for event in _drain(events, n):
                yield event
        finally:
            for task in tasks:
                task.cancel()
            if limited:
                self._slots.give(model_id, n)


async def _drain(events: asyncio.Queue, n: int) -> AsyncIterator[Delta | Done]:
    """The events of ``n`` choices until each has had its Done; an exception put in the queue is raised."""
    finished = 0
    while finished < n:
        event = await events.get()
        if isinstance(event, BaseException):
            raise event
        finished += isinstance(event, Done)
        yield event


async def _stream_choice(
    model: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any], index: int, events: asyncio.Queue
) -> None:
    total = None
    async for chunk in model.astream(messages, **kwargs):
        total = chunk if total is None else total + chunk
        await _put_message(chunk, index, events, final=False)
    if total is None:
        from chains.errors import StreamInterrupted

        raise StreamInterrupted("the backend's stream ended before any content")
    await _put_done(total, index, events)


async def _put_message(message: Any, index: int, events: asyncio.Queue, *, final: bool) -> None:
    text = message.content if isinstance(message.content, str) else message.text
    logprobs = (message.response_metadata.get("logprobs") or {}).get("content")
    if text or logprobs:
        await events.put(Delta(index, text, [_with_bytes(e) for e in logprobs] if logprobs else None))
    if final:
        await _put_done(message, index, events)


async def _put_done(message: Any, index: int, events: asyncio.Queue) -> None:
    usage = message.usage_metadata or {}
    finish = message.response_metadata.get("finish_reason") or "stop"
    await events.put(Done(index, finish, int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))))


def _stop_rows(rows: list[Any], futures: list[Any]) -> None:
    """End the rows of a request nobody waits for any more (the client left, or another row failed): a row not
    yet admitted is cancelled; a decoding one ends at its next token, as the engine checks each row's budget
    (``max_tokens``) after every token. Rows of other requests in the same batch go on untouched."""
    for row, future in zip(rows, futures, strict=False):
        if not future.done() and not future.cancel():
            row.max_tokens = 0


def _text_pusher(loop: asyncio.AbstractEventLoop, events: asyncio.Queue, index: int) -> Any:
    """The engine's per-token callback (called on the decoding thread): queue a Delta on the request's loop."""

    def push(text: str, logprobs: list[Any]) -> None:
        entries = [_token_logprob(t) for t in logprobs] if logprobs else None
        _call_soon(loop, events, Delta(index, text, entries))

    return push


def _push_done(loop: asyncio.AbstractEventLoop, events: asyncio.Queue, index: int, future: Any) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        _call_soon(loop, events, error)
        return
    result = future.result()
    _call_soon(loop, events, Done(index, result.finish_reason, result.prompt_tokens, result.completion_tokens))


def _call_soon(loop: asyncio.AbstractEventLoop, events: asyncio.Queue, item: Any) -> None:
    """Never raise into the engine: an exception there would fail every row of the batch."""
    with contextlib.suppress(RuntimeError):  # the loop is closed (the server stopped): nobody is waiting
        loop.call_soon_threadsafe(events.put_nowait, item)


def _token_logprob(entry: Any) -> dict[str, Any]:
    return {
        "token": entry.token,
        "logprob": entry.logprob,
        "bytes": list(entry.token.encode()),
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in entry.top_logprobs],
    }


def _with_bytes(entry: dict[str, Any]) -> dict[str, Any]:
    token = str(entry.get("token", ""))
    top = [{**t, "bytes": t.get("bytes") or list(str(t["token"]).encode())} for t in entry.get("top_logprobs") or []]
    return {**entry, "bytes": entry.get("bytes") or list(token.encode()), "top_logprobs": top}
