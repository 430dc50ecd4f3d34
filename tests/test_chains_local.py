"""The local backend on a real (tiny, random-weight) transformers model loaded with from_pretrained."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from chains import (
    ChatTransformers,
    ContextWindowExceeded,
    ModelsConfig,
    ModelUnavailable,
    StructuredOutputError,
    loaded_models,
    unload_model,
)
from chains.local import _POOL
from chains.registry import ModelRegistry

PROMPT = [SystemMessage("You write quizzes."), HumanMessage("Write a quiz about rivers.")]


@pytest.fixture(scope="module")
def model(tiny_model_path: Path) -> ChatTransformers:
    return ChatTransformers(model=str(tiny_model_path), max_tokens=24)


def sampled(model: ChatTransformers, **kwargs) -> str:
    return model.invoke(PROMPT, temperature=1.0, seed=7, **kwargs).content


def test_invoke_reports_usage_from_the_real_tokenizer(model: ChatTransformers) -> None:
    answer = model.invoke(PROMPT)
    tokenizer = model.engine.tokenizer
    chat = [
        {"role": "system", "content": "You write quizzes."},
        {"role": "user", "content": "Write a quiz about rivers."},
    ]
    prompt_ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert isinstance(answer.content, str) and answer.content
    assert answer.usage_metadata["input_tokens"] == len(prompt_ids)
    assert answer.usage_metadata["output_tokens"] == 24
    assert answer.response_metadata["finish_reason"] == "length"
    assert answer.response_metadata["model_name"].startswith("hf:")


def test_stream_yields_token_chunks_that_add_up_to_invoke(model: ChatTransformers) -> None:
    chunks = list(model.stream(PROMPT))
    assert len([c for c in chunks if c.content]) > 3
    assert "".join(c.content for c in chunks) == model.invoke(PROMPT).content
    assert chunks[-1].usage_metadata["output_tokens"] == 24


async def test_async_invoke_stream_and_batch(model: ChatTransformers) -> None:
    expected = model.invoke(PROMPT).content
    assert (await model.ainvoke(PROMPT)).content == expected
    assert "".join([c.content async for c in model.astream(PROMPT)]) == expected
    answers = await model.abatch([PROMPT, PROMPT, [HumanMessage("Other")]])
    assert [a.content for a in answers[:2]] == [expected, expected]


def test_batch_is_one_batched_decode_with_the_same_answers(model: ChatTransformers) -> None:
    prompts = [[HumanMessage(f"Write {i} facts about coffee")] for i in range(8)]
    one_by_one = [model.invoke(p).content for p in prompts]
    stats = _POOL.get(model).batcher.stats
    before = len(stats.sizes)
    assert [a.content for a in model.batch(prompts)] == one_by_one
    assert max(stats.sizes[before:]) > 1


def test_concurrent_threads_are_coalesced(model: ChatTransformers) -> None:
    stats = _POOL.get(model).batcher.stats
    before = len(stats.sizes)
    results: list[str] = []
    barrier = threading.Barrier(12)

    def call() -> None:
        barrier.wait()
        results.append(model.invoke(PROMPT).content)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results) == 12
    assert max(stats.sizes[before:]) >= 4


@pytest.mark.parametrize("streaming", [False, True])
def test_stop_sequences_cut_the_answer(model: ChatTransformers, streaming: bool) -> None:
    full = sampled(model)
    stop = full[6:9]
    assert stop and stop in full
    if streaming:
        chunks = list(model.stream(PROMPT, temperature=1.0, seed=7, stop=[stop]))
        text = "".join(c.content for c in chunks)
        finish = chunks[-1].response_metadata["finish_reason"]
    else:
        answer = model.invoke(PROMPT, temperature=1.0, seed=7, stop=[stop])
        text, finish = answer.content, answer.response_metadata["finish_reason"]
    assert text == full[: full.index(stop)]
    assert finish == "stop"


def test_seed_makes_sampling_repeatable(model: ChatTransformers) -> None:
    assert sampled(model) == sampled(model)
    assert len({model.invoke(PROMPT, temperature=1.0, seed=s).content for s in range(4)}) > 1


def test_logprobs_of_generated_tokens(model: ChatTransformers) -> None:
    answer = model.invoke(PROMPT, logprobs=True, top_logprobs=3, max_tokens=5)
    content = answer.response_metadata["logprobs"]["content"]
    assert len(content) == 5
    for entry in content:
        assert entry["logprob"] <= 0 and len(entry["top_logprobs"]) == 3
        tops = [t["logprob"] for t in entry["top_logprobs"]]
        assert tops == sorted(tops, reverse=True) and entry["logprob"] <= tops[0] + 1e-6
    assert "".join(e["token"] for e in content) == answer.content
    streamed = [c for c in model.stream(PROMPT, logprobs=True, max_tokens=5) if c.response_metadata.get("logprobs")]
    assert sum(len(c.response_metadata["logprobs"]["content"]) for c in streamed) == 5


class Quiz(BaseModel):
    question: str
    answer: str


def test_structured_output_from_a_model_that_cannot_write_json(model: ChatTransformers) -> None:
    runnable = model.with_structured_output(Quiz, include_raw=True)
    result = runnable.invoke(PROMPT)
    assert result["parsed"] is None and result["parsing_error"] is not None
    with pytest.raises(StructuredOutputError, match="after one repair attempt"):
        model.with_structured_output(Quiz).invoke(PROMPT)


def test_context_window_is_enforced_or_truncated(tiny_model_path: Path) -> None:
    long = [HumanMessage("river " * 2000)]
    with pytest.raises(ContextWindowExceeded, match="context window is 1024"):
        ChatTransformers(model=str(tiny_model_path), max_tokens=8).invoke(long)
    model = ChatTransformers(model=str(tiny_model_path), max_tokens=8, context_overflow="truncate_left")
    answer = model.invoke(long)
    assert answer.usage_metadata["input_tokens"] == 1024 - 8
    assert answer.response_metadata["truncated_prompt_tokens"] > 900


def test_unknown_kwarg_and_bad_values_are_refused(model: ChatTransformers) -> None:
    with pytest.raises(TypeError, match="does not accept"):
        model.invoke(PROMPT, tempreature=0.5)
    for bad in ({"max_tokens": 0}, {"max_tokens": -3}, {"temperature": -1.0}, {"top_p": 0}):
        with pytest.raises(ValueError, match="max_tokens must be >= 1"):
            model.invoke(PROMPT, **bad)


def test_missing_models_fail_fast_and_clearly(tmp_path: Path) -> None:
    registry = ModelRegistry()
    with pytest.raises(ModelUnavailable) as info:
        registry.create("hf:some-org/not-downloaded-model", ModelsConfig())
    message = str(info.value)
    assert "some-org/not-downloaded-model" in message and "Hugging Face cache" in message and "hf:/path" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="does not hold a loadable model"):
        ChatTransformers(model=str(tmp_path / "empty")).invoke("hi")


def test_cuda_requested_without_cuda(tiny_model_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path is for machines without it")
    with pytest.raises(ModelUnavailable, match="CUDA is not available"):
        ChatTransformers(model=str(tiny_model_path), device="cuda").invoke("hi")


def test_one_load_shared_and_explicit_unload(tiny_model_path: Path) -> None:
    first = ChatTransformers(model=str(tiny_model_path), max_tokens=4)
    second = ChatTransformers(model=str(tiny_model_path), max_tokens=6, temperature=0.5)
    assert first.engine is second.engine
    assert str(tiny_model_path) in loaded_models()
    assert unload_model(str(tiny_model_path)) == 1
    assert str(tiny_model_path) not in loaded_models()
    assert first.invoke("hi").usage_metadata["output_tokens"] == 4  # loads again on demand


def test_registry_builds_local_models(tiny_model_path: Path) -> None:
    model = ModelRegistry().create(f"hf:{tiny_model_path}", ModelsConfig())
    assert isinstance(model, ChatTransformers)
    assert asyncio.run(model.ainvoke("hi", max_tokens=3)).usage_metadata["output_tokens"] == 3
