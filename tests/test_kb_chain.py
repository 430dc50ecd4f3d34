"""A knowledge base in the chain factory: kb.as_retriever fills a prompt's context, kb.example_selector gives the
few-shot turns; the real OpenAI client against the scripted local server, a temp-dir Chroma, real MiniLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chains.chain import Grounded, chain
from chains.config import ModelsConfig
from chains.kb import KnowledgeBase, connect
from evaluators.base import Sample
from evaluators.grounded import Grounded as GroundedEvaluator


@pytest.fixture
def server(openai_server):
    openai_server.clear()
    yield openai_server
    openai_server.clear()


@pytest.fixture
def config(server) -> ModelsConfig:
    return ModelsConfig.model_validate({"openai": {"base_url": server.base_url, "api_key": "k", "model": "gpt-test"}})


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    folder = tmp_path / "standards"
    folder.mkdir()
    (folder / "plants.md").write_text("# Plants\n\nPhotosynthesis turns light, water and carbon dioxide into glucose.")
    (folder / "rocks.md").write_text("# Rocks\n\nBasalt is a volcanic rock formed from cooled lava.")
    (tmp_path / "examples.jsonl").write_text(
        json.dumps({"input": "Quarterly revenue rose sharply in every region.", "output": "Revenue rose everywhere."})
        + "\n"
        + json.dumps({"input": "The cat sat on the warm mat all afternoon.", "output": "The cat sat on the mat."})
        + "\n"
    )
    store = KnowledgeBase.open(connect(tmp_path / "db"), "school")
    store.ingest([folder])
    KnowledgeBase.open(store.client, "school-examples").ingest([tmp_path / "examples.jsonl"])
    return store


def last_user(request: Any) -> str:
    return [m for m in request.body["messages"] if m["role"] == "user"][-1]["content"]


def test_retrieved_passages_fill_the_context_and_ground_the_output(server, config, kb: KnowledgeBase) -> None:
    answer = "Plants use photosynthesis to turn light, water and carbon dioxide into glucose."
    server.script(answer)
    retriever = kb.as_retriever(k=1, filter={"title": "Plants"})
    quiz = {"topic": "how plants make food", "grade_level": 6}
    result = chain("education/quiz", "openai:gpt-test", config=config, retriever=retriever, output="text").invoke(quiz)
    assert isinstance(result, Grounded)
    (source,) = result.metadata["sources"]
    assert source["source"].endswith("plants.md") and source["id"].count("-") == 2
    prompt_text = last_user(server.requests[-1])
    assert "[1] # Plants" in prompt_text and "Basalt" not in prompt_text
    context = "\n\n".join(d.page_content for d in retriever.invoke("how plants make food"))
    score = GroundedEvaluator().score(Sample(output=answer, context=context))
    assert score.passed is True
    wrong = GroundedEvaluator().score(Sample(output="Plants make 40 grams of glucose a day.", context=context))
    assert wrong.passed is False and "40" in wrong.reason


def test_examples_come_from_the_collection(server, config, kb: KnowledgeBase) -> None:
    server.script("Done.")
    examples = KnowledgeBase.open(kb.client, "school-examples", create=False).example_selector(k=1)
    runnable = chain("writing/rewrite", "openai:gpt-test", config=config, examples=examples)
    assert runnable.invoke({"text": "A cat sat on a mat."}) == "Done."
    messages = server.requests[-1].body["messages"]
    assert messages[-3:-1] == [
        {"role": "user", "content": "The cat sat on the warm mat all afternoon."},
        {"role": "assistant", "content": "The cat sat on the mat."},
    ]
