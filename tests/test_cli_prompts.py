"""The ``aigc prompts`` commands, run through the real CLI entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aigc_app.cli import run


@pytest.fixture
def lib(make_library) -> Path:
    return make_library()


def aigc(capsys, lib: Path, *args: str) -> tuple[int, str, str]:
    code = run(["prompts", "--no-builtin", "--prompts-dir", str(lib), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_table_and_json(capsys, lib: Path) -> None:
    code, out, _ = aigc(capsys, lib, "list")
    assert code == 0 and "marketing/ad_copy" in out and "writing/haiku" in out and "2 prompts" in out
    code, out, _ = aigc(capsys, lib, "list", "--task", "writing", "--json")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["writing/haiku"] and rows[0]["drafts"] == ["1.0.0"] and rows[0]["latest"] is None


def test_render_with_vars_file_and_json(capsys, lib: Path, tmp_path: Path) -> None:
    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text("brand: Acme\nn: 2\nkeywords: [fast, light]\n")
    code, out, _ = aigc(capsys, lib, "render", "ad_copy@1.0.0", "--vars-file", str(vars_file), "--var", "n=5", "--json")
    assert code == 0
    messages = json.loads(out)
    assert messages[0] == {
        "role": "system",
        "content": "You write ads. Never make claims you cannot back up. Brand: Acme.",
    }
    assert "Write 5 formal ads." in messages[1]["content"]


def test_render_with_examples_prints_role_headings(capsys, lib: Path) -> None:
    code, out, _ = aigc(capsys, lib, "render", "ad_copy@1.0.0", "--example")
    assert code == 0 and "system" in out and "Brand: Acme." in out


def test_render_errors_are_one_clear_line(capsys, lib: Path) -> None:
    code, _, err = aigc(capsys, lib, "render", "ad_copy@1.0.0", "--var", "n=2")
    assert code == 1 and "error: marketing/ad_copy@1.0.0: missing required input(s) brand" in err
    assert "Traceback" not in err
    code, _, err = aigc(capsys, lib, "render", "ad_copy@1.0.0", "--var", "oops")
    assert code == 2 and "'oops' is not NAME=VALUE" in err
    code, _, err = aigc(capsys, lib, "render", "ad_cop")
    assert code == 1 and "Did you mean: ad_copy" in err


def test_show_lists_inputs_and_source(capsys, lib: Path) -> None:
    code, out, _ = aigc(capsys, lib, "show", "ad_copy@1.0.0")
    assert code == 0 and "marketing/ad_copy@1.0.0" in out and "draft" in out and "keywords" in out
    assert "_partials/brand.jinja" in out and 'message "system"' in out


def test_lock_check_bump_label_diff_workflow(capsys, lib: Path) -> None:
    code, _, err = aigc(capsys, lib, "check", "--strict")
    assert code == 1 and "is a draft" in err
    code, out, _ = aigc(capsys, lib, "lock")
    assert code == 0 and "published marketing/ad_copy@1.0.0" in out
    code, out, _ = aigc(capsys, lib, "check", "--strict")
    assert code == 0 and "check passed: 2 prompts, 2 versions: 0 error(s), 0 warning(s)" in out
    code, out, _ = aigc(capsys, lib, "bump", "haiku", "--minor", "-m", "Ask for a kigo")
    assert code == 0 and "1.1.0.jinja" in out
    new = lib / "writing/haiku/1.1.0.jinja"
    new.write_text(new.read_text().replace("Write a haiku", "Write a seasonal haiku"))
    code, out, _ = aigc(capsys, lib, "diff", "haiku@1.0.0", "haiku@1.1.0", "--color", "never")
    assert code == 0
    assert "-Write a haiku about {{ topic }}." in out and "+Write a seasonal haiku about {{ topic }}." in out
    assert '+changelog: "Ask for a kigo"' in out
    code, out, _ = aigc(capsys, lib, "diff", "haiku@1.0.0", "haiku@1.1.0", "--color", "always")
    assert "\x1b[32m+Write a seasonal" in out
    code, _, err = aigc(capsys, lib, "label", "set", "haiku@1.1.0", "production")
    assert code == 1 and "is a draft" in err
    code, out, _ = aigc(capsys, lib, "label", "set", "haiku@1.0.0", "production")
    assert code == 0 and "haiku@production: (new) -> 1.0.0" in out
    code, out, _ = aigc(capsys, lib, "label", "list")
    assert "production" in out and "1.0.0" in out


def test_check_fails_on_changed_published_version(capsys, lib: Path) -> None:
    aigc(capsys, lib, "lock")
    path = lib / "writing/haiku/1.0.0.jinja"
    path.write_text(path.read_text() + "Be brief.\n")
    code, _, err = aigc(capsys, lib, "check")
    assert code == 1 and "1.0.0.jinja" in err and "Published versions are immutable" in err and "check failed" in err


def test_prompts_path_environment_variable(capsys, lib: Path, monkeypatch) -> None:
    monkeypatch.setenv("AIGC_PROMPTS_PATH", str(lib))
    assert run(["prompts", "--no-builtin", "list", "--json"]) == 0
    assert {r["id"] for r in json.loads(capsys.readouterr().out)} == {"marketing/ad_copy", "writing/haiku"}


def test_console_script_runs_and_help_is_light() -> None:
    code = (
        "import sys, runpy; sys.argv = ['aigc', '--help']\n"
        "try: runpy.run_module('aigc_app.cli', run_name='__main__')\nexcept SystemExit: pass\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'langchain_core', 'pydantic', 'jinja2')]\nprint('HEAVY', heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert "prompts" in result.stdout and "HEAVY []" in result.stdout
