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
