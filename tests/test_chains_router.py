"""The router over the real OpenAI client (HTTP to a local server with injected faults) and a real local model."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from chains import (
    AllBackendsFailed,
    AuthenticationFailed,
    ModelsConfig,
    Router,
    StreamInterrupted,
    UnknownModel,
    build_chain,
)
from chains.cache import ResponseCache
from chains.openai_backend import moderate
from chains.registry import ModelRegistry
from chains.testing import Answer, Fault
from prompts import load_prompt

SECRET = "sk-test-SECRET-4b1d7c"
PROMPT = [HumanMessage("Write a tagline for trail shoes.")]


def make_router(server, tiny: Path, **router: Any) -> Router:
    config = ModelsConfig.model_validate(
        {
            "openai": {"base_url": server.base_url, "api_key": SECRET, "model": "gpt-test", "timeout": 1.0},
            "local": {"model": f"hf:{tiny}"},
            "router": {"fallbacks": [f"hf:{tiny}"], "retry": {"base_delay_s": 0.01, "max_delay_s": 0.05}, **router},
        }
    )
    return Router.from_config(config)


@pytest.fixture
def server(openai_server):
    openai_server.clear()
    yield openai_server
    openai_server.clear()


@pytest.fixture
def router(server, tiny_model_path: Path) -> Router:
    return make_router(server, tiny_model_path)


def route(message) -> dict[str, Any]:
    return message.response_metadata["aigc_route"]


def chat_requests(server) -> int:
    return sum(1 for r in server.requests if r.path.endswith("/chat/completions"))


def test_auto_prefers_openai_when_configured(router: Router, server) -> None:
    server.script("Run further.")
    answer = router.invoke(PROMPT)
    assert answer.content == "Run further."
    assert route(answer) == {"backend": "openai:gpt-test", "attempts": 1, "tried": [], "cached": False}
    assert answer.usage_metadata["input_tokens"] > 0


def test_auto_uses_the_local_model_without_credentials(tiny_model_path: Path) -> None:
    config = ModelsConfig.model_validate({"local": {"model": f"hf:{tiny_model_path}"}})
    answer = Router.from_config(config).invoke(PROMPT, max_tokens=5)
    assert route(answer)["backend"] == f"hf:{tiny_model_path}"


def test_explicit_model_per_call(router: Router, tiny_model_path: Path) -> None:
    answer = router.invoke(PROMPT, model=f"hf:{tiny_model_path}", max_tokens=4)
    assert route(answer)["backend"] == f"hf:{tiny_model_path}" and answer.usage_metadata["output_tokens"] == 4
    with pytest.raises(UnknownModel, match="not one of this router's backends"):
        router.invoke(PROMPT, model="openai:gpt-unknown")


def test_server_errors_are_retried_then_fall_back_without_rerunning(router: Router, server, tiny_model_path) -> None:
    server.script(Fault.server_error(), Fault.server_error(503), Fault.server_error())
    answer = router.invoke(PROMPT, max_tokens=4)
    info = route(answer)
    assert info["backend"] == f"hf:{tiny_model_path}"
    assert info["attempts"] == 4
    assert [t["backend"] for t in info["tried"]] == ["openai:gpt-test"] * 3
    assert "server error 503" in info["tried"][1]["error"]
    assert chat_requests(server) == 3


def test_rate_limit_honours_retry_after(router: Router, server) -> None:
    server.script(Fault.rate_limit(retry_after=0.3), "After the wait.")
    start = time.perf_counter()
    answer = router.invoke(PROMPT)
    assert time.perf_counter() - start >= 0.3
    assert answer.content == "After the wait." and route(answer)["attempts"] == 2


def test_long_retry_after_moves_on_at_once(server, tiny_model_path) -> None:
    router = make_router(server, tiny_model_path, retry={"max_retry_after_s": 1})
    server.script(Fault.rate_limit(retry_after=30))
    start = time.perf_counter()
    answer = router.invoke(PROMPT, max_tokens=3)
    assert time.perf_counter() - start < 5 and route(answer)["backend"].startswith("hf:")
    assert chat_requests(server) == 1


def test_unauthorized_is_not_retried_and_does_not_leak_the_key(router: Router, server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(Fault.unauthorized())
    with pytest.raises(AuthenticationFailed) as info:
        router.invoke(PROMPT)
    assert "refused the credentials (401)" in str(info.value) and "retrying cannot help" in str(info.value)
    assert chat_requests(server) == 1
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.__cause__)
    assert SECRET not in repr(router) and SECRET not in str(router.backends["openai:gpt-test"])
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.headers) for r in server.requests)


def test_timeout_falls_back_to_local(server, tiny_model_path) -> None:
    router = make_router(server, tiny_model_path, timeouts={"openai:gpt-test": 0.4})
    assert router.backends["openai:gpt-test"].request_timeout == 0.4
    server.script(Fault.timeout(3))
    start = time.perf_counter()
    answer = router.invoke(PROMPT, max_tokens=3)
    assert time.perf_counter() - start < 1.5
    assert route(answer)["backend"].startswith("hf:") and "BackendTimeout" in route(answer)["tried"][0]["error"]


@pytest.mark.parametrize("fault", [Fault.reset(), Fault.malformed_json()], ids=["reset", "malformed"])
def test_broken_responses_are_retried(router: Router, server, fault: Fault) -> None:
    server.script(fault, "Second time lucky.")
    answer = router.invoke(PROMPT)
    assert answer.content == "Second time lucky." and route(answer)["attempts"] == 2


def test_a_failing_backend_cools_down(server, tiny_model_path) -> None:
    router = make_router(server, tiny_model_path, cooldown={"failures": 2, "cooldown_s": 60}, retry={"max_attempts": 1})
    server.script(Fault.server_error(), Fault.server_error())
    for _ in range(2):
        assert route(router.invoke(PROMPT, max_tokens=2))["backend"].startswith("hf:")
    assert "openai:gpt-test" in router.cooldowns()
    answer = router.invoke(PROMPT, max_tokens=2)
    assert "cooling down" in route(answer)["tried"][0]["error"]
    assert chat_requests(server) == 2  # the resting backend was not called


def test_everything_failing_is_one_clear_error(server, tiny_model_path) -> None:
    router = make_router(server, tiny_model_path, fallbacks=[], retry={"max_attempts": 2})
    server.script(Fault.server_error(), Fault.server_error())
    with pytest.raises(AllBackendsFailed, match="every backend failed") as info:
        router.invoke(PROMPT)
    assert len(info.value.errors) == 2


def test_stream_passes_chunks_and_reports_the_route(router: Router, server) -> None:
    server.script("One two three four five.")
    chunks = list(router.stream(PROMPT))
    assert "".join(c.content for c in chunks) == "One two three four five."
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.response_metadata["aigc_route"]["backend"] == "openai:gpt-test"
    assert total.usage_metadata["output_tokens"] > 0


def test_a_stream_cut_midway_is_an_error_never_a_short_answer(router: Router, server) -> None:
    server.script(Answer(content="One two three four five six seven."), Fault.truncated_stream(after_chunks=2))
    server.clear()
    server.script(Fault.truncated_stream(after_chunks=2))
    received = []
    with pytest.raises(StreamInterrupted, match="the answer is incomplete"):
        for chunk in router.stream(PROMPT):
            received.append(chunk.content)
    assert received  # content had gone out, so there is no silent fallback either


async def test_a_stream_that_fails_before_content_falls_back(router: Router, server) -> None:
    server.script(Fault.server_error(), Fault.server_error(), Fault.server_error())
    chunks = [c async for c in router.astream(PROMPT, max_tokens=4)]
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.response_metadata["aigc_route"]["backend"].startswith("hf:")
    assert total.usage_metadata["output_tokens"] == 4


async def test_async_invoke_with_fallback(router: Router, server) -> None:
    server.script(Fault.timeout(3))
    answer = await router.ainvoke(PROMPT, max_tokens=3)
    assert route(answer)["backend"].startswith("hf:")


def test_rules_by_task_budget_and_context(server, tiny_model_path) -> None:
    local = f"hf:{tiny_model_path}"
    router = make_router(
        server,
        tiny_model_path,
        rules=[{"use": local, "task": ["education"]}, {"use": local, "budget_exceeded": True}],
        budget_usd=0.000001,
        prices={"openai:gpt-test": {"input": 1.0, "output": 1.0}},
        context_windows={"openai:gpt-test": 50},
    )
    assert route(router.invoke(PROMPT, task="education", max_tokens=2))["backend"] == local
    server.script("Paid answer.")
    assert route(router.invoke(PROMPT, task="marketing"))["backend"] == "openai:gpt-test"
    assert router.spent_usd > 0.000001
    assert route(router.invoke(PROMPT, task="marketing", max_tokens=2))["backend"] == local
    fresh = make_router(server, tiny_model_path, context_windows={"openai:gpt-test": 50})
    long = [HumanMessage("word " * 150)]
    answer = fresh.invoke(long, max_tokens=2)
    assert route(answer)["backend"] == local and "context window 50" in route(answer)["tried"][0]["error"]


def test_cache_keeps_samples_independent_and_holds_no_key(server, tiny_model_path, tmp_path: Path) -> None:
    router = make_router(server, tiny_model_path, cache={"path": str(tmp_path / "cache.db")})
    server.script("First sample.", "Second sample.")
    first = router.invoke(PROMPT, cache=True, seed=1)
    again = router.invoke(PROMPT, cache=True, seed=1)
    other = router.invoke(PROMPT, cache=True, seed=1, sample_index=1)
    assert first.content == again.content == "First sample." and other.content == "Second sample."
    assert route(again)["cached"] is True and chat_requests(server) == 2
    assert isinstance(router.response_cache, ResponseCache) and len(router.response_cache) == 2
    assert SECRET.encode() not in (tmp_path / "cache.db").read_bytes()
    server.script("Streamed once.")
    first_stream = "".join(c.content for c in router.stream(PROMPT, cache=True, seed=2))
    second_stream = list(router.stream(PROMPT, cache=True, seed=2))
    assert first_stream == "".join(c.content for c in second_stream) == "Streamed once."
    assert chat_requests(server) == 3 and second_stream[0].response_metadata["aigc_route"]["cached"] is True
    router.close()


def test_callbacks_see_which_backend_answered(router: Router, server) -> None:
    seen: list[dict] = []

    class Spy(BaseCallbackHandler):
        def on_llm_end(self, response, **kwargs) -> None:
            if response.llm_output and "aigc_route" in response.llm_output:
                seen.append(response.llm_output["aigc_route"])

    server.script(Fault.server_error(), "Ok.")
    router.invoke(PROMPT, config={"callbacks": [Spy()]})
    assert seen == [{"backend": "openai:gpt-test", "attempts": 2, "tried": seen[0]["tried"], "cached": False}]


def test_logprobs_pass_through_openai(router: Router, server) -> None:
    server.script(Answer(content="5", top_logprobs={"5": -0.1, "4": -2.5}))
    answer = router.invoke(PROMPT, logprobs=True, top_logprobs=2)
    first = answer.response_metadata["logprobs"]["content"][0]
    assert first["token"] == "5" and {t["token"] for t in first["top_logprobs"]} == {"5", "4"}


class Tagline(BaseModel):
    tagline: str
    words: int


def test_structured_output_repairs_once(router: Router, server) -> None:
    server.script('{"tagline": "Run further"}', '{"tagline": "Run further", "words": 2}')
    assert router.with_structured_output(Tagline).invoke(PROMPT) == Tagline(tagline="Run further", words=2)
    repair = [r for r in server.requests if r.path.endswith("/chat/completions")][-1].body["messages"][-1]["content"]
    assert "did not validate" in repair and "words" in repair


def test_build_chain_uses_prompt_defaults_and_json_output(router: Router, server) -> None:
    prompt = load_prompt("marketing/ad_copy@1.1.0")
    payload = '{"variants": [{"angle": "outcome", "headline": "Run further", "body": "Grip.", "cta": "Shop now"}]}'
    server.script(payload)
    examples = {k: s.example for k, s in prompt.meta.inputs.items() if s.example is not None}
    result = build_chain(prompt, router).invoke(examples)
    assert result["variants"][0]["headline"] == "Run further"
    body = [r for r in server.requests if r.path.endswith("/chat/completions")][-1].body
    assert body["temperature"] == prompt.meta.model.temperature
    assert body.get("max_completion_tokens", body.get("max_tokens")) == prompt.meta.model.max_tokens


def test_moderation_endpoint(server) -> None:
    config = ModelsConfig.model_validate({"openai": {"base_url": server.base_url, "api_key": SECRET}})
    verdicts = moderate(["a friendly note", "I will kill you"], config.openai)
    assert [v.flagged for v in verdicts] == [False, True]


def test_unknown_provider_lists_registered_ones() -> None:
    with pytest.raises(UnknownModel, match="registered providers: hf, openai"):
        ModelRegistry().create("anthropic:claude")
    with pytest.raises(UnknownModel, match="must look like provider:model"):
        ModelRegistry().create("gpt-4o-mini")


def test_a_bad_request_is_not_retried_does_not_fall_back_and_does_not_cool_down(router: Router, server) -> None:
    from chains import BackendError

    server.script(Fault.bad_request(code="invalid_value"))
    with pytest.raises(BackendError, match=r"refused the request \(400\)"):
        router.invoke(PROMPT)
    assert chat_requests(server) == 1 and router.cooldowns() == {}


def test_unknown_remote_model_and_context_overflow(router: Router, server, tiny_model_path) -> None:
    server.script(Fault.bad_request(status=404, code="model_not_found"))
    with pytest.raises(UnknownModel, match="does not know this model"):
        router.invoke(PROMPT)
    server.script(Fault.bad_request(code="context_length_exceeded"))
    answer = router.invoke(PROMPT, max_tokens=2)
    assert route(answer)["backend"] == f"hf:{tiny_model_path}"
    assert "ContextWindowExceeded" in route(answer)["tried"][0]["error"]


def test_router_configuration_mistakes_are_named(server, tiny_model_path, monkeypatch, tmp_path) -> None:
    from chains import ModelsConfig as Config

    monkeypatch.setenv("AIGC_MODELS_DIR", str(tmp_path / "empty-model-cache"))
    with pytest.raises(UnknownModel, match="no model is configured"):
        Router.from_config(Config())
    with pytest.raises(UnknownModel, match="router fallbacks name hf:typo, which is not a backend"):
        Router(
            backends={"openai:gpt-test": make_router(server, tiny_model_path).backends["openai:gpt-test"]},
            config={"fallbacks": ["hf:typo"]},
            auto="openai:gpt-test",
        )


class Weather(BaseModel):
    """Look up the weather in a city."""

    city: str


def test_tools_reach_the_backend_that_answers(router: Router, server, tiny_model_path) -> None:
    from chains.testing import ToolCall

    server.script(Answer(tool_calls=[ToolCall(name="Weather", arguments={"city": "Lisbon"})]))
    answer = router.bind_tools([Weather], tool_choice="Weather").invoke(PROMPT)
    assert answer.tool_calls[0]["name"] == "Weather" and answer.tool_calls[0]["args"] == {"city": "Lisbon"}
    body = server.requests[-1].body
    assert body["tools"][0]["function"]["name"] == "Weather"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}
    with pytest.raises(TypeError, match="does not accept"):  # the local backend has no tool calling: said, not ignored
        router.bind_tools([Weather]).invoke(PROMPT, model=f"hf:{tiny_model_path}")
