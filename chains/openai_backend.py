"""The OpenAI route: ``ChatOpenAI`` configured by us, error translation, and the moderation endpoint.

Works with api.openai.com and with any server that speaks the Chat Completions API (vLLM, TGI, Azure, LM Studio):
set ``base_url``. Retries are the router's job, so the client itself never retries. Async calls go through one
connection pool per event loop (:class:`LoopBoundAsyncClient`), so ``asyncio.run`` may be called again and again.
The pool keeps up to 256 idle connections (eval runs hold 64 and more calls in flight), and its keep-alive check of
an idle connection reads a socket found once (:class:`_ProbedStream`): the HTTP library's own check rebuilds the
stream's attribute table each time, on every idle connection at every request, which at 64 calls in flight cost
more than the rest of the client.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import select
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import openai
from langchain_openai import ChatOpenAI

from chains.config import OpenAISettings
from chains.errors import (
    AuthenticationFailed,
    BackendError,
    BackendTimeout,
    ContextWindowExceeded,
    InvalidRequest,
    ModelError,
    RateLimited,
    UnknownModel,
)

__all__ = ["LoopBoundAsyncClient", "ModerationResult", "classify_error", "create_openai_chat", "moderate"]

_PLACEHOLDER_KEY = "not-set"  # ChatOpenAI needs a value; sending it gets a clear 401 from a real API


def create_openai_chat(model: str, settings: OpenAISettings, **params: Any) -> ChatOpenAI:
    """A ``ChatOpenAI`` for ``model`` with our settings: explicit key and URL, no client retries, usage in streams."""
    key = settings.api_key.get_secret_value() if settings.api_key else _PLACEHOLDER_KEY
    return ChatOpenAI(
        model=model,
        base_url=settings.base_url,
        api_key=key,
        organization=settings.organization,
        timeout=params.pop("timeout", settings.timeout),
        max_retries=0,
        stream_usage=True,
        http_async_client=params.pop("http_async_client", None) or LoopBoundAsyncClient(),
        **params,
    )


class LoopBoundAsyncClient(openai.DefaultAsyncHttpxClient):
    """The async HTTP client of our ``ChatOpenAI``: it sends through one pooled client per event loop.

    A pooled connection belongs to the loop that opened it; shared across loops (LangChain caches one client per
    process), every second ``asyncio.run(model.ainvoke(...))`` fails with "Event loop is closed". Pools are created
    lazily for the running loop and dropped once their loop is closed.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool_kwargs = kwargs
        self._pools: dict[asyncio.AbstractEventLoop, openai.DefaultAsyncHttpxClient] = {}
        self._pools_lock = threading.Lock()

    def _pool(self) -> openai.DefaultAsyncHttpxClient:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None and not pool.is_closed:
            return pool  # the common case: no lock
        with self._pools_lock:
            for gone in [other for other in self._pools if other.is_closed()]:
                del self._pools[gone]  # its sockets close when collected; its loop cannot run a clean close now
            pool = self._pools.get(loop)
            if pool is None or pool.is_closed:
                kwargs = self._pool_kwargs if "transport" in self._pool_kwargs else {"transport": _transport()}
                pool = self._pools[loop] = openai.DefaultAsyncHttpxClient(**{**self._pool_kwargs, **kwargs})
        return pool

    async def send(self, request: Any, **kwargs: Any) -> Any:
        """Send on the running loop's own pool."""
        return await self._pool().send(request, **kwargs)

    async def aclose(self) -> None:
        """Close the running loop's pool and this client."""
        with self._pools_lock:
            pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()
        await super().aclose()


_POOL_LIMITS = {"max_connections": 1000, "max_keepalive_connections": 256, "keepalive_expiry": 5.0}
_PROBE_TTL_S = 0.005  # an idle connection found open is taken as open for this long


def _transport() -> Any:
    """The async transport of a pool: HTTP/1.1 with room for hundreds of idle connections and a cheap keep-alive
    check. Built with the HTTP library the ``openai`` client uses (httpx2 for openai >= 3, httpx before); should its
    internals differ from what this expects, the library's own check stays and only the limits change."""
    httpx = sys.modules[openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0]]
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(**_POOL_LIMITS))
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is not None and hasattr(backend, "connect_tcp"):
        pool._network_backend = _ProbedBackend(backend)  # type: ignore[union-attr]
    return transport


