"""LangChain's standard chat-model suites (langchain-tests) against all three of our chat models.

- ChatTransformers on the tiny random-weight model built offline,
- ChatOpenAI configured as our OpenAI backend, over HTTP to the local OpenAI-compatible server,
- Router over both,
- and the ChatOpenAI suite again against `aigc serve` serving the tiny model (TestServeIntegration).

A random-weight model cannot produce answers whose content a test checks (JSON that validates against a schema),
and a scripted server cannot compute tool arguments from a question; those tests are listed in ``content_skips``
with their reasons (the suite forbids overriding its methods, so conftest applies the skips). Nothing else is
skipped by us; the suites skip features a class does not declare (images, PDFs, audio) on their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from chains import ChatTransformers, Router, RouterConfig

RANDOM_WEIGHTS = "a random-weight model cannot produce content that validates against a schema"
SCRIPTED = "checks tool arguments computed from the question (e.g. 3 for '3^3'); a scripted server cannot compute them"
SCRIPTED_TOOL_TESTS = {
    name: SCRIPTED
    for name in (
        "test_tool_calling",
        "test_tool_calling_async",
        "test_bind_runnables_as_tools",
        "test_agent_loop",
        "test_unicode_tool_call_integration",
    )
}
UNIT_BASE_URL = "http://127.0.0.1:9/v1"  # unit suites make no calls; a fixed URL keeps serialisation snapshots stable


@pytest.fixture(autouse=True)
def _real_parts(request: pytest.FixtureRequest, tiny_model_path: Path, openai_server, monkeypatch) -> None:
    """Give the suite classes the tiny model's folder and the live server's URL."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-conformance")
    if request.cls is not None:
        request.cls.tiny = str(tiny_model_path)
        request.cls.server_url = openai_server.base_url
        openai_server.clear()
        if getattr(request.cls, "serve", False):  # the same suite against `aigc serve` on the tiny model
            request.cls.server_url = request.getfixturevalue("aigc_server").base_url + "/v1"


class TestTransformersUnit(ChatModelUnitTests):
    tiny = ""

    @property
    def chat_model_class(self) -> type[ChatTransformers]:
        return ChatTransformers

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": self.tiny}


class TestTransformersIntegration(ChatModelIntegrationTests):
    tiny = ""

    @property
    def chat_model_class(self) -> type[ChatTransformers]:
        return ChatTransformers

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": self.tiny, "max_tokens": 16}

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    content_skips: ClassVar[dict[str, str]] = {
        name: RANDOM_WEIGHTS
        for name in (
            "test_structured_output",
            "test_structured_output_async",
            "test_structured_output_pydantic_2_v1",
            "test_structured_output_optional_param",
            "test_structured_few_shot_examples",
        )
    }


class TestOpenAIBackendUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "gpt-test", "base_url": UNIT_BASE_URL, "api_key": "sk-conformance", "stream_usage": True}


class TestOpenAIBackendIntegration(ChatModelIntegrationTests):
    server_url = ""
    content_skips = SCRIPTED_TOOL_TESTS

    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": "gpt-test",
            "base_url": self.server_url,
            "api_key": "sk-conformance",
            "stream_usage": True,
            "max_retries": 0,
        }

    @property
    def model_override_value(self) -> str:
        return "gpt-big"


class TestServeIntegration(TestOpenAIBackendIntegration):
    """The OpenAI-route suite again, with ChatOpenAI pointed at `aigc serve` serving the tiny model (``hf:``)."""

    serve = True
    tiny = ""
    content_skips: ClassVar[dict[str, str]] = {
        name: "a random-weight model never closes its JSON strings (cut at max_tokens); json_schema over HTTP is "
        "tested in test_server_openai.py with a maxLength"
        for name in TestTransformersIntegration.content_skips
    }

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {**super().chat_model_params, "model": f"hf:{self.tiny}", "max_tokens": 16}

    @property
    def model_override_value(self) -> str:
        return "aigc:router"

    @property
    def has_tool_calling(self) -> bool:
        return False  # aigc serve answers tools with a 400 naming the parameter

    @property
    def returns_usage_metadata(self) -> bool:
        return True


def _router_params(tiny: str, server_url: str) -> dict[str, Any]:
    backends = {
        "openai:gpt-test": ChatOpenAI(
            model="gpt-test",
            base_url=server_url or UNIT_BASE_URL,
            api_key="sk-conformance",
            stream_usage=True,
            max_retries=0,
        ),
        f"hf:{tiny}": ChatTransformers(model=tiny, max_tokens=16),
    }
    return {"backends": backends, "config": RouterConfig(fallbacks=[f"hf:{tiny}"]), "auto": "openai:gpt-test"}


class TestRouterUnit(ChatModelUnitTests):
    tiny = ""

    @property
    def chat_model_class(self) -> type[Router]:
        return Router

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return _router_params(self.tiny, "")


class TestRouterIntegration(ChatModelIntegrationTests):
    tiny = ""
    server_url = ""
    content_skips = SCRIPTED_TOOL_TESTS

    @property
    def chat_model_class(self) -> type[Router]:
        return Router

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return _router_params(self.tiny, self.server_url)

    @property
    def model_override_value(self) -> str:
        return f"hf:{self.tiny}"

    @property
    def returns_usage_metadata(self) -> bool:
        return True
