"""`aigc evaluators score` exit status: 1 when a gating evaluator fails or errors, 0 otherwise; output unchanged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from aigc_app.cli import run

SCORE = ["evaluators", "score", "marketing/social_post", "--var", "platform=x", "--var", "topic=shoes"]
CLEAN = "Grip that holds on wet rock. #trailrunning"
LEAKY = "Call Jane at 415-555-0132 or jane.doe@example.com for trail shoes."  # pii fails on it


@pytest.fixture(autouse=True)
def no_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no aigc.yaml here
    for variable in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AIGC_LOCAL_MODEL", "AIGC_MODEL", "AIGC_OPENAI_MODEL"):
        monkeypatch.delenv(variable, raising=False)


def suite(tmp_path: Path, *entries: str) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text("name: t\nevaluators:\n" + "".join(f"  - {e}\n" for e in entries), encoding="utf-8")
    return str(path)


def score(capsys: pytest.CaptureFixture[str], text: str, suite_path: str, *extra: str) -> tuple[int, str]:
    code = run([*SCORE, "--output", text, "--suite", suite_path, *extra])
    return code, capsys.readouterr().out


def test_all_gating_scores_pass_exits_0(capsys, tmp_path: Path) -> None:
    code, out = score(capsys, CLEAN, suite(tmp_path, "{evaluator: pii}", "{evaluator: degeneration}"))
    assert code == 0 and out.count("pass") == 2 and "fail" not in out


def test_a_failing_gating_evaluator_exits_1_after_printing_the_same_table(capsys, tmp_path: Path) -> None:
    code, out = score(capsys, LEAKY, suite(tmp_path, "{evaluator: pii}", "{evaluator: degeneration}"))
    assert code == 1
    pii = next(line for line in out.splitlines() if "pii" in line)
    assert "fail" in pii and "EMAIL" in pii and "degeneration" in out  # the whole table, as before


def test_json_output_exits_1_too_and_stays_valid_json(capsys, tmp_path: Path) -> None:
    code, out = score(capsys, LEAKY, suite(tmp_path, "{evaluator: pii}"), "--json")
    assert code == 1 and [s["passed"] for s in json.loads(out)] == [False]


def test_an_advisory_failure_never_fails_the_command(capsys, tmp_path: Path) -> None:
    code, out = score(capsys, LEAKY, suite(tmp_path, "{evaluator: pii, advisory: true}", "{evaluator: degeneration}"))
    assert code == 0 and "(advisory)" in out


def test_not_applicable_never_fails_the_command(capsys, tmp_path: Path) -> None:
    code, out = score(capsys, CLEAN, suite(tmp_path, "{evaluator: diversity}", "{evaluator: pii}"))
    line = next(x for x in out.splitlines() if "diversity" in x)
    assert code == 0 and "n/a" in line


def test_entries_for_other_tasks_do_not_shift_the_verdicts(capsys, tmp_path: Path) -> None:
    # social_post is a marketing prompt: the education-only entry is skipped, and the advisory pii after it must
    # still be read as advisory (scores are matched to the entries that apply, not to every entry)
    entries = ("{evaluator: degeneration, tasks: [education]}", "{evaluator: pii, advisory: true}")
    code, _ = score(capsys, LEAKY, suite(tmp_path, *entries))
    assert code == 0
    entries = ("{evaluator: pii, advisory: true, tasks: [education]}", "{evaluator: pii}")
    code, _ = score(capsys, LEAKY, suite(tmp_path, *entries))
    assert code == 1


def _without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import numpy`` raises ImportError, as in a core install: acceptability becomes an error Score."""
    monkeypatch.setitem(sys.modules, "numpy", None)
    for name in [m for m in sys.modules if m.startswith("evaluators.fluency.acceptability")]:
        monkeypatch.delitem(sys.modules, name)


def test_an_erroring_gating_evaluator_exits_1(capsys, tmp_path: Path, monkeypatch) -> None:
    _without_numpy(monkeypatch)
    code, out = score(capsys, CLEAN, suite(tmp_path, "{evaluator: acceptability}", "{evaluator: pii}"))
    assert code == 1 and "error" in next(x for x in out.splitlines() if "acceptability" in x)


def test_an_erroring_advisory_evaluator_exits_0(capsys, tmp_path: Path, monkeypatch) -> None:
    _without_numpy(monkeypatch)
    code, out = score(capsys, CLEAN, suite(tmp_path, "{evaluator: acceptability, advisory: true}", "{evaluator: pii}"))
    assert code == 0 and "acceptability" in out


def test_help_says_what_each_exit_code_means(capsys) -> None:
    assert run(["evaluators", "score", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Exit status:" in out
    assert "0  every gating score passed" in out and "1  a non-advisory evaluator failed or errored" in out
