"""Task chains (``from chains import writing, marketing, education``) against the scripted OpenAI server: typed
inputs, validated outputs, the output models' rules driving the repair attempt, and prompt refs callers pin."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from chains import StructuredOutputError, education, marketing, writing
from chains.chain import ChainError
from chains.config import ModelsConfig

VARIANT = {"angle": "outcome", "headline": "Finish strong", "body": "Aurora Trail 2 grips.", "cta": "Shop Now"}
MC = {
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
def model(server) -> dict:
    config = ModelsConfig.model_validate({"openai": {"base_url": server.base_url, "api_key": "k", "model": "gpt-test"}})
    return {"model": "openai:gpt-test", "config": config}


def last_user(server) -> str:
    return [m for m in server.requests[-1].body["messages"] if m["role"] == "user"][-1]["content"]


def test_ad_copy_returns_typed_variants_and_repairs_a_wrong_count(server, model) -> None:
    server.script(
        json.dumps({"variants": [VARIANT]}), json.dumps({"variants": [VARIANT, {**VARIANT, "angle": "identity"}]})
    )
    brief = marketing.AdCopyInput(product_name="Aurora Trail 2", audience="trail runners", variants=2)
    variants = marketing.ad_copy(**model).invoke(brief)
    assert [type(v) for v in variants] == [marketing.AdVariant] * 2 and variants[1].angle == "identity"
    assert "1 variants were written; 2 were asked for" in last_user(server)


def test_a_pinned_ref_renders_that_version(server, model) -> None:
    brief = {"product_name": "A", "audience": "b", "variants": 1}
    server.script(json.dumps({"variants": [VARIANT]}))
    marketing.ad_copy(ref="marketing/ad_copy@1.0.0", **model).invoke(brief)
    assert "Angles. Give every variant" not in server.requests[-1].body["messages"][1]["content"]  # 1.1.0's wording
    server.script(json.dumps({"variants": [VARIANT]}))
    marketing.ad_copy(**model).invoke(brief)
    assert "Angles. Give every variant" in server.requests[-1].body["messages"][1]["content"]


@pytest.mark.parametrize(("platform", "limit"), [("x", 280), ("linkedin", 3000), ("instagram", 2200)])
def test_social_posts_are_held_to_their_platform_limit(server, model, platform, limit) -> None:
    server.script("w" * (limit + 1), "w" * limit)
    post = marketing.social_post(**model).invoke({"platform": platform, "topic": "our launch"})
    assert isinstance(post, marketing.SocialPost) and post.platform == platform and post.characters == limit
    assert f"the post has {limit + 1} characters; {platform} allows {limit}" in last_user(server)


def test_a_post_that_never_fits_is_an_error_with_the_raw_text(server, model) -> None:
    server.script("x" * 300, "y" * 290)
    with pytest.raises(StructuredOutputError) as info:
        marketing.social_post(**model).invoke({"platform": "x", "topic": "t"})
    assert info.value.raw == "y" * 290 and "x allows 280" in str(info.value)


def test_bad_input_names_the_field(model) -> None:
    with pytest.raises(ChainError, match="platform"):
        marketing.social_post(**model).invoke({"platform": "myspace", "topic": "t"})
    with pytest.raises(ChainError, match="topc"):
        marketing.social_post(**model).invoke({"platform": "x", "topc": "t"})


def test_seo_article_checks_title_and_primary_keyword(server, model) -> None:
    article = "Meta description: All about trail shoes.\n\n# Trail running shoes explained\n\nPick trail running shoes."
    server.script("# A title\n\nNothing relevant.", article)
    brief = {
        "topic": "shoes",
        "primary_keyword": "trail running shoes",
        "audience": "new runners",
        "secondary_keywords": "grip, drop",
    }
    result = marketing.seo_article(**model).invoke(brief)
    assert result.title == "Trail running shoes explained" and result.meta_description == "All about trail shoes."
    assert result.missing_keywords == ["grip", "drop"]
    assert "'trail running shoes' does not appear" in last_user(server)


def test_writing_chains_check_their_facts(server, model) -> None:
    server.script("Warm mornings.", "The Harbor Set makes warm mornings.")
    description = writing.product_description(**model).invoke(
        {"product_name": "Harbor Set", "features": ["stoneware"], "audience": "coffee drinkers"}
    )
    assert description.text == "The Harbor Set makes warm mornings."
    server.script("Acme opens a plant.\n\nLeeds, today.")
    release = writing.press_release(**model).invoke(
        {"company": "Acme", "announcement": "A plant opens.", "key_points": ["60 jobs"]}
    )
    assert release.headline == "Acme opens a plant."


def test_rewrite_modes_and_kept_terms(server, model) -> None:
    server.script("Short text.", "Short text on 14 March.")
    result = writing.rewrite(mode="shorten", **model).invoke(
        {"text": "A long text on 14 March.", "keep_terms": ["14 March"]}
    )
    assert result.text == "Short text on 14 March."
    first = [m for m in server.requests[0].body["messages"] if m["role"] == "user"][-1]["content"]
    assert first.startswith("Task: Shorten")
    assert "missing: ['14 March']" in last_user(server)


def test_personalize_keeps_must_keep_strings_and_the_channel_length(server, model) -> None:
    server.script("Hi Sam, use code SAVE10 today, it is a really long text " * 5, "Hi Sam: SAVE10 today.")
    result = writing.personalize(**model).invoke(
        {"base_message": "Use SAVE10.", "persona": "Sam", "channel": "sms", "must_keep": ["SAVE10"]}
    )
    assert result.text == "Hi Sam: SAVE10 today."
    assert "sms allows 160" in last_user(server)


def test_quiz_answer_key_must_be_one_of_the_choices(server, model) -> None:
    wrong = {**MC, "answer": "Water"}
    server.script(
        json.dumps({"topic": "plants", "grade_level": 6, "questions": [wrong]}),
        json.dumps({"topic": "plants", "grade_level": 6, "questions": [MC]}),
    )
    quiz = education.quiz(**model).invoke(education.QuizInput(topic="plants", grade_level=6, num_questions=1))
    assert quiz.questions[0].choices[0] == "Oxygen" and quiz.questions[0].answer == "Oxygen"
    assert "'Water' to 'Which gas do plants release?' is not one of its choices" in last_user(server)


@pytest.mark.parametrize(
    ("question", "problem"),
    [
        ({**MC, "type": "true_false", "answer": "Yes"}, "needs choices ['True', 'False']"),
        ({**MC, "type": "short_answer"}, "must have no choices"),
        ({**MC, "options": ["Oxygen", "Oxygen"]}, "distinct choices"),
    ],
)
def test_question_rules(question, problem) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        education.Question.model_validate(question)


def test_language_dialogue_needs_one_answer_per_exercise_item(server, model) -> None:
    lesson = (
        "## Dialogue: Im Café\n**Anna:** Hallo!\n\n## Exercise\nFill in.\n1. Ich ____ Kaffee.\n2. Du ____ Tee.\n\n"
        "## Answer key\n1. trinke\n"
    )
    server.script(lesson, lesson + "2. trinkst\n")
    result = education.language_dialogue(**model).invoke(
        {"target_language": "German", "cefr_level": "A1", "scenario": "café", "grammar_point": "present tense"}
    )
    assert result.exercise == ["Ich ____ Kaffee.", "Du ____ Tee."] and result.answer_key == ["trinke", "trinkst"]
    assert "2 items but the answer key 1 answers" in last_user(server)


def test_lesson_plan_needs_every_section(server, model) -> None:
    heads = [
        "Learning objectives",
        "Materials",
        "Warm-up (5 min)",
        "Direct instruction (10 min)",
        "Guided practice (10 min)",
        "Assessment (5 min)",
        "Differentiation",
    ]
    plan = "\n".join(f"## {h}\nSomething." for h in heads)
    server.script("## Learning objectives\nOnly this.", plan)
    result = education.lesson_plan(**model).invoke(
        {"subject": "Science", "topic": "plants", "grade_level": 6, "objectives": "explain photosynthesis"}
    )
    assert result.sections["Warm-up"] == "Something."
    assert "lacks the sections ['Materials'" in last_user(server)


def test_importing_chains_and_the_task_chains_loads_no_torch() -> None:
    code = (
        "import sys, chains; from chains import writing, marketing, education, compose; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
