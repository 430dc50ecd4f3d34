"""``aigc run`` end to end: prompt refs and named chains -> router -> the real OpenAI client over HTTP -> terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigc_app.cli import run

VARIANT = {"angle": "outcome", "headline": "Finish strong", "body": "Aurora Trail 2 grips.", "cta": "Shop Now"}


@pytest.fixture
def server(openai_server, monkeypatch):
    openai_server.clear()
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("AIGC_OPENAI_MODEL", "gpt-test")
    monkeypatch.chdir(Path(__file__).parent)  # no aigc.yaml here
    yield openai_server
    openai_server.clear()


def test_a_text_prompt_streams_its_tokens(server, capsys) -> None:
    server.script("Plain words for everyone.")
    assert run(["run", "writing/rewrite", "--var", "text=Hard words.", "--max-tokens", "40"]) == 0
    out, err = capsys.readouterr()
    assert out == "Plain words for everyone.\n" and "writing/rewrite@1.0.0 -> openai:gpt-test" in err
    body = server.requests[-1].body
    assert body["stream"] is True and body["max_completion_tokens"] == 40


def test_a_json_prompt_prints_validated_json_not_an_escaped_string(server, capsys) -> None:
    server.script("Here you go!", json.dumps({"variants": [VARIANT]}))
    assert run(["run", "marketing/ad_copy", "--example", "--var", "variants=1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["content"] == {"variants": [VARIANT]} and result["prompt"] == "marketing/ad_copy@1.1.0"
    assert len(server.requests) == 2  # the non-JSON answer got the repair attempt


def test_an_answer_that_never_validates_exits_1_with_the_raw_text(server, capsys) -> None:
    server.script("not json", "still not json")
    assert run(["run", "marketing/ad_copy", "--example", "--no-stream"]) == 1
    err = capsys.readouterr().err
    assert "did not validate" in err and "still not json" in err and "Traceback" not in err


def test_a_task_chain_with_a_vars_file(server, capsys, tmp_path) -> None:
    variables = tmp_path / "post.yaml"
    variables.write_text("platform: x\ntopic: our launch\nhashtags: [launch]\n")
    server.script("x" * 281, "Launch day. #launch")
    assert run(["run", "marketing.social_post", "--vars-file", str(variables), "--var", "tone=playful"]) == 0
    assert capsys.readouterr().out == "Launch day. #launch\n"
    assert server.requests[0].body["stream"] is False


def test_a_composition_prints_json_with_a_model_per_step(server, capsys) -> None:
    server.script(json.dumps({"variants": [VARIANT]}), model="gpt-test")
    review = {"index": 1, "score": 8, "on_brand": True, "issues": [], "reason": "calm and specific"}
    server.script(json.dumps({"reviews": [review]}), model="gpt-big")
    argv = [
        "run",
        "marketing.campaign",
        "--var",
        "product_name=Aurora",
        "--var",
        "audience=runners",
        "--var",
        "brand_guide=Calm.",
        "--var",
        "variants=1",
        "--step-model",
        "critique=openai:gpt-big",
    ]
    assert run(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ranked"][0]["reason"] == "calm and specific" and result["ranked"][0]["variant"] == VARIANT
    assert [r.body["model"] for r in server.requests] == ["gpt-test", "gpt-big"]


@pytest.mark.parametrize(
    ("name", "hint"),
    [("marketing.campain", "marketing.campaign"), ("ad_cop", "ad_copy"), ("education/quizz", "education/quiz")],
)
def test_unknown_names_suggest_near_ones(server, capsys, name, hint) -> None:
    assert run(["run", name]) == 1
    err = capsys.readouterr().err
    assert "Did you mean" in err and hint in err


def test_step_models_are_for_compositions_and_examples_for_prompts(server, capsys) -> None:
    assert run(["run", "marketing.ad_copy", "--step-model", "draft=openai:gpt-test"]) == 2
    assert "single-step chain" in capsys.readouterr().err
    assert run(["run", "education.pack", "--example"]) == 2
    assert "for a chain, give --var or --vars-file" in capsys.readouterr().err
