"""The real local model (SmolLM2-135M-Instruct from `aigc models pull smollm2`): the built-in prompts fit it and
it writes fluent text. Skipped when the model is not in the cache; CI pulls it and requires these to run."""

from __future__ import annotations

import json
import re

import pytest

from chains import ChatTransformers
from chains.model_store import KNOWN_MODELS, MANIFEST
from prompts import PromptRegistry

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def smollm2(smollm2_path) -> ChatTransformers:
    return ChatTransformers(model=str(smollm2_path), dtype="bfloat16")


def builtin_prompts() -> list[str]:
    return [entry.id for entry in PromptRegistry([])]


@pytest.mark.parametrize("ref", builtin_prompts())
def test_every_builtin_prompt_fits_the_window_with_its_declared_budget(ref: str, smollm2) -> None:
    prompt = PromptRegistry([]).get(ref)
    values = {k: s.example for k, s in prompt.meta.inputs.items() if s.example is not None}
    messages = [{"role": m.role, "content": m.content} for m in prompt.render(**values)]
    prompt_tokens = len(smollm2.engine.encode_chat(messages))
    budget = prompt.meta.model.max_tokens or smollm2.max_tokens
    assert prompt_tokens + budget <= smollm2.engine.context_window == 8192, (ref, prompt_tokens, budget)


def test_a_builtin_prompt_generates_fluent_english(smollm2) -> None:
    from langdetect import detect

    from evaluators.base import Sample
    from evaluators.fluency.degeneration import DegenerationEvaluator

    prompt = PromptRegistry([]).get("writing/product_description")
    values = {k: s.example for k, s in prompt.meta.inputs.items() if s.example is not None}
    text = smollm2.invoke(prompt.to_langchain(**values), max_tokens=80, temperature=0.7, seed=0).text  # greedy loops
    words = [w.strip(".,:;!?\"'()-") for w in text.split()]
    assert len(words) >= 8 and any(end in text for end in ".!?"), text  # at least one whole sentence
    assert sum(bool(re.fullmatch(r"[A-Za-z]+(['’-][A-Za-z]+)*", w)) for w in words) / len(words) >= 0.85, text
    assert detect(text) == "en", text
    score = DegenerationEvaluator().score(Sample(output=text))
    assert score.value >= 0.5, (score, text)


def test_the_pulled_folder_records_the_pinned_checksum(smollm2_path) -> None:
    manifest = smollm2_path / MANIFEST
    if not manifest.exists():
        pytest.skip("this folder was copied in by hand, not pulled")
    recorded = json.loads(manifest.read_text(encoding="utf-8"))
    spec = KNOWN_MODELS["smollm2-135m-instruct"]
    assert recorded["sha256"] == spec.wheel_sha256 and recorded["context_window"] == spec.context_window
