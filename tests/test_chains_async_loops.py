"""Async calls over the OpenAI route work on every event loop, not only the first (real client, real server)."""

from __future__ import annotations

import asyncio
import threading

import httpx2
import pytest

from chains import BackendError, ModelsConfig, Router, openai_backend
from chains.openai_backend import classify_error, create_openai_chat


@pytest.fixture
def server(openai_server):
    openai_server.clear()
    yield openai_server
    openai_server.clear()


def make_router(server) -> Router:
    return Router.from_config(
        ModelsConfig.model_validate(
            {"openai": {"base_url": server.base_url, "api_key": "sk-test", "model": "gpt-test", "timeout": 5.0}}
        )
    )


def test_a_fresh_event_loop_per_call_works_every_time(server) -> None:
    router = make_router(server)
    answers = [asyncio.run(router.ainvoke(f"hi {i}")).content for i in range(4)]
    assert answers == [f"You said: hi {i}" for i in range(4)]


def test_streams_on_fresh_loops_and_loops_in_threads(server) -> None:
    settings = ModelsConfig.model_validate({"openai": {"base_url": server.base_url}}).openai
    model = create_openai_chat("gpt-test", settings)

    async def stream(text: str) -> str:
        return "".join([str(chunk.content) async for chunk in model.astream(text)])

    assert [asyncio.run(stream(f"run {i}")) for i in range(3)] == [f"You said: run {i}" for i in range(3)]
    results: dict[int, str] = {}

    def in_thread(n: int) -> None:
        results[n] = asyncio.run(stream(f"thread {n}"))

    threads = [threading.Thread(target=in_thread, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: f"You said: thread {n}" for n in range(4)}
    assert asyncio.run(stream("last")) == "You said: last"
    client = model.http_async_client
    assert isinstance(client, openai_backend.LoopBoundAsyncClient)
    assert len(client._pools) == 1  # the pools of closed loops are dropped


def test_transport_errors_of_the_clients_http_library_are_classified() -> None:
    assert isinstance(classify_error(httpx2.ReadError("reset"), "openai:gpt-test"), BackendError)
