"""Many HTTP clients on one local model: batched decodes give each client its own answer, the queue limit gives
429 with Retry-After, and a client that leaves mid-stream frees its place."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from aigc_app.server import ServeSettings

TOPICS = [f"topic number {i} about {word}" for i, word in enumerate(["sea", "sky", "tea", "code"] * 16)]


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Tell me about {TOPICS[i]}."}]


@pytest.mark.parametrize("sampling", [{}, {"temperature": 1.0}], ids=["greedy", "seeded"])
def test_64_concurrent_streams_match_sequential_calls(aigc_server, tiny_model_path: Path, sampling: dict) -> None:
    """Greedy, and sampled with a seed per client (seed i): the random-weight model's greedy answers repeat
    across prompts, the seeded ones differ per client, so an answer sent to the wrong client would show."""
    model = f"hf:{tiny_model_path}"
    params = [{"max_tokens": 16, **sampling, **({"seed": i} if sampling else {})} for i in range(64)]
    sync = openai.OpenAI(base_url=aigc_server.base_url + "/v1", api_key="unused", max_retries=0)
    expected = [
        sync.chat.completions.create(model=model, messages=_messages(i), **params[i]).choices[0].message.content
        for i in range(64)
    ]
    if sampling:
        assert len(set(expected)) > 48

    async def one(client: openai.AsyncOpenAI, i: int) -> str:
        stream = await client.chat.completions.create(model=model, messages=_messages(i), stream=True, **params[i])
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def main() -> list[str]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        http = openai.DefaultAsyncHttpxClient(limits=limits)
        async with openai.AsyncOpenAI(
            base_url=aigc_server.base_url + "/v1", api_key="unused", max_retries=0, http_client=http
        ) as client:
            return await asyncio.gather(*(one(client, i) for i in range(64)))

    assert asyncio.run(main()) == expected


@pytest.fixture(scope="module")
def small_queue(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory, serve_hermetic):
    folder = tmp_path_factory.mktemp("serve-queue")
    config = folder / "aigc.yaml"
    config.write_text(yaml.safe_dump({"models": {"local": {"model": f"hf:{tiny_model_path}"}}}))
    with serve_hermetic(ServeSettings(config=config, port=0, max_queue=2, store=folder / "r.db")) as server:
        yield server


def test_over_the_queue_limit_is_429_with_retry_after(small_queue, tiny_model_path: Path) -> None:
    body = {"model": f"hf:{tiny_model_path}", "messages": _messages(0), "max_tokens": 200}

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=small_queue.base_url, timeout=60) as http:
            return await asyncio.gather(*(http.post("/v1/chat/completions", json=body) for _ in range(10)))

    responses = asyncio.run(main())
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 429 in statuses and set(statuses) == {200, 429}
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "rate_limit_error" and "limit 2" in refused.json()["error"]["message"]
    # n rows count as n places: n over the limit never fits, so it is a 400 (a 429 would be retried for ever)
    too_many = httpx.post(small_queue.base_url + "/v1/chat/completions", json={**body, "n": 3}, timeout=30)
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "n"
    routed = httpx.post(small_queue.base_url + "/v1/chat/completions", json={**body, "model": "aigc:router", "n": 3})
    assert routed.status_code == 400 and "queue limit of 2" in routed.json()["error"]["message"]  # the router too

    pair = httpx.post(small_queue.base_url + "/v1/chat/completions", json={**body, "n": 2, "max_tokens": 2})
    assert pair.status_code == 200 and len(pair.json()["choices"]) == 2  # n equal to the limit fits an idle server


def test_a_client_that_leaves_mid_stream_stops_its_rows(small_queue, tiny_model_path: Path) -> None:
    """Two streams asking for 900 tokens each, dropped after their first chunk: their rows end within a few
    tokens (the batcher's row-steps count stays far below 1,800) and their places in the queue come free."""
    from chains import ChatTransformers
    from chains.local import _POOL

    batcher = _POOL.get(ChatTransformers(model=str(tiny_model_path))).batcher  # the server's one loaded copy
    body = {"model": f"hf:{tiny_model_path}", "messages": _messages(1), "max_tokens": 900, "stream": True}
    before = batcher.stats.row_steps
    for _ in range(2):  # max_queue streams
        with httpx.stream("POST", small_queue.base_url + "/v1/chat/completions", json=body, timeout=30) as response:
            assert response.status_code == 200
            next(response.iter_lines())
    short = {**body, "max_tokens": 4, "stream": False}
    deadline = time.monotonic() + 20
    while (
        answer := httpx.post(small_queue.base_url + "/v1/chat/completions", json=short, timeout=30)
    ).status_code == 429:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
    assert batcher.stats.row_steps - before < 300


def test_a_client_that_gives_up_on_a_json_answer_stops_its_rows(small_queue, tiny_model_path: Path) -> None:
    from chains import ChatTransformers
    from chains.local import _POOL

    batcher = _POOL.get(ChatTransformers(model=str(tiny_model_path))).batcher
    body = {"model": f"hf:{tiny_model_path}", "messages": _messages(2), "max_tokens": 900}
    before = batcher.stats.row_steps
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(small_queue.base_url + "/v1/chat/completions", json=body, timeout=httpx.Timeout(30, read=0.3))
    deadline = time.monotonic() + 30
    while batcher.stepper.pending() and time.monotonic() < deadline:  # the server notices within 0.5 s
        time.sleep(0.05)
    assert not batcher.stepper.pending()
    assert batcher.stats.row_steps - before < 600
