"""The router's short paths (no LangChain run when nobody listens, backends called directly) keep every feature:
metadata, usage, callbacks reported once, backend callbacks, LangChain's cache; and the pooled async client keeps
its connections at 64 calls in flight and notices connections the server closed. Real client, real server."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.globals import set_llm_cache
from langchain_core.messages import HumanMessage

from chains import ModelsConfig, Router
from chains.openai_backend import _ProbedBackend, _ProbedStream, _readable
from chains.testing import Answer, Fault

PROMPT = [HumanMessage("Write a tagline for trail shoes.")]
MODEL = "openai:gpt-test"


@pytest.fixture
def server(openai_server):
    openai_server.clear()
    yield openai_server
    openai_server.clear()


def make_router(server, **router: Any) -> Router:
    config = ModelsConfig.model_validate(
        {
            "openai": {"base_url": server.base_url, "api_key": "sk-test", "model": "gpt-test", "timeout": 5.0},
            "router": {"retry": {"base_delay_s": 0.01, "max_delay_s": 0.02}, **router},
        }
    )
    return Router.from_config(config)


def chats(server) -> int:
    return sum(1 for r in server.requests if r.path.endswith("/chat/completions"))


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts = 0
        self.ends: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts += 1

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends.append(response)


class AsyncRecorder(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.starts = 0
        self.ends: list[Any] = []

    async def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts += 1

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends.append(response)


def test_an_unobserved_call_carries_what_a_langchain_run_would(server) -> None:
    router = make_router(server)
    server.script(Answer(content="Grip that holds.", usage={"prompt_tokens": 7, "completion_tokens": 3}))
    fast = router.invoke(PROMPT)
    observed = router.invoke(PROMPT, {"callbacks": [Recorder()]})
    assert fast.content == "Grip that holds." and fast.usage_metadata["input_tokens"] == 7
    assert fast.response_metadata["aigc_route"] == {"backend": MODEL, "attempts": 1, "tried": [], "cached": False}
    for key in ("finish_reason", "model_name", "model_provider", "token_usage", "system_fingerprint", "id"):
        assert key in fast.response_metadata and key in observed.response_metadata, key
    assert fast.id and fast.id.startswith("lc_run-") and observed.id.startswith("lc_run-")
    assert fast.id != observed.id


def test_callbacks_see_one_run_with_the_route_sync_and_async(server) -> None:
    router = make_router(server)
    recorder = Recorder()
    router.invoke(PROMPT, {"callbacks": [recorder]})
    assert recorder.starts == 1 and len(recorder.ends) == 1
    assert recorder.ends[0].llm_output["aigc_route"]["backend"] == MODEL
    arecorder = AsyncRecorder()
    asyncio.run(router.ainvoke(PROMPT, {"callbacks": [arecorder]}))
    assert arecorder.starts == 1 and len(arecorder.ends) == 1
    assert chats(server) == 2


def test_a_backends_own_callbacks_still_fire(server) -> None:
    router = make_router(server)
    own = Recorder()
    router.backends[MODEL].callbacks = [own]
    router.invoke(PROMPT)
    asyncio.run(router.ainvoke(PROMPT))
    assert own.starts == 2 and len(own.ends) == 2


def test_langchains_global_cache_is_honoured(server) -> None:
    router = make_router(server)
    set_llm_cache(InMemoryCache())
    try:
        first = router.invoke(PROMPT).content
        second = router.invoke(PROMPT).content
    finally:
        set_llm_cache(None)
    assert first == second and chats(server) == 1


def test_retries_and_fallbacks_work_on_the_short_path(server) -> None:
    router = make_router(server, fallbacks=["openai:gpt-big"])
    server.script(Fault.server_error(503), "second try")
    answer = router.invoke(PROMPT)
    assert answer.content == "second try" and answer.response_metadata["aigc_route"]["attempts"] == 2
    server.script(Fault.unauthorized())
    with pytest.raises(Exception, match="refused the credentials"):
        asyncio.run(router.ainvoke(PROMPT))  # never retried, never falls back
    server.script(*[Fault.server_error(500)] * 3, model="gpt-test")
    server.script("from the fallback", model="gpt-big")
    answer = asyncio.run(router.ainvoke(PROMPT))
    assert answer.content == "from the fallback"
    assert answer.response_metadata["aigc_route"]["backend"] == "openai:gpt-big"


def _pool_of(router: Router) -> Any:
    client = router.backends[MODEL].http_async_client
    (pool,) = client._pools.values()
    return pool._transport._pool


def test_64_calls_in_flight_reuse_their_connections(server) -> None:
    router = make_router(server)

    async def waves() -> tuple[list[str], Any]:
        answers = []
        for wave in range(3):
            batch = await asyncio.gather(*(router.ainvoke(f"wave {wave} call {i}") for i in range(64)))
            answers += [a.content for a in batch]
        return answers, _pool_of(router)

    answers, pool = asyncio.run(waves())
    assert answers == [f"You said: wave {w} call {i}" for w in range(3) for i in range(64)]
    assert isinstance(pool._network_backend, _ProbedBackend)
    assert 0 < len(pool.connections) <= 64  # kept alive between waves (a 20-connection keep-alive would churn)
    assert all(isinstance(c._connection._network_stream, _ProbedStream) for c in pool.connections)


def test_a_connection_the_server_closed_is_noticed_before_it_is_used(server) -> None:
    backend = make_router(server).backends[MODEL]  # the backend alone: no router retry could hide a failure

    async def twice() -> list[str]:
        first = await backend.ainvoke("before")
        server._httpd.close_connections()  # the server drops its idle keep-alive connections
        await asyncio.sleep(0.05)
        return [first.content, (await backend.ainvoke("after")).content]

    assert asyncio.run(twice()) == ["You said: before", "You said: after"]


def test_readable_tells_an_idle_socket_from_a_closed_one() -> None:
    ours, theirs = socket.socketpair()
    try:
        assert _readable(ours) is False
        theirs.close()
        assert _readable(ours) is True
    finally:
        ours.close()
    assert _readable(ours) is True  # closed here: fileno() is -1


class _Inner:
    """The least a network stream needs for _ProbedStream: its socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, info: str) -> object:
        return self.sock if info == "socket" else None


def test_an_open_connection_is_trusted_for_the_probe_window_then_checked_again() -> None:
    import time

    from chains.openai_backend import _PROBE_TTL_S

    ours, theirs = socket.socketpair()
    try:
        stream = _ProbedStream(_Inner(ours))
        assert stream.get_extra_info("is_readable") is False
        theirs.close()
        assert stream.get_extra_info("is_readable") is False  # found open moments ago: not asked again
        time.sleep(_PROBE_TTL_S * 2)
        assert stream.get_extra_info("is_readable") is True  # asked again: the server closed it
        assert stream.get_extra_info("socket") is ours
    finally:
        ours.close()
