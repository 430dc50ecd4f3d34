"""The local backend on a real (tiny, random-weight) transformers model loaded with from_pretrained."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, field_validator

from chains import (
    ChatTransformers,
    ContextWindowExceeded,
    ModelsConfig,
    ModelUnavailable,
    StructuredOutputError,
    loaded_models,
    unload_model,
)
from chains.batching import DynamicBatcher
from chains.hf_engine import GenRequest, HFEngine, _Detokenizer
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


def test_a_seed_outside_64_bits_is_a_clear_error_before_it_reaches_the_batch(model: ChatTransformers) -> None:
    with pytest.raises(ValueError, match=r"seed must be a 64-bit integer \(got 1180591620717411303424\)"):
        model.invoke(PROMPT, temperature=1.0, seed=2**70)
    assert model.invoke(PROMPT, temperature=1.0, seed=2**64 - 1).content  # the largest one torch takes


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


class RejectedQuiz(Quiz):
    @field_validator("answer")
    @classmethod
    def never_right(cls, value: str) -> str:  # a rule no decoding grammar checks: the JSON parses, then fails
        raise ValueError("this answer is never right")


def test_structured_output_from_a_model_that_cannot_write_json(model: ChatTransformers) -> None:
    # The random-weight model writes JSON of the shape only because decoding is constrained (chains.constrained).
    assert isinstance(model.with_structured_output(Quiz).invoke(PROMPT), Quiz)
    result = model.with_structured_output(RejectedQuiz, include_raw=True).invoke(PROMPT)
    assert result["parsed"] is None and result["parsing_error"] is not None
    with pytest.raises(StructuredOutputError, match="after one repair attempt"):
        model.with_structured_output(RejectedQuiz).invoke(PROMPT)


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


# -- dynamic batching, the slot decoder, incremental text -------------------------------------------------------


def echo_batches(sizes: list[int]):
    def run_batch(requests):
        sizes.append(len(requests))
        return list(requests)

    return run_batch


def test_gathering_waits_while_calls_keep_coming() -> None:
    sizes: list[int] = []
    batcher = DynamicBatcher(echo_batches(sizes), max_batch_size=64, max_wait_s=0.08, max_gather_s=5.0)
    futures = []
    for i in range(12):  # 12 arrivals 20 ms apart: 0.24 s in all, three times the wait, which counts from the last
        futures.append(batcher.submit(i))
        time.sleep(0.02)
    assert [f.result(timeout=10) for f in futures] == list(range(12))
    assert sizes == [12]
    batcher.close()


def test_gathering_stops_at_max_gather_and_max_batch_size() -> None:
    sizes: list[int] = []
    batcher = DynamicBatcher(echo_batches(sizes), max_batch_size=4, max_wait_s=0.1, max_gather_s=0.3)
    futures = [batcher.submit(i) for i in range(10)]  # all at once: batches of at most 4
    assert [f.result(timeout=10) for f in futures] == list(range(10))
    assert sizes == [4, 4, 2]
    batcher.max_batch_size, sizes[:] = 100, []
    futures = []
    for i in range(24):  # a call every 30 ms for 0.72 s: the wait never runs out, max_gather_s ends each batch
        futures.append(batcher.submit(i))
        time.sleep(0.03)
    assert [f.result(timeout=10) for f in futures] == list(range(24))
    assert len(sizes) >= 2 and max(sizes) < 24
    batcher.close()


def test_a_failing_batch_fails_its_calls_and_the_batcher_lives_on() -> None:
    def run_batch(requests):
        if "boom" in requests:
            raise RuntimeError("boom")
        return list(requests)

    batcher = DynamicBatcher(run_batch, max_wait_s=0.05)
    bad = [batcher.submit("boom"), batcher.submit("ok")]
    for future in bad:
        with pytest.raises(RuntimeError, match="boom"):
            future.result(timeout=10)
    assert batcher.submit("fine").result(timeout=10) == "fine"
    batcher.close()
    with pytest.raises(RuntimeError, match="unloaded"):
        batcher.submit("late")


@pytest.fixture(scope="module")
def bf16_engine(tiny_model_path: Path) -> HFEngine:
    return HFEngine.load(str(tiny_model_path), dtype="bfloat16")


def mixed_requests(engine: HFEngine) -> list[GenRequest]:
    """Prompts of different lengths; greedy and seeded sampling; budgets that end rows at different steps."""
    requests = []
    for i in range(9):
        prompt = engine.encode_chat([{"role": "user", "content": "Write about rivers " + "and coffee " * (3 * i)}])
        sampled = {"temperature": 1.0, "seed": i, "top_p": 0.9} if i % 3 == 1 else {}
        requests.append(GenRequest(prompt, max_tokens=5 + 7 * i, **sampled))
    requests.append(GenRequest(requests[0].prompt_ids, max_tokens=1))  # finishes at its prefill
    return requests


def test_a_row_decodes_the_same_alone_batched_or_joining_late(bf16_engine: HFEngine) -> None:
    assert bf16_engine.layout == "slots"
    requests = mixed_requests(bf16_engine)
    alone = [bf16_engine.generate([r])[0] for r in requests]
    together = bf16_engine.generate(requests)
    decoder, late = bf16_engine.decoder(), {}
    for step in range(40):  # a new row joins every third step while the others decode
        if step % 3 == 0 and step // 3 < len(requests):
            i = step // 3
            decoder.add(requests[i], lambda r, i=i: late.__setitem__(i, r))
        decoder.step()
    while decoder.pending():
        decoder.step()
    for results in (together, [late[i] for i in range(len(requests))]):
        assert [(r.text, r.finish_reason, r.completion_tokens) for r in results] == [
            (r.text, r.finish_reason, r.completion_tokens) for r in alone
        ]
    assert not decoder.rows and not decoder.cache.keys  # finished rows left; the buffers were freed


def test_the_model_still_works_outside_the_slot_decoder(bf16_engine: HFEngine) -> None:
    import torch

    requests = mixed_requests(bf16_engine)
    padded = HFEngine(bf16_engine.model, bf16_engine.tokenizer, name="tiny", layout="padded")
    assert padded.decoder().joinable is False and bf16_engine.decoder().joinable is True
    results = padded.generate(requests)
    assert all(0 < r.completion_tokens <= q.max_tokens for r, q in zip(results, requests, strict=True))
    inputs = bf16_engine.tokenizer(["a river", "a much longer text about rivers"], return_tensors="pt", padding=True)
    out = bf16_engine.model.generate(**inputs, max_new_tokens=5, do_sample=False)  # plain SDPA when no plan
    with torch.inference_mode():
        plain = bf16_engine.model(**inputs).logits[:, -1].argmax(-1)
    assert out.shape == (2, inputs["input_ids"].shape[1] + 5) and out[:, -5].tolist() == plain.tolist()


def test_calls_arriving_during_a_decode_join_it(bf16_engine: HFEngine) -> None:
    engine = HFEngine(bf16_engine.model, bf16_engine.tokenizer, name="tiny")
    engine.eos_ids = set()  # random weights may end early: every call decodes its whole budget
    batcher = DynamicBatcher(engine.decoder(), max_batch_size=8, max_wait_s=0.001)
    prompt = engine.encode_chat([{"role": "user", "content": "Write a quiz about rivers."}])
    started = threading.Event()
    long = batcher.submit(GenRequest(prompt, max_tokens=400, on_text=lambda text, logprobs: started.set()))
    assert started.wait(timeout=30)  # the long call is decoding
    for _ in range(3):
        assert batcher.submit(GenRequest(prompt, max_tokens=4)).result(timeout=30).completion_tokens == 4
    assert not long.done()  # the short calls did not wait for the long one
    assert long.result(timeout=120).completion_tokens == 400
    assert batcher.stats.sizes == [1, 2, 2, 2]  # each joined the running decode
    batcher.close()


def test_batch_of_32_is_decoded_together(tiny_model_path: Path) -> None:
    unload_model(str(tiny_model_path))
    # A generous wait: on a loaded machine the 32 threads encoding their prompts can stall for tens of ms.
    model = ChatTransformers(model=str(tiny_model_path), max_batch_size=32, max_tokens=8, max_wait_ms=500)
    model.engine.eos_ids = set()
    stats = _POOL.get(model).batcher.stats
    before_steps, before_rows = stats.steps, stats.row_steps
    prompts = [[HumanMessage(f"Write {i} facts about coffee")] for i in range(32)]
    assert all(a.usage_metadata["output_tokens"] == 8 for a in model.batch(prompts))
    assert stats.sizes == [32]  # one gathering took every call
    steps = stats.steps - before_steps
    assert (stats.row_steps - before_rows) / steps > 16, stats
    unload_model(str(tiny_model_path))


TEXTS = ["café ☕ naïve 東京 🙂 Zürich", "plain ascii words, then ünïcödé and emoji 🎉🎉 (party)", "ok"]


@pytest.mark.parametrize("source", ["text", "random"])
def test_incremental_text_is_the_decode_of_every_id(bf16_engine: HFEngine, source: str) -> None:
    tokenizer = bf16_engine.tokenizer
    rng = random.Random(5)
    sequences = (
        [tokenizer.encode(t, add_special_tokens=False) for t in TEXTS]
        if source == "text"
        else [rng.choices(range(len(tokenizer)), k=300) for _ in range(5)]  # split and invalid byte sequences
    )
    for ids in sequences:
        grown: list[int] = []
        detok, text = _Detokenizer(tokenizer, grown), ""
        for token in ids:
            grown.append(token)
            text += detok.push()
            assert tokenizer.decode(grown, skip_special_tokens=True).startswith(text)
        assert detok.full() == tokenizer.decode(ids, skip_special_tokens=True)
        if source == "text":
            assert text == detok.full()


def test_incremental_text_decodes_a_short_window_per_token(bf16_engine: HFEngine) -> None:
    decoded: list[int] = []

    class Counting:
        def decode(self, ids, **kwargs):
            decoded.append(len(ids))
            return bf16_engine.tokenizer.decode(ids, **kwargs)

    ids = bf16_engine.tokenizer.encode(" ".join(TEXTS * 40), add_special_tokens=False)
    grown: list[int] = []
    detok = _Detokenizer(Counting(), grown)
    for token in ids:
        grown.append(token)
        detok.push()
    assert len(ids) > 500 and sum(decoded) < 12 * len(ids)  # a full decode per token would be ~len(ids)**2 / 2


def test_models_load_one_at_a_time_across_threads(tiny_model_path: Path) -> None:
    """from_pretrained builds weights on the meta device through process-wide state: two loads in two threads
    (an evaluator's LM beside a chat model, as a server scoring while it generates does) could fail with 'Cannot
    copy out of meta tensor'. Every load of ours waits for LOADING, which any other load holds."""
    from chains.hf_engine import LOADING
    from evaluators.fluency.perplexity import load_lm

    loaded: list[str] = []
    loaders = {
        "engine": lambda: HFEngine.load(str(tiny_model_path), dtype="float32"),
        "perplexity": lambda: load_lm(tiny_model_path, "cpu"),
    }
    threads = [threading.Thread(target=lambda n=n, f=f: (f(), loaded.append(n))) for n, f in loaders.items()]
    with LOADING:  # held here, as by another thread's load
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        assert loaded == []
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(loaded) == ["engine", "perplexity"]
