"""`aigc evaluators score` problems are one clear line naming the file, the line and what to do; never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigc_app.cli import run
from evaluators.errors import InvalidSuite, UnknownEvaluator
from evaluators.suite import load_suite

SCORE = ["evaluators", "score", "marketing/social_post", "--var", "platform=x", "--var", "topic=shoes"]


def _score(suite: str | Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    """Run ``aigc evaluators score`` as the console script does (``run``: a raw exception would escape it)."""
    monkeypatch.chdir(tmp_path)  # no aigc.yaml here
    for variable in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AIGC_LOCAL_MODEL", "AIGC_MODEL", "AIGC_OPENAI_MODEL"):
        monkeypatch.delenv(variable, raising=False)
    return run([*SCORE, "--output", "Grip that holds on wet rock. #trail", "--suite", str(suite)])


def test_a_suite_entry_typo_names_file_line_key_allowed_keys_and_the_near_match(tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nevaluators:\n  - {evaluator: pii}\n  - {evaluatr: toxicity}\n", encoding="utf-8")
    code = _score(path, monkeypatch, tmp_path)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "pydantic" not in err and "http" not in err
    assert f"{path}:4:" in err and "'evaluatr'" in err and "did you mean 'evaluator'?" in err
    assert "allowed keys: advisory, evaluator, params, tasks, threshold, thresholds" in err
    assert len(err.strip().splitlines()) == 1 and "is required" not in err  # the typo, not a second "missing"


def test_an_unknown_evaluator_in_a_suite_names_its_line_and_the_near_match(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nevaluators:\n  - {evaluator: pii}\n  - {evaluator: toxicty}\n", encoding="utf-8")
    with pytest.raises(UnknownEvaluator, match=rf"{path}:4: unknown evaluator 'toxicty' \(did you mean 'toxicity'"):
        load_suite(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "suite file {path} not found"),
        (b"name: t\n\x89PNG\r\n\x1a\n\x00\xff\xfe", "{path}:2: not a text suite file"),
        (b"name: t\nevaluators: [\n", "{path}:3: invalid suite definition: malformed YAML"),
        (b"name: t\nevaluators:\n  - {evaluator: pii, threshold: 2}\n", "{path}:3: invalid suite definition: "),
        (b"- just\n- a list\n", "{path}:1: invalid suite definition: expected a mapping"),
        (b"name: t\x07\nevaluators: []\n", "{path}: invalid suite definition: not readable as YAML"),
    ],
    ids=["missing", "binary", "yaml", "threshold", "not-a-mapping", "control-char"],
)
def test_unreadable_suite_files_are_one_clear_error(content, expected, tmp_path, monkeypatch, capsys) -> None:
    path = tmp_path / "suite.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidSuite):
        load_suite(path)
    code = _score(path, monkeypatch, tmp_path)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "Error:" not in err.split("error:", 1)[-1]
    assert expected.format(path=path) in " ".join(err.split())


def test_a_folder_or_unknown_suite_name_says_what_to_give(tmp_path, monkeypatch, capsys) -> None:
    for suite, expected in [(tmp_path, "is a folder, not a suite file"), ("offlin", "did you mean 'offline'?")]:
        code = _score(suite, monkeypatch, tmp_path)
        err = capsys.readouterr().err
        assert code == 1 and expected in err and "Traceback" not in err


def test_the_judge_tier_without_a_model_suggests_what_works_for_this_command(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AIGC_MODELS_DIR", str(tmp_path / "empty-model-cache"))  # no pulled default model either
    code = _score("judge", monkeypatch, tmp_path)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "Traceback" not in err
    assert "--model" not in err  # `aigc evaluators score` has no --model option
    assert "aigc.yaml" in err and "--config" in err and "OPENAI_API_KEY" in err and "AIGC_MODEL" in err
