"""``aigc generate`` end to end: prompt library -> router -> the real OpenAI client over HTTP -> terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigc_app.cli import run
from aigc_app.settings import models_config
from chains.testing import Fault

SECRET = "sk-cli-SECRET-77"


@pytest.fixture
def server(openai_server, monkeypatch):
    openai_server.clear()
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("AIGC_OPENAI_MODEL", "gpt-test")
    monkeypatch.chdir(Path(__file__).parent)  # no aigc.yaml here
    yield openai_server
    openai_server.clear()


def test_generate_streams_the_answer(server, capsys) -> None:
    server.script("Meet Aurora Trail 2: grip that holds.")
    assert run(["generate", "writing/product_description", "--example"]) == 0
    out, err = capsys.readouterr()
    assert "Meet Aurora Trail 2: grip that holds." in out
    assert "answered by openai:gpt-test after 1 attempt(s)" in err
    body = server.requests[-1].body
    assert body["stream"] is True and body["messages"][0]["role"] == "system"


def test_generate_json_reports_prompt_hash_route_and_usage(server, capsys) -> None:
    server.script(Fault.server_error(), "Second try.")
    assert run(["generate", "marketing/social_post", "--var", "platform=x", "--var", "topic=launch", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["content"] == "Second try." and result["route"]["attempts"] == 2
    assert result["prompt"] == "marketing/social_post@1.1.0" and len(result["prompt_hash"]) == 64
    assert SECRET not in json.dumps(result)


def test_generate_errors_are_one_line(server, capsys) -> None:
    server.script(Fault.unauthorized())
    assert run(["generate", "marketing/social_post", "--example", "--no-stream"]) == 1
    err = capsys.readouterr().err
    assert "refused the credentials (401)" in err and SECRET not in err and "Traceback" not in err


def test_settings_precedence(tmp_path: Path) -> None:
    file = tmp_path / "aigc.yaml"
    file.write_text("models:\n  openai: {model: gpt-file, timeout: 5}\n  router: {default: auto}\n")
    config = models_config(file, env={"AIGC_OPENAI_MODEL": "gpt-env", "OPENAI_API_KEY": "k"})
    assert config.openai.model == "gpt-env" and config.openai.timeout == 5 and config.openai.configured
    file.write_text("models:\n  openai: {modle: typo}\n")
    with pytest.raises(ValueError, match="modle"):
        models_config(file, env={})


def test_config_mistakes_name_the_file_and_never_echo_values(tmp_path: Path) -> None:
    from aigc_app.settings import ConfigError

    file = tmp_path / "aigc.yaml"
    file.write_text("models:\n  openai: {apikey: sk-LEAK-123}\n")
    with pytest.raises(ConfigError) as info:
        models_config(file, env={})
    assert str(file) in str(info.value) and "models.openai.apikey" in str(info.value)
    assert "sk-LEAK-123" not in str(info.value)
    file.write_text("models:\n  openai: {api_key: [sk-LEAK-123\n")
    with pytest.raises(ConfigError, match=r"aigc.yaml:\d+: malformed YAML") as info:
        models_config(file, env={})
    assert "sk-LEAK-123" not in str(info.value)


def test_generate_without_any_model_says_how_to_configure_one(capsys, monkeypatch, tmp_path: Path) -> None:
    for variable in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AIGC_LOCAL_MODEL", "AIGC_MODEL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AIGC_MODELS_DIR", str(tmp_path / "empty-model-cache"))
    monkeypatch.chdir(tmp_path)
    assert run(["generate", "marketing/ad_copy", "--example"]) == 1
    err = capsys.readouterr().err
    assert "no model is configured: run `aigc models pull smollm2`" in err and "Traceback" not in err


def test_vars_file_that_is_not_text(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "vars.yaml"
    bad.write_bytes(b"\xff\xfe\x00brand")
    assert run(["prompts", "render", "marketing/ad_copy", "--vars-file", str(bad)]) == 2
    assert "not UTF-8 text" in capsys.readouterr().err


def test_generate_flags_override_the_prompts_defaults(server, capsys) -> None:
    server.script("A short one.")
    argv = ["generate", "writing/product_description", "--example", "--no-stream"]
    assert run([*argv, "--max-tokens", "40", "--temperature", "0.3", "--seed", "7"]) == 0
    body = server.requests[-1].body
    assert (body.get("max_completion_tokens"), body["temperature"], body["seed"]) == (40, 0.3, 7)
    assert run([*argv, "--temperature", "3"]) == 2  # click's range check, one line
    assert "Traceback" not in capsys.readouterr().err


def test_generate_a_json_prompt_validates_and_prints_the_value(server, capsys) -> None:
    question = {
        "question": "Is 1/2 larger than 1/3?",
        "type": "true_false",
        "options": ["True", "False"],
        "answer": "True",
        "explanation": "Halves are larger pieces than thirds of the same whole.",
        "difficulty": "easy",
    }
    quiz = {"topic": "fractions", "grade_level": 5, "questions": [question]}
    server.script("Sure! Here is a quiz about fractions.", json.dumps(quiz))
    assert run(["generate", "education/quiz", "--example"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == quiz and "after 1 attempt(s)" in err
    first, repair = server.requests[-2].body, server.requests[-1].body
    assert first["response_format"]["type"] == "json_schema"  # the server's JSON mode gets the prompt's schema
    assert "did not validate" in repair["messages"][-1]["content"]  # the prose answer was sent back once


def test_generate_a_json_prompt_that_never_validates_is_one_line(server, capsys) -> None:
    server.script("no json", "still no json")
    assert run(["generate", "marketing/ad_copy", "--example"]) == 1
    err = capsys.readouterr().err
    assert "marketing/ad_copy@1.1.0" in err and "did not validate" in err and "Traceback" not in err
