"""Compositions (``chains.compose``): every step a named run, each step on the model asked for, and one full
composition on the real SmolLM2 when it is in the model cache."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from chains import compose
from chains.chain import ChainError
from chains.config import ModelsConfig

VARIANT = {"angle": "outcome", "headline": "Finish strong", "body": "Aurora Trail 2 grips.", "cta": "Shop Now"}
HEADINGS = [
    "Learning objectives",
    "Materials",
    "Warm-up (5 min)",
    "Direct instruction (10 min)",
    "Guided practice (10 min)",
    "Assessment (5 min)",
    "Differentiation",
]
PLAN = "\n".join(f"## {h}\nPlants make glucose from light." for h in HEADINGS)
QUESTION = {
    "question": "Which gas do plants release?",
    "type": "multiple_choice",
    "options": ["Oxygen", "Nitrogen", "Carbon dioxide", "Helium"],
    "answer": "Oxygen",
    "explanation": "Plants release oxygen in photosynthesis.",
    "difficulty": "easy",
}


@pytest.fixture
def server(openai_server):
    openai_server.clear()
    yield openai_server
    openai_server.clear()


@pytest.fixture
def config(server) -> ModelsConfig:
    return ModelsConfig.model_validate({"openai": {"base_url": server.base_url, "api_key": "k", "model": "gpt-test"}})


class Names(BaseCallbackHandler):
    def __init__(self) -> None:
        self.names: list[str] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.names.append(kwargs.get("name") or "")


def review(index: int, score: int, on_brand: bool = True) -> dict[str, Any]:
    return {"index": index, "score": score, "on_brand": on_brand, "issues": [], "reason": f"reason {index}"}


def test_campaign_drafts_critiques_and_ranks_each_step_on_its_own_model(server, config) -> None:
    variants = [VARIANT, {**VARIANT, "angle": "identity"}, {**VARIANT, "angle": "curiosity"}]
    server.script(json.dumps({"variants": variants}), model="gpt-test")
    server.script(json.dumps({"reviews": [review(1, 6), review(2, 9, on_brand=False), review(3, 8)]}), model="gpt-big")
    names = Names()
    runnable = compose.campaign(models={"draft": "openai:gpt-test", "critique": "openai:gpt-big"}, config=config)
    brief = {"product_name": "Aurora Trail 2", "audience": "runners", "brand_guide": "Calm. No hype.", "variants": 3}
    result = runnable.invoke(brief, {"callbacks": [names]})
    assert [(r.rank, r.variant.angle, r.on_brand) for r in result.ranked] == [
        (1, "curiosity", True),
        (2, "outcome", True),
        (3, "identity", False),
    ]
    assert [r.body["model"] for r in server.requests] == ["gpt-test", "gpt-big"]
    critique = server.requests[1].body["messages"][-1]["content"]
    assert "Calm. No hype." in critique and "3. Angle: curiosity | Headline: Finish strong" in critique
    assert {"marketing.campaign", "draft", "critique", "rank", "render", "parse"} <= set(names.names)


def test_a_critique_missing_a_variant_is_repaired(server, config) -> None:
    server.script(
        json.dumps({"variants": [VARIANT, VARIANT]}),
        json.dumps({"reviews": [review(1, 5)]}),
        json.dumps({"reviews": [review(1, 5), review(2, 7)]}),
    )
    result = compose.campaign("openai:gpt-test", config=config).invoke(
        {"product_name": "Aurora", "audience": "runners", "brand_guide": "Calm.", "variants": 2}
    )
    assert [r.score for r in result.ranked] == [7, 5]
    assert "indexes 1 to 2" in server.requests[-1].body["messages"][-1]["content"]


def test_education_pack_grounds_the_quiz_in_the_plan_and_checks_the_key(server, config) -> None:
    quiz = {"topic": "photosynthesis", "grade_level": 6, "questions": [QUESTION, {**QUESTION, "answer": "Nitrogen"}]}
    check = {
        "items": [
            {"index": 1, "correct": True, "covered_by_plan": True, "note": "ok"},
            {"index": 2, "correct": False, "covered_by_plan": True, "note": "the key should be Oxygen"},
        ]
    }
    server.script(PLAN, json.dumps(quiz), json.dumps(check))
    names = Names()
    brief = {
        "subject": "Science",
        "topic": "photosynthesis",
        "grade_level": 6,
        "objectives": "explain it",
        "num_questions": 2,
    }
    pack = compose.pack("openai:gpt-test", config=config).invoke(brief, {"callbacks": [names]})
    assert not pack.consistent and pack.problems == ["question 2: the key should be Oxygen"]
    quiz_request = [m["content"] for m in server.requests[1].body["messages"] if m["role"] == "user"][-1]
    assert "Plants make glucose from light." in quiz_request  # the plan is the quiz's context
    check_request = server.requests[2].body["messages"][-1]["content"]
    assert "2. Q: Which gas do plants release? | Choices: Oxygen; Nitrogen" in check_request
    assert {"education.pack", "lesson_plan", "quiz", "check"} <= set(names.names)
    assert pack.model_dump(mode="json")["consistent"] is False


def test_writing_pipeline_outlines_drafts_and_polishes(server, config) -> None:
    outline = {
        "title": "Less waste",
        "sections": [{"heading": "Bake less", "points": ["p"]}, {"heading": "Sell surplus", "points": ["q"]}],
    }
    draft = "# Less waste\n\n## Bake less\nSo basically bake less.\n\n## Sell surplus\nSell it."
    server.script(
        json.dumps(outline),
        "# Less waste\n\n## Bake less\nOnly one section.",
        draft,
        "# Less waste\n\n## Bake less\nBake less.\n\n## Sell surplus\nSell it.",
    )
    names = Names()
    result = compose.pipeline("openai:gpt-test", config=config).invoke(
        {"topic": "café waste", "audience": "owners", "sections": 2}, {"callbacks": [names]}
    )
    assert result.text.endswith("## Sell surplus\nSell it.") and "basically" not in result.text
    assert "lacks the outline's sections ['sell surplus']" in server.requests[2].body["messages"][-1]["content"]
    assert "<draft>\n" + draft in server.requests[3].body["messages"][-1]["content"]
    assert {"writing.pipeline", "outline", "draft", "polish"} <= set(names.names)


def test_unknown_steps_and_chains_are_named(config) -> None:
    with pytest.raises(ChainError, match=r"unknown step 'critic'.*'draft', 'critique'"):
        compose.campaign(models={"critic": "openai:gpt-test"}, config=config)
    with pytest.raises(compose.UnknownChain, match=r"Did you mean: marketing\.campaign"):
        compose.get_chain("marketing.campain")


@pytest.mark.real_model
def test_a_full_composition_on_smollm2_validates(smollm2_path) -> None:
    """The marketing campaign end to end on the real local model: both steps decoded under their (narrowed)
    schemas, parsed and validated, then ranked."""
    from chains import ChatTransformers

    model = ChatTransformers(model=str(smollm2_path), dtype="bfloat16")
    brief = {
        "product_name": "Aurora Trail 2",
        "audience": "trail runners",
        "variants": 1,
        "brand_guide": "Calm and specific. No hype, no exclamation marks.",
    }
    result = compose.campaign(model, max_tokens=320, temperature=0).invoke(brief)
    assert isinstance(result, compose.Campaign) and len(result.ranked) == 1
    top = result.ranked[0]
    assert top.rank == 1 and 1 <= top.score <= 10 and top.variant.headline.strip() and top.reason.strip()
