"""`aigc serve`'s OpenAI-compatible API, driven by the real openai client and LangChain's ChatOpenAI over HTTP.

The server (fixture ``aigc_server``) serves the tiny random-weight model as ``hf:<folder>`` and ``aigc:router``;
a second one here also proxies ``openai:gpt-test`` to the scripted OpenAI-compatible server.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from aigc_app.server import ServeSettings

HI = [{"role": "user", "content": "Say something about the sea."}]


@pytest.fixture(scope="module")
def model(tiny_model_path: Path) -> str:
    return f"hf:{tiny_model_path}"


@pytest.fixture(scope="module")
def client(aigc_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=aigc_server.base_url + "/v1", api_key="unused", max_retries=0)


def _status(call) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as info:
        call()
    return info.value


def test_models_lists_the_configured_model_and_the_router(client: openai.OpenAI, model: str) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == [model, "aigc:router"]
    assert client.models.retrieve("aigc:router").owned_by == "aigc"
    error = _status(lambda: client.models.retrieve(model + "x"))
    assert error.status_code == 404
    assert model in error.body["message"] and "did you mean" in error.body["message"]


def test_invoke_answers_with_usage_and_a_finish_reason(client: openai.OpenAI, model: str) -> None:
    answer = client.chat.completions.create(model=model, messages=HI, max_tokens=12)
    choice = answer.choices[0]
    assert answer.object == "chat.completion" and answer.model == model
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert answer.usage.completion_tokens <= 12 and answer.usage.prompt_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_max_completion_tokens_is_the_budget(client: openai.OpenAI, model: str) -> None:
    answer = client.chat.completions.create(model=model, messages=HI, max_completion_tokens=3)
    assert answer.usage.completion_tokens == 3 and answer.choices[0].finish_reason == "length"


def test_stream_gives_the_same_greedy_text_and_usage_last(client: openai.OpenAI, model: str) -> None:
    whole = client.chat.completions.create(model=model, messages=HI, max_tokens=16)
    chunks = list(
        client.chat.completions.create(
            model=model, messages=HI, max_tokens=16, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_raw_stream_ends_with_done(aigc_server, model: str) -> None:
    body = {"model": model, "messages": HI, "max_tokens": 4, "stream": True}
    with httpx.stream("POST", aigc_server.base_url + "/v1/chat/completions", json=body, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2].removeprefix("data: "))["choices"][0]["finish_reason"] == "length"


def test_async_client_and_n_choices(aigc_server, model: str) -> None:
    async def main() -> tuple[list[str], list[str]]:
        client = openai.AsyncOpenAI(base_url=aigc_server.base_url + "/v1", api_key="unused", max_retries=0)
        greedy = await client.chat.completions.create(model=model, messages=HI, max_tokens=10, n=3)
        sampled = await client.chat.completions.create(
            model=model, messages=HI, max_tokens=10, n=3, temperature=1.5, seed=7
        )
        await client.close()
        return [c.message.content for c in greedy.choices], [c.message.content for c in sampled.choices]

    greedy, sampled = asyncio.run(main())
    assert len(greedy) == 3 and len(set(greedy)) == 1  # greedy rows decode alike
    assert len(set(sampled)) > 1  # each row has its own seed (seed + index)


def test_seed_makes_sampling_repeatable(client: openai.OpenAI, model: str) -> None:
    def ask() -> str:
        return (
            client.chat.completions.create(model=model, messages=HI, max_tokens=10, temperature=1.0, seed=3)
            .choices[0]
            .message.content
        )

    assert ask() == ask()


def test_stop_cuts_the_answer_before_the_stop_string(client: openai.OpenAI, model: str) -> None:
    full = client.chat.completions.create(model=model, messages=HI, max_tokens=24).choices[0].message.content
    assert len(full) > 6
    stop = full[3:6]
    cut = client.chat.completions.create(model=model, messages=HI, max_tokens=24, stop=[stop]).choices[0]
    assert cut.message.content == full[: full.index(stop)]
    assert cut.finish_reason == "stop"


def test_logprobs_in_openai_shape_json_and_stream(client: openai.OpenAI, model: str) -> None:
    answer = client.chat.completions.create(model=model, messages=HI, max_tokens=8, logprobs=True, top_logprobs=3)
    content = answer.choices[0].logprobs.content
    assert len(content) == answer.usage.completion_tokens
    assert "".join(t.token for t in content) == answer.choices[0].message.content
    for token in content:
        assert token.logprob <= 0 and len(token.top_logprobs) == 3 and token.bytes == list(token.token.encode())
        assert token.top_logprobs[0].logprob >= token.logprob - 1e-6  # greedy: the chosen token is the top one
    streamed = client.chat.completions.create(
        model=model, messages=HI, max_tokens=8, logprobs=True, top_logprobs=3, stream=True
    )
    tokens = [t.token for c in streamed if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert tokens == [t.token for t in content]


def test_json_schema_answer_parses_and_matches(client: openai.OpenAI, model: str) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer", "maximum": 150}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    answer = client.chat.completions.create(
        model=model,
        messages=HI,
        max_tokens=64,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}},
    )
    value = json.loads(answer.choices[0].message.content)
    assert set(value) == {"name", "age"}
    assert isinstance(value["name"], str) and len(value["name"]) <= 12 and isinstance(value["age"], int)
    assert value["age"] <= 150


def test_json_object_answer_parses(client: openai.OpenAI, model: str) -> None:
    answer = client.chat.completions.create(
        model=model, messages=HI, max_tokens=48, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(answer.choices[0].message.content), dict)


def test_router_serves_through_its_default(client: openai.OpenAI, model: str) -> None:
    direct = client.chat.completions.create(model=model, messages=HI, max_tokens=8).choices[0].message.content
    routed = client.chat.completions.create(model="aigc:router", messages=HI, max_tokens=8)
    assert routed.model == "aigc:router" and routed.choices[0].message.content == direct
    streamed = client.chat.completions.create(model="aigc:router", messages=HI, max_tokens=8, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == direct


def test_langchain_chat_openai_invoke_stream_async_batch(aigc_server, model: str) -> None:
    from langchain_openai import ChatOpenAI

    from chains.openai_backend import LoopBoundAsyncClient

    chat = ChatOpenAI(
        model=model,
        base_url=aigc_server.base_url + "/v1",
        api_key="unused",
        max_tokens=8,
        stream_usage=True,
        # Not LangChain's process-wide async client: asyncio.run here would leave it bound to a closed loop.
        http_async_client=LoopBoundAsyncClient(),
    )
    answer = chat.invoke("Hello there")
    assert answer.content and answer.usage_metadata["output_tokens"] <= 8
    assert "".join(c.content for c in chat.stream("Hello there")) == answer.content
    assert asyncio.run(chat.ainvoke("Hello there")).content == answer.content
    assert [m.content for m in chat.batch(["Hello there", "Hello there"])] == [answer.content] * 2


def test_bad_requests_get_400_naming_the_parameter(client: openai.OpenAI, model: str) -> None:
    unknown = _status(lambda: client.chat.completions.create(model=model, messages=HI, extra_body={"colour": 1}))
    assert unknown.status_code == 400 and unknown.body["param"] == "colour"
    assert unknown.body["type"] == "invalid_request_error" and "max_tokens" in unknown.body["message"]
    tools = _status(lambda: client.chat.completions.create(model=model, messages=HI, extra_body={"tools": []}))
    assert tools.status_code == 400 and "tool calling is not supported" in tools.body["message"]
    hot = _status(lambda: client.chat.completions.create(model=model, messages=HI, temperature=5))
    assert hot.status_code == 400 and hot.body["param"] == "temperature"
    long = _status(lambda: client.chat.completions.create(model=model, messages=HI, max_tokens=100_000))
    assert long.status_code == 400 and "limit of 4096" in long.body["message"]
    empty = _status(lambda: client.chat.completions.create(model=model, messages=[]))
    assert empty.status_code == 400 and empty.body["param"] == "messages"


def test_malformed_response_format_and_stream_options_are_400_not_500(client: openai.OpenAI, model: str) -> None:
    create = client.chat.completions.create
    for fmt in ({"type": "json_schema"}, {"type": "json_schema", "json_schema": {"name": "x"}}):
        for stream in (False, True):
            error = _status(lambda f=fmt, s=stream: create(model=model, messages=HI, response_format=f, stream=s))
            assert error.status_code == 400 and error.body["param"] == "response_format", error.body
            assert "the JSON Schema the answer must match" in error.body["message"]
    stray = _status(lambda: create(model=model, messages=HI, response_format={"type": "text", "json_schema": {}}))
    assert stray.status_code == 400 and "only read with type json_schema" in stray.body["message"]
    bad_schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "wat"}}}
    refused = _status(lambda: create(model=model, messages=HI, response_format=bad_schema))
    assert refused.status_code == 400 and "cannot be enforced" in refused.body["message"]
    tool_calls = [{"role": "assistant", "content": "", "tool_calls": [{"id": "1"}]}, *HI]
    history = _status(lambda: create(model=model, messages=tool_calls))
    assert history.status_code == 400 and history.body["param"] == "messages.0.tool_calls"
    assert "not supported" in history.body["message"]
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]
    pictured = _status(lambda: create(model=model, messages=image))
    assert pictured.status_code == 400 and pictured.body["param"] == "messages.0.content"
    assert "'image_url' is not supported" in pictured.body["message"]
    typo = _status(lambda: create(model=model, messages=[{**HI[0], "contnet": "x"}]))
    assert typo.status_code == 400 and typo.body["param"] == "messages.0.contnet"
    # the client's own answer message, dumped, goes back into the history as it is (nulls for tools and audio)
    said = create(model=model, messages=HI, max_tokens=2).choices[0].message
    assert create(model=model, messages=[*HI, said.model_dump(), *HI], max_tokens=2).choices[0].message.content
    huge = _status(lambda: create(model=model, messages=HI, seed=2**70, temperature=1))  # torch takes 64 bits
    assert huge.status_code == 400 and huge.body["param"] == "seed"
    nucleus = _status(lambda: create(model=model, messages=HI, top_p=0.5))  # greedy here: top_p would do nothing
    assert nucleus.status_code == 400 and nucleus.body["param"] == "top_p" and "temperature" in nucleus.body["message"]
    assert create(model=model, messages=HI, top_p=0.5, temperature=1, seed=1, max_tokens=2).choices[0].message.content
    options = _status(lambda: create(model=model, messages=HI, stream_options={"include_usage": True}))
    assert options.status_code == 400 and options.body["param"] == "stream_options"


def test_openapi_documents_the_openai_routes_bodies_and_answers(aigc_server, model: str) -> None:
    import jsonschema

    schema = httpx.get(aigc_server.base_url + "/openapi.json").raise_for_status().json()
    chat = schema["paths"]["/v1/chat/completions"]["post"]
    body = chat["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.validate({"model": model, "messages": HI, "n": 2, "stop": ["."], "stream": True}, body)
    with pytest.raises(jsonschema.ValidationError):  # the documented body refuses what the server refuses
        jsonschema.validate({"model": model, "messages": HI, "colour": 1}, body)
    answers = chat["responses"]
    assert answers["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatCompletion")
    assert "text/event-stream" in answers["200"]["content"] and {"400", "404", "413", "429"} <= set(answers)
    moderation = schema["paths"]["/v1/moderations"]["post"]
    assert set(moderation["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {"input", "model"}
    listed = schema["paths"]["/v1/models"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["$ref"].endswith("/ModelList") and "$defs" not in json.dumps(schema)


def test_unknown_model_is_404_listing_served_ids(client: openai.OpenAI, model: str) -> None:
    error = _status(lambda: client.chat.completions.create(model="aigc:ruoter", messages=HI))
    assert error.status_code == 404 and error.body["code"] == "model_not_found"
    assert "aigc:router" in error.body["message"] and "did you mean aigc:router" in error.body["message"]


def test_prompt_over_the_context_window_is_413(client: openai.OpenAI, model: str) -> None:
    huge = [{"role": "user", "content": "sea " * 3000}]
    for name, stream in ((model, False), (model, True), ("aigc:router", False), ("aigc:router", True)):
        error = _status(lambda m=name, s=stream: client.chat.completions.create(model=m, messages=huge, stream=s))
        assert error.status_code == 413 and error.body["code"] == "context_length_exceeded"
        assert "context window is 1024" in error.body["message"]


def test_moderations_in_openai_shape(client: openai.OpenAI) -> None:
    texts = ["You are a worthless idiot.", "Write a short poem about the sea.", "Mail me at ada@example.com"]
    result = client.moderations.create(input=texts).results
    assert [r.flagged for r in result] == [True, False, True]
    assert result[0].categories.harassment and result[0].category_scores.harassment > 0.5
    assert result[2].model_dump()["categories"]["pii"] is True
    assert result[1].category_applied_input_types.self_harm == []  # not assessed, said so
    single = client.moderations.create(input="Write a short poem about the sea.").results
    assert len(single) == 1 and not single[0].flagged
    for bad in ([], [1], {"text": "x"}):
        error = _status(lambda b=bad: client.moderations.create(input=b))
        assert error.status_code == 400 and error.body["param"].startswith("input"), error.body
    extra = _status(lambda: client.moderations.create(input="x", extra_body={"threshold": 0.1}))
    assert extra.status_code == 400 and extra.body["param"] == "threshold"


@pytest.fixture(scope="module")
def proxy_server(tmp_path_factory: pytest.TempPathFactory, openai_server, model: str, serve_hermetic):
    """Serves openai:gpt-test (the scripted server) and a router falling back from it to the tiny model."""
    folder = tmp_path_factory.mktemp("serve-proxy")
    config = folder / "aigc.yaml"
    models = {
        "openai": {"base_url": openai_server.base_url, "api_key": "sk-upstream-secret", "model": "gpt-test"},
        "router": {"default": "openai:gpt-test", "fallbacks": [model], "retry": {"max_attempts": 1}},
    }
    config.write_text(yaml.safe_dump({"models": models}))
    with serve_hermetic(ServeSettings(config=config, port=0, store=folder / "r.db")) as server:
        yield server


def test_openai_models_are_proxied_and_the_router_falls_back(proxy_server, openai_server, model: str) -> None:
    from chains.testing import Fault

    client = openai.OpenAI(base_url=proxy_server.base_url + "/v1", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["openai:gpt-test", model, "aigc:router"]
    openai_server.clear()
    openai_server.script("Hello from upstream")
    assert client.chat.completions.create(model="openai:gpt-test", messages=HI).choices[0].message.content == (
        "Hello from upstream"
    )
    openai_server.script("Streamed upstream")
    chunks = client.chat.completions.create(model="openai:gpt-test", messages=HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Streamed upstream"
    openai_server.script(Fault.server_error())
    failed = _status(lambda: client.chat.completions.create(model="openai:gpt-test", messages=HI))
    assert failed.status_code == 502 and failed.body["type"] == "upstream_error"
    assert "sk-upstream-secret" not in json.dumps(failed.body) and "Traceback" not in json.dumps(failed.body)
    openai_server.script(Fault.server_error())
    fell_back = client.chat.completions.create(model="aigc:router", messages=HI, max_tokens=6)
    direct = client.chat.completions.create(model=model, messages=HI, max_tokens=6)
    assert fell_back.choices[0].message.content == direct.choices[0].message.content
    openai_server.clear()
