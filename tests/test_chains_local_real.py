"""SmolLM2-135M-Instruct in bf16: a call's greedy answer does not depend on the batch it was decoded in.

One at a time, as one batch, or joining a decode already running, prompts of very different lengths get the
same tokens. The last test checks the check: the same comparison on left-padded batches does find a difference,
so the first ones are not passing because drift cannot show on this model. Skipped when the model is not cached.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from chains import ChatTransformers
from chains.hf_engine import GenRequest, GenResult, HFEngine
from chains.local import _POOL

pytestmark = pytest.mark.real_model

NEW_TOKENS = 64
PROMPTS = [
    [HumanMessage("Hi")],
    [HumanMessage("Write a haiku about the sea.")],
    [HumanMessage("Explain in two sentences why the sky is blue, for a child of seven who likes trains.")],
    [HumanMessage("What is 17 times 23? Show your working step by step, then give the answer on its own line.")],
    [SystemMessage("You are a careful travel writer."), HumanMessage("Describe Lisbon in one paragraph.")],
    [HumanMessage("Translate 'good morning' into French, German and Spanish.")],
    [HumanMessage("Give me a name for a small grey cat who sleeps in boxes.")],
    [
        SystemMessage("You summarise long texts faithfully, in plain words, without adding anything."),
        HumanMessage(
            "Summarise: "
            + " ".join(
                f"In chapter {i}, the crew of the river boat reached a new town, traded salt for grain, "
                f"and argued about whether to turn back before the rains."
                for i in range(1, 9)
            )
        ),
    ],
]


@pytest.fixture(scope="module")
def chat(smollm2_path) -> ChatTransformers:
    return ChatTransformers(
        model=str(smollm2_path), dtype="bfloat16", max_tokens=NEW_TOKENS, max_batch_size=len(PROMPTS)
    )


@pytest.fixture(scope="module")
def alone(chat: ChatTransformers) -> list[str]:
    """Each prompt on its own: one call at a time through the model."""
    return [chat.invoke(p).content for p in PROMPTS]


def requests(engine: HFEngine) -> list[GenRequest]:
    chats = [[{"role": "system" if m.type == "system" else "user", "content": m.text} for m in p] for p in PROMPTS]
    return [GenRequest(engine.encode_chat(c), max_tokens=NEW_TOKENS) for c in chats]


def test_the_prompts_differ_in_length(chat: ChatTransformers) -> None:
    lengths = sorted(len(r.prompt_ids) for r in requests(chat.engine))
    assert len(set(lengths)) == len(PROMPTS) and lengths[-1] - lengths[0] > 200, lengths


def test_batched_and_sequential_greedy_answers_are_identical(chat: ChatTransformers, alone: list[str]) -> None:
    stats = _POOL.get(chat).batcher.stats
    before = len(stats.sizes)
    together = [m.content for m in chat.batch(PROMPTS)]
    assert max(stats.sizes[before:]) > 1  # really decoded together
    assert together == alone


def test_rows_joining_a_running_decode_get_the_same_answers(chat: ChatTransformers, alone: list[str]) -> None:
    decoder, results = chat.engine.decoder(), {}
    pending = list(enumerate(requests(chat.engine)))
    for _ in range(3):  # three rows start; the others join two at a time, every few steps
        i, request = pending.pop(0)
        decoder.add(request, lambda r, i=i: results.__setitem__(i, r))
    steps = 0
    while decoder.pending():
        decoder.step()
        steps += 1
        if pending and steps % 5 == 0:
            for i, request in [pending.pop(0) for _ in range(min(2, len(pending)))]:
                decoder.add(request, lambda r, i=i: results.__setitem__(i, r))
    assert [results[i].text for i in range(len(PROMPTS))] == alone


def test_left_padded_batches_drift_so_the_comparison_can_fail(chat: ChatTransformers, alone: list[str]) -> None:
    engine = chat.engine
    padded = HFEngine(engine.model, engine.tokenizer, name=engine.name, layout="padded")
    results: list[GenResult] = padded.generate(requests(engine))
    assert [r.text for r in results] != alone


def test_streamed_text_is_the_decode_of_every_token(chat: ChatTransformers) -> None:
    from chains.hf_engine import _Detokenizer

    tokenizer = chat.engine.tokenizer
    text = "Café au lait, 東京の夜, naïve Zürich 🙂🎉 and a last plain sentence. " * 5
    ids = tokenizer.encode(text, add_special_tokens=False)
    grown: list[int] = []
    detok, streamed = _Detokenizer(tokenizer, grown), ""
    for token in ids:
        grown.append(token)
        streamed += detok.push()
    assert streamed == detok.full() == tokenizer.decode(ids, skip_special_tokens=True)
