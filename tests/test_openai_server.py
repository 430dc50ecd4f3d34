"""The local OpenAI-compatible server, driven through the real openai client and LangChain's ChatOpenAI."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from chains.testing import Answer, Fault, ModerationResult, OpenAIServer, load_script
from chains.testing.openai_server import schema_instance, tokenize

HI = [{"role": "user", "content": "hi there"}]


class AdCopy(BaseModel):
    """A structured answer for with_structured_output."""

    headline: str
    score: int = Field(ge=1)
    tags: list[str]
    tone: str | None


@pytest.fixture(scope="module")
def shared_server() -> Iterator[OpenAIServer]:
    with OpenAIServer(models=("gpt-test", "gpt-x")) as server:
        yield server


@pytest.fixture
def server(shared_server: OpenAIServer) -> OpenAIServer:
    shared_server.clear()
    return shared_server


@pytest.fixture
def client(server: OpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=5) as c:
        yield c


def chat_model(server: OpenAIServer, **kwargs: object) -> ChatOpenAI:
    options: dict[str, object] = {"stream_usage": True, "max_retries": 0, "timeout": 5} | kwargs
    return ChatOpenAI(base_url=server.base_url, api_key="sk-test", model="gpt-test", **options)


# ---------------------------------------------------------------------------------------------- completions


def test_plain_completion_has_openai_shape_and_usage(server: OpenAIServer, client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-test", messages=HI, seed=7)
    assert reply.object == "chat.completion"
    assert reply.model == "gpt-test"
    assert reply.id.startswith("chatcmpl-")
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "You said: hi there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == len(tokenize("You said: hi there"))
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert server.requests[0].body["seed"] == 7


def test_scripted_answers_are_fifo_then_default(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.script("first", Answer(content="second", usage={"prompt_tokens": 100, "completion_tokens": 1}))
    contents = [client.chat.completions.create(model="gpt-test", messages=HI) for _ in range(3)]
    assert [c.choices[0].message.content for c in contents] == ["first", "second", "You said: hi there"]
    assert contents[1].usage is not None and contents[1].usage.total_tokens == 101


def test_items_can_be_routed_by_model(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.script("shared")
    server.script("for x", model="gpt-x")
    x = client.chat.completions.create(model="gpt-x", messages=HI)
    other = client.chat.completions.create(model="gpt-test", messages=HI)
    assert (x.choices[0].message.content, other.choices[0].message.content) == ("for x", "shared")


def test_streaming_splits_words_and_ends_with_usage(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.script("Hello, streaming world")
    stream = client.chat.completions.create(
        model="gpt-test", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    content = [c for c in chunks if c.choices]
    assert [c.choices[0].delta.content for c in content] == ["Hello", ",", " streaming", " world"]
    assert content[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in content] == [None, None, None, "stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4


def test_n_choices(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-test", messages=HI, n=2)
    assert [c.index for c in reply.choices] == [0, 1]
    assert {c.message.content for c in reply.choices} == {"You said: hi there"}


def test_stop_truncates_at_the_first_stop_string(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.script("one two. three END four")
    reply = client.chat.completions.create(model="gpt-test", messages=HI, stop=["END", "."])
    assert reply.choices[0].message.content == "one two"
    assert reply.choices[0].finish_reason == "stop"


def test_max_tokens_truncates_with_finish_reason_length(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.script("one two three four five", "one two three four five")
    reply = client.chat.completions.create(model="gpt-test", messages=HI, max_tokens=2)
    newer = client.chat.completions.create(model="gpt-test", messages=HI, max_completion_tokens=3)
    assert (reply.choices[0].message.content, reply.choices[0].finish_reason) == ("one two", "length")
    assert (newer.choices[0].message.content, newer.choices[0].finish_reason) == ("one two three", "length")
    assert reply.usage is not None and reply.usage.completion_tokens == 2


def test_logprobs_are_deterministic_and_scriptable(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.script(Answer(top_logprobs={"1": -3.0, "5": -0.1}))  # an LLM judge's score token
    reply = client.chat.completions.create(model="gpt-test", messages=HI, logprobs=True, top_logprobs=3)
    again = client.chat.completions.create(model="gpt-test", messages=HI, logprobs=True, top_logprobs=2)
    first = reply.choices[0].logprobs.content[0]  # type: ignore[union-attr]
    assert reply.choices[0].message.content == "5"
    assert (first.token, first.logprob, first.bytes) == ("5", -0.1, [53])
    assert [(t.token, t.logprob) for t in first.top_logprobs][:2] == [("5", -0.1), ("1", -3.0)]
    assert len(first.top_logprobs) == 3
    tokens = again.choices[0].logprobs.content  # type: ignore[union-attr]
    assert "".join(t.token for t in tokens) == "You said: hi there"
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in tokens)


# ---------------------------------------------------------------------------------------------- LangChain


def test_chat_openai_invoke_and_stream_with_usage(server: OpenAIServer) -> None:
    llm = chat_model(server)
    message = llm.invoke("hello")
    assert message.content == "You said: hello"
    assert message.usage_metadata is not None and message.usage_metadata["output_tokens"] == 4
    server.script("Hello streaming world")
    chunks = list(llm.stream("hello"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.content == "Hello streaming world"
    assert total.usage_metadata is not None and total.usage_metadata["output_tokens"] == 3
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}


def test_chat_openai_n_and_logprobs(server: OpenAIServer) -> None:
    result = chat_model(server, n=2).generate([[HumanMessage("hi")]])
    assert len(result.generations[0]) == 2
    message = chat_model(server, logprobs=True, top_logprobs=2).invoke("hi")
    assert message.response_metadata["logprobs"]["content"][0]["token"] == "You"


def test_structured_output_fills_the_schema_or_uses_the_script(server: OpenAIServer) -> None:
    structured = chat_model(server).with_structured_output(AdCopy)
    unscripted = structured.invoke("write an ad")
    assert isinstance(unscripted, AdCopy) and unscripted.score == 1  # minimum respected
    assert server.requests[-1].body["response_format"]["type"] == "json_schema"
    server.script('{"headline": "Run far", "score": 4, "tags": ["shoes"], "tone": null}')
    assert structured.invoke("write an ad") == AdCopy(headline="Run far", score=4, tags=["shoes"], tone=None)


def test_bind_tools_returns_tool_calls(server: OpenAIServer) -> None:
    def get_weather(city: str) -> str:
        """Look up the weather."""
        return city

    server.script(Answer.tool("get_weather", {"city": "Paris"}))
    message = chat_model(server).bind_tools([get_weather]).invoke("weather in Paris?")
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert message.response_metadata["finish_reason"] == "tool_calls"
    forced = chat_model(server).with_structured_output(AdCopy, method="function_calling").invoke("ad")
    assert isinstance(forced, AdCopy)  # unscripted forced tool call: arguments generated from the schema


def test_tool_calls_stream_as_deltas(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.script(Answer.tool("get_weather", {"city": "Paris"}))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    chunks = list(client.chat.completions.create(model="gpt-test", messages=HI, tools=tools, stream=True))
    deltas = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert deltas[0].function.name == "get_weather" and deltas[0].id  # type: ignore[union-attr]
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"city": "Paris"}  # type: ignore[union-attr]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_async_client_and_chat_openai(server: OpenAIServer) -> None:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
        reply = await client.chat.completions.create(model="gpt-test", messages=HI)
        stream = await client.chat.completions.create(model="gpt-test", messages=HI, stream=True)
        pieces = [c.choices[0].delta.content async for c in stream]
    assert reply.choices[0].message.content == "".join(p or "" for p in pieces) == "You said: hi there"
    assert (await chat_model(server).ainvoke("async")).content == "You said: async"


# ---------------------------------------------------------------------------------------------- faults


def test_rate_limit_is_429_with_retry_after(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.script(Fault.rate_limit(retry_after=1.5))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-test", messages=HI)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1.5"
    assert caught.value.type == "rate_limit_error" and caught.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.server_error(), openai.InternalServerError),
        (Fault.server_error(status=503), openai.InternalServerError),
        (Fault.unauthorized(), openai.AuthenticationError),
        (Fault.reset(), openai.APIConnectionError),  # httpx ReadError: connection reset by peer
    ],
)
def test_error_faults(server: OpenAIServer, client: openai.OpenAI, fault: Fault, error: type[Exception]) -> None:
    server.script(fault)
    with pytest.raises(error):
        client.chat.completions.create(model="gpt-test", messages=HI)
    assert client.chat.completions.create(model="gpt-test", messages=HI).choices  # the next request is fine


def test_timeout_fault_times_the_client_out(server: OpenAIServer) -> None:
    server.script(Fault.timeout(2))
    started = time.monotonic()
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=0.5) as client:
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="gpt-test", messages=HI)
        assert time.monotonic() - started < 1.5
        assert client.chat.completions.create(model="gpt-test", messages=HI).choices


def test_malformed_json_is_an_error_not_a_success(server: OpenAIServer, client: openai.OpenAI) -> None:
    # Measured with openai 3.57: the body is decoded outside the client's error mapping, so the caller sees a plain
    # json.JSONDecodeError (a ValueError), not an openai.APIError, for both plain and streamed responses.
    server.script(Fault.malformed_json(), Fault.malformed_json())
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="gpt-test", messages=HI)
    with pytest.raises(json.JSONDecodeError):
        list(client.chat.completions.create(model="gpt-test", messages=HI, stream=True))


def test_truncated_stream_is_detectable(server: OpenAIServer, client: openai.OpenAI) -> None:
    # Measured: the chunks sent before the cut arrive, then iteration raises APIConnectionError (httpx's
    # RemoteProtocolError "incomplete chunked read"); none of the chunks carries a finish_reason.
    server.script(Fault.truncated_stream(after_chunks=2))
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="gpt-test", messages=HI, stream=True):
            received.append(chunk)
    assert len(received) == 2
    assert all(c.choices[0].finish_reason is None for c in received)


def test_truncated_plain_response_is_a_connection_error(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.script(Fault.truncated_stream())  # on a non-streaming request: half the announced body, then close
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-test", messages=HI)


def test_slow_first_token(server: OpenAIServer) -> None:
    server.script(Fault.slow_first_token(0.3), Fault.slow_first_token(1.0))
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=0.15) as client:
        started = time.monotonic()
        patient = client.with_options(timeout=2)
        chunks = list(patient.chat.completions.create(model="gpt-test", messages=HI, stream=True))
        assert time.monotonic() - started >= 0.3
        assert chunks[-1].choices[0].finish_reason == "stop"
        stream = client.chat.completions.create(model="gpt-test", messages=HI, stream=True)  # headers come at once
        with pytest.raises(openai.APITimeoutError):
            list(stream)  # ...but the first event is later than the read timeout


# ---------------------------------------------------------------------------------------------- other endpoints


def test_moderation_flags_listed_words_or_scripted_results(server: OpenAIServer, client: openai.OpenAI) -> None:
    result = client.moderations.create(input=["I will kill you", "What a nice day"])
    assert [r.flagged for r in result.results] == [True, False]
    assert result.results[0].categories.violence and result.results[0].category_scores.violence > 0.5
    server.script_moderation(ModerationResult(categories={"hate": 0.9}), ModerationResult(flagged=False))
    scripted = client.moderations.create(input=["anything", "kill"])
    assert [r.flagged for r in scripted.results] == [True, False]
    assert scripted.results[0].categories.hate and not scripted.results[0].categories.violence
    server.script_moderation(Fault.rate_limit())
    with pytest.raises(openai.RateLimitError):
        client.moderations.create(input="hello")


def test_models_and_unknown_paths(server: OpenAIServer, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["gpt-test", "gpt-x"]
    assert client.models.retrieve("gpt-x").id == "gpt-x"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{server.base_url}/nowhere", timeout=5)
    error = json.loads(caught.value.read())["error"]
    assert caught.value.code == 404 and set(error) >= {"message", "type", "code"}


# ---------------------------------------------------------------------------------------------- keys and recording


def test_api_key_is_required_and_never_recorded(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-live-abcdef1234567890xyz"
    caplog.set_level(logging.DEBUG, logger="chains.testing.openai_server")
    with OpenAIServer(api_key=secret) as server:
        wrong = openai.OpenAI(base_url=server.base_url, api_key="sk-wrong-key", max_retries=0)
        with wrong, pytest.raises(openai.AuthenticationError) as caught:
            wrong.chat.completions.create(model="gpt-test", messages=HI)
        with openai.OpenAI(base_url=server.base_url, api_key=secret, max_retries=0) as right:
            assert right.chat.completions.create(model="gpt-test", messages=HI).choices
        recorded = server.requests
        assert [r.headers["authorization"] for r in recorded] == ["Bearer ***", "Bearer ***"]
        seen = repr(recorded) + repr(server) + str(caught.value) + repr(caught.value.body) + caplog.text
    assert secret not in seen and "sk-wrong-key" not in seen


def test_requests_are_recorded_with_parsed_bodies(server: OpenAIServer, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-test", messages=HI, temperature=0.2)
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.body["temperature"] == 0.2 and request.headers["content-type"] == "application/json"
    server.clear()
    assert server.requests == []


def test_concurrent_requests_are_all_answered_once(server: OpenAIServer, client: openai.OpenAI) -> None:
    server.script(*(f"answer {i}" for i in range(32)))

    def ask(_: int) -> str:
        return client.chat.completions.create(model="gpt-test", messages=HI).choices[0].message.content or ""

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(ask, range(32)))
    assert sorted(answers) == sorted(f"answer {i}" for i in range(32))
    assert len(server.requests) == 32


def test_hundreds_of_clients_connecting_at_once_are_all_answered(server: OpenAIServer) -> None:
    async def crowd(count: int) -> list[str | BaseException]:
        clients = [
            openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=60)
            for _ in range(count)
        ]

        async def ask(client: openai.AsyncOpenAI, i: int) -> str:
            messages = [{"role": "user", "content": f"question {i}"}]
            response = await client.chat.completions.create(model="gpt-test", messages=messages)  # type: ignore[arg-type]
            return response.choices[0].message.content or ""

        try:
            return await asyncio.gather(*(ask(c, i) for i, c in enumerate(clients)), return_exceptions=True)
        finally:
            await asyncio.gather(*(c.close() for c in clients))

    answers = asyncio.run(crowd(256))  # one connection each, all opened together: more than any small backlog
    assert answers == [f"You said: question {i}" for i in range(256)]
    assert len(server.requests) == 256


# ---------------------------------------------------------------------------------------------- helpers and CLI


def test_tokens_join_back_and_schema_instances_validate() -> None:
    text = "Hello,  world! It's 42.\n"
    assert "".join(tokenize(text)) == text
    schema = AdCopy.model_json_schema()
    AdCopy.model_validate(schema_instance(schema))
    assert schema_instance({"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 2}) == ["a", "a"]


def test_script_file_and_command_line(tmp_path: Path) -> None:
    script = tmp_path / "answers.yaml"
    script.write_text(
        "- Hello from YAML\n- fault: rate_limit\n  retry_after: 2\n- {content: bye, finish_reason: stop}\n"
    )
    items = load_script(script)
    assert items[1] == Fault.rate_limit(retry_after=2) and items[2] == Answer(content="bye", finish_reason="stop")
    command = [sys.executable, "-m", "chains.testing.openai_server", "--port", "0", "--script", str(script)]
    restore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731 (a background run ignores it)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1], preexec_fn=restore_sigint
    ) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().split(" on ")[1].split()[0]
            with openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0) as client:
                reply = client.chat.completions.create(model="m", messages=HI)
                with pytest.raises(openai.RateLimitError):
                    client.chat.completions.create(model="m", messages=HI)
        finally:
            process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0  # Ctrl-C stops it cleanly
    assert reply.choices[0].message.content == "Hello from YAML"
