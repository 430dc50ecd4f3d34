"""``chains.chain.chain``: prompt -> router -> the real OpenAI client over HTTP -> validated output, with named
steps, one repair attempt, and LangChain retriever / example-selector seams (real in-memory ones)."""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.example_selectors import SemanticSimilarityExampleSelector
from langchain_core.vectorstores import InMemoryVectorStore
from pydantic import BaseModel, field_validator

from chains import StructuredOutputError
from chains.chain import ChainError, Grounded, chain
from chains.config import ModelsConfig
from prompts import PromptRegistry

REGISTRY = PromptRegistry()
AD = {"product_name": "Aurora Trail 2", "audience": "trail runners", "variants": 1}
PASSAGES = [("plants.md", "Photosynthesis makes glucose."), ("rocks.md", "Basalt is volcanic.")]
VARIANT = {"angle": "outcome", "headline": "Finish strong", "body": "Aurora Trail 2 grips.", "cta": "Shop Now"}


@pytest.fixture
def server(openai_server):
    openai_server.clear()
    yield openai_server
    openai_server.clear()


@pytest.fixture
def config(server) -> ModelsConfig:
    return ModelsConfig.model_validate({"openai": {"base_url": server.base_url, "api_key": "k", "model": "gpt-test"}})


class Steps(BaseCallbackHandler):
    """Records the names of the runs LangChain reports."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.names.append(kwargs.get("name") or "")

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.names.append(kwargs.get("name") or "")

    def on_retriever_start(self, serialized: Any, query: str, **kwargs: Any) -> None:
        self.names.append("retriever:" + (kwargs.get("name") or ""))


def last_user(request: Any) -> str:
    return [m for m in request.body["messages"] if m["role"] == "user"][-1]["content"]


def test_json_prompt_validates_against_its_schema_and_callbacks_see_each_step(server, config) -> None:
    server.script(json.dumps({"variants": [VARIANT]}))
    steps = Steps()
    result = chain("marketing/ad_copy@^1", "openai:gpt-test", config=config).invoke(AD, {"callbacks": [steps]})
    assert result == {"variants": [VARIANT]}
    assert {"render", "model", "parse"} <= set(steps.names)
    body = server.requests[-1].body
    assert body["response_format"]["type"] == "json_schema" and body["temperature"] == 0.9
    assert "JSON Schema" in body["messages"][0]["content"]


def test_an_invalid_answer_gets_one_repair_showing_the_error(server, config) -> None:
    server.script("Sure! Here are your ads.", json.dumps({"variants": [VARIANT]}))
    result = chain("marketing/ad_copy", "openai:gpt-test", config=config).invoke(AD)
    assert result["variants"][0]["cta"] == "Shop Now"
    assert len(server.requests) == 2
    repair = server.requests[1].body["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Sure! Here are your ads."}
    assert "did not validate" in repair[-1]["content"] and "no JSON object" in repair[-1]["content"]


def test_a_never_valid_answer_raises_with_the_raw_text(server, config) -> None:
    server.script('{"variants": []}', "still not it")
    with pytest.raises(StructuredOutputError) as info:
        chain("marketing/ad_copy", "openai:gpt-test", config=config).invoke(AD)
    assert info.value.raw == "still not it"
    assert "marketing/ad_copy@1.1.0" in str(info.value) and "'still not it'" in str(info.value)


class Headline(BaseModel):
    headline: str

    @field_validator("headline")
    @classmethod
    def _short(cls, value: str) -> str:
        if len(value) > 10:
            raise ValueError("at most 10 characters")
        return value


def test_a_pydantic_output_class_is_validated_and_repaired(server, config) -> None:
    server.script('{"headline": "far too long a headline"}', '{"headline": "Short"}')
    result = chain("marketing/ad_copy", "openai:gpt-test", output=Headline, config=config).invoke(AD)
    assert result == Headline(headline="Short")
    assert "headline: Value error, at most 10 characters" in last_user(server.requests[1])
    assert server.requests[0].body["response_format"]["json_schema"]["schema"]["title"] == "Headline"


def test_text_chains_invoke_stream_batch_and_ainvoke(server, config) -> None:
    runnable = chain("writing/rewrite", "openai:gpt-test", config=config, max_tokens=50)
    server.script("One two three.")
    assert runnable.invoke({"text": "1 2 3"}) == "One two three."
    assert server.requests[-1].body["max_completion_tokens"] == 50  # the call's value beats the prompt's 4000
    server.script("Streamed answer here")
    pieces = [p for p in runnable.stream({"text": "x"}) if p]
    assert len(pieces) > 1 and "".join(pieces) == "Streamed answer here"
    server.script("a", "b")
    assert sorted(runnable.batch([{"text": "x"}, {"text": "y"}])) == ["a", "b"]


async def test_structured_ainvoke_repairs_too(server, config) -> None:
    server.script("nope", json.dumps({"variants": [VARIANT]}))
    result = await chain("marketing/ad_copy", "openai:gpt-test", config=config).ainvoke(AD)
    assert result["variants"] == [VARIANT]


def test_output_text_overrides_a_json_prompt(server, config) -> None:
    server.script("plain words")
    assert chain("marketing/ad_copy", "openai:gpt-test", output="text", config=config).invoke(AD) == "plain words"
    with pytest.raises(ChainError, match="output must be"):
        chain("marketing/ad_copy", "openai:gpt-test", output=42, config=config)  # type: ignore[arg-type]


def retriever(texts: list[tuple[str, str]]) -> Any:
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=32))
    store.add_documents([Document(page_content=t, metadata={"source": s}, id=s) for s, t in texts])
    return store.as_retriever(search_kwargs={"k": 1})


def test_a_retriever_fills_the_context_input_and_the_result_names_its_sources(server, config) -> None:
    quiz = {"topic": "Photosynthesis makes glucose.", "grade_level": 6}  # the query equals one passage exactly
    answer = {"topic": "plants", "grade_level": 6, "questions": []}
    server.script(json.dumps(answer), json.dumps(answer))
    steps = Steps()
    runnable = chain("education/quiz", "openai:gpt-test", config=config, retriever=retriever(PASSAGES), output="text")
    result = runnable.invoke(quiz, {"callbacks": [steps]})
    assert isinstance(result, Grounded) and result.metadata == {"sources": [{"id": "plants.md", "source": "plants.md"}]}
    assert "[1] Photosynthesis makes glucose." in last_user(server.requests[-1])
    assert "Basalt" not in last_user(server.requests[-1])
    assert "retrieve" in steps.names and any(n.startswith("retriever:") for n in steps.names)


def test_a_retriever_needs_a_prompt_with_a_context_input(config) -> None:
    with pytest.raises(ChainError, match="declares no 'context' input"):
        chain("marketing/ad_copy", "openai:gpt-test", config=config, retriever=retriever([("a", "b")]))


class Words(Embeddings):
    """A real, deterministic bag-of-words embedding (hashed word counts, normalised)."""

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * 64
        for word in text.lower().split():
            vector[zlib.crc32(word.strip(".,:<>/").encode()) % 64] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def test_selected_examples_become_turns_before_the_final_user_message(server, config) -> None:
    examples = [
        {"input": "Quarterly revenue rose sharply in every region.", "output": "Revenue rose in all regions."},
        {"input": "The cat sat on the warm mat all afternoon.", "output": "The cat sat on the mat."},
    ]
    selector = SemanticSimilarityExampleSelector.from_examples(
        examples, Words(), InMemoryVectorStore, k=1, input_keys=["input"]
    )
    server.script("Done.")
    steps = Steps()
    runnable = chain("writing/rewrite", "openai:gpt-test", config=config, examples=selector)
    assert runnable.invoke({"text": "A cat sat on a mat."}, {"callbacks": [steps]}) == "Done."
    messages = server.requests[-1].body["messages"]
    assert messages[-3:-1] == [
        {"role": "user", "content": examples[1]["input"]},
        {"role": "assistant", "content": examples[1]["output"]},
    ]
    assert messages[-1]["role"] == "user" and "<text>" in messages[-1]["content"]
    assert "examples" in steps.names


def test_an_example_without_input_and_output_is_a_clear_error(server, config) -> None:
    selector = SemanticSimilarityExampleSelector.from_examples(
        [{"question": "q", "answer": "a"}], DeterministicFakeEmbedding(size=8), InMemoryVectorStore, k=1
    )
    with pytest.raises(ChainError, match="needs 'input' and 'output' keys"):
        chain("writing/rewrite", "openai:gpt-test", config=config, examples=selector).invoke({"text": "t"})


def test_unknown_prompts_suggest_near_names() -> None:
    from prompts import PromptNotFound

    with pytest.raises(PromptNotFound, match="marketing/ad_copy"):
        chain("marketing/ad_cpy", "openai:gpt-test")


def test_a_local_model_path_runs_text_and_schema_constrained_json(tiny_model_path) -> None:
    model = f"hf:{tiny_model_path}"
    text = chain("writing/rewrite", model, max_tokens=6, temperature=0).invoke({"text": "hello"})
    assert isinstance(text, str)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    value = chain("writing/rewrite", model, output=schema, max_tokens=24, temperature=0).invoke({"text": "hello"})
    assert isinstance(value["ok"], bool)  # grammar-constrained decoding on the tiny model


def test_build_chain_still_serves_existing_callers(server, config) -> None:
    from chains import Router, build_chain

    server.script("plain")
    router = Router.from_config(
        config.model_copy(update={"router": config.router.model_copy(update={"default": "openai:gpt-test"})})
    )
    assert build_chain(REGISTRY.get("writing/rewrite"), router).invoke({"text": "x"}) == "plain"


def test_a_structured_grounded_result_carries_the_parsed_value(server, config) -> None:
    question = {
        "question": "What do plants make?",
        "type": "short_answer",
        "options": [],
        "answer": "Glucose",
        "explanation": "Photosynthesis makes glucose.",
        "difficulty": "easy",
    }
    answer = {"topic": "plants", "grade_level": 6, "questions": [question]}
    server.script("no json here", json.dumps(answer))
    quiz = {"topic": "Photosynthesis makes glucose.", "grade_level": 6}
    runnable = chain("education/quiz@1.0.0", "openai:gpt-test", config=config, retriever=retriever(PASSAGES))
    result = runnable.invoke(quiz)
    assert result.output == answer and [s.source for s in result.sources] == ["plants.md"]


def test_structured_chains_stream_and_batch_validated_values(server, config) -> None:
    runnable = chain("marketing/ad_copy", "openai:gpt-test", config=config)
    server.script("not json", json.dumps({"variants": [VARIANT]}))
    assert list(runnable.stream(AD)) == [{"variants": [VARIANT]}]
    server.script(*[json.dumps({"variants": [VARIANT]})] * 2)
    assert runnable.batch([AD, AD]) == [{"variants": [VARIANT]}] * 2
