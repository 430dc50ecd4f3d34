"""A prompt that does not fit a local model's window: the error says what would fit (tiny model, 1,024 tokens)."""

from __future__ import annotations

import pytest

from chains import ChatTransformers, ContextWindowExceeded


def test_a_long_answer_budget_is_told_the_max_tokens_that_fits(tiny_model_path) -> None:
    model = ChatTransformers(model=str(tiny_model_path))
    prompt = "word " * 200
    used = len(model.engine.encode_chat([{"role": "user", "content": prompt}]))
    with pytest.raises(ContextWindowExceeded) as info:
        model.invoke(prompt, max_tokens=1000)
    message = str(info.value)
    assert f"it fits with max_tokens <= {1024 - used} (aigc generate --max-tokens)" in message
    assert f"a prompt shorter by {used + 1000 - 1024} tokens" in message
    assert "truncate_left" not in message  # a one-turn prompt cut from the left loses its instructions
    assert model.invoke(prompt, max_tokens=1024 - used).usage_metadata["total_tokens"] <= 1024  # the advice holds


def test_a_prompt_over_the_window_by_itself_says_so(tiny_model_path) -> None:
    model = ChatTransformers(model=str(tiny_model_path))
    with pytest.raises(ContextWindowExceeded, match="the prompt alone is over the window: shorten it by at least"):
        model.invoke("word " * 2000, max_tokens=10)


def test_only_a_conversation_is_offered_truncation(tiny_model_path) -> None:
    engine = ChatTransformers(model=str(tiny_model_path)).engine
    ids = list(range(900))
    with pytest.raises(ContextWindowExceeded, match="context_overflow='truncate_left' drops the oldest tokens"):
        engine.fit(ids, 200, conversation=True)
    assert len(engine.fit(ids, 200, "truncate_left", conversation=True)) == 824