class _ProbedBackend:
    """A network backend that hands out :class:`_ProbedStream` s (everything else is the wrapped backend's)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> _ProbedStream:
        return _ProbedStream(await self._inner.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> _ProbedStream:
        return _ProbedStream(await self._inner.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ProbedStream:
    """A connection's stream whose ``is_readable`` check (is an idle keep-alive connection closed by the server?)
    polls a socket looked up once, instead of asking the stream's attribute table every time.

    The pool asks about every idle connection at every request it starts or finishes: at 64 calls in flight that is
    dozens of checks per call. A connection found open is not asked again for ``_PROBE_TTL_S`` (5 ms). The check
    is a race at any rate (a server may close a connection just after it was checked); the window stays far below
    any keep-alive timeout a server uses.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")
        self._open_at = -_PROBE_TTL_S  # when a check last found the connection open

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, *args: Any, **kwargs: Any) -> _ProbedStream:
        return _ProbedStream(await self._inner.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        if info != "is_readable" or self._socket is None:
            return self._inner.get_extra_info(info)
        now = time.monotonic()
        if now - self._open_at < _PROBE_TTL_S:
            return False
        readable = _readable(self._socket)
        if not readable:
            self._open_at = now
        return readable


def _readable(sock: Any) -> bool:
    """Whether a read would return at once (data or end of file); a closed socket counts as readable."""
    fd = sock.fileno()
    if fd < 0:
        return True
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([fd], [], [], 0)[0])
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


def classify_error(exc: BaseException, model: str) -> BaseException:
    """Translate an ``openai`` exception into our tree (other exceptions pass through unchanged)."""
    timeouts, transport_errors = _http_errors()
    if isinstance(exc, ModelError):
        return exc
    status = getattr(exc, "status_code", None)
    detail = _detail(exc)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return AuthenticationFailed(
            f"{model}: the API refused the credentials ({status}): {detail}. Check the API "
            f"key (OPENAI_API_KEY or models.openai.api_key); retrying cannot help",
            model=model,
            status=status,
        )
    if isinstance(exc, openai.RateLimitError):
        return RateLimited(
            f"{model}: rate limited (429): {detail}", model=model, status=429, retry_after=_retry_after(exc)
        )
    if isinstance(exc, (openai.APITimeoutError, *timeouts)):
        return BackendTimeout(f"{model}: no answer within the timeout", model=model)
    if isinstance(exc, (openai.APIConnectionError, *transport_errors)):
        return BackendError(f"{model}: connection failed: {detail}", model=model)
    if isinstance(exc, openai.NotFoundError):
        return UnknownModel(
            f"{model}: the API does not know this model or path (404): {detail}", model=model, status=404
        )
    if isinstance(exc, openai.BadRequestError) and "context_length" in f"{getattr(exc, 'code', '')} {detail}":
        return ContextWindowExceeded(
            f"{model}: the prompt is longer than the model's context window: {detail}", model=model, status=400
        )
    if isinstance(exc, openai.APIStatusError) and status is not None and 400 <= status < 500:
        return InvalidRequest(f"{model}: the API refused the request ({status}): {detail}", model=model, status=status)
    if isinstance(exc, openai.APIStatusError) and status is not None and status >= 500:
        return BackendError(f"{model}: server error {status}: {detail}", model=model, status=status)
    if isinstance(exc, json.JSONDecodeError | openai.APIResponseValidationError):
        return BackendError(f"{model}: the server sent a malformed response: {detail}", model=model)
    return exc


@functools.cache
def _http_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """Timeout and transport errors of the HTTP libraries present: openai >= 3 speaks httpx2, older ones httpx."""
    timeouts: list[type[BaseException]] = []
    transport: list[type[BaseException]] = []
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transport.append(module.TransportError)
    return tuple(timeouts), tuple(transport)


def _detail(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if message:
            return str(message)[:300]
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class ModerationResult:
    """One input's verdict from the moderation endpoint."""

    flagged: bool
    categories: dict[str, bool] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


def moderate(
    texts: list[str],
    settings: OpenAISettings,
    *,
    model: str = "omni-moderation-latest",
) -> list[ModerationResult]:
    """Classify texts with OpenAI's moderation endpoint (or a compatible server's)."""
    key = settings.api_key.get_secret_value() if settings.api_key else _PLACEHOLDER_KEY
    with openai.OpenAI(base_url=settings.base_url, api_key=key, timeout=settings.timeout, max_retries=0) as client:
        try:
            response = client.moderations.create(model=model, input=texts)
        except Exception as exc:
            raise classify_error(exc, f"openai:{model}") from None
    return [
        ModerationResult(
            r.flagged, dict(r.categories.model_dump(by_alias=True)), dict(r.category_scores.model_dump(by_alias=True))
        )
        for r in response.results
    ]
