"""Every bad template is one clear error naming its file and line, at load or at render, and
``prompts check`` reports every file even when one of them is broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigc_app.cli import run
from prompts import InvalidTemplate, PromptRegistry
from prompts.publishing import check
from tests.conftest import version_file

BAD_AT_LOAD = {
    "parens": ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "nested too deeply to parse"),
    "filters": ("{{ 'x'" + "|trim" * 3000 + " }}", "nested over 100 levels"),
    "fors": ("".join(f"{{% for i{k} in [1] %}}" for k in range(25)) + "x" + "{% endfor %}" * 25, "nested 11 deep"),
    "ifs": ("{% if true %}" * 200 + "x" + "{% endif %}" * 200, "nested 11 deep"),
}
BAD_AT_RENDER = {
    "div": ("{{ 1 / 0 }}", "ZeroDivisionError: division by zero"),
    "compare": ("{{ 'a' < 1 }}", "TypeError: '<' not supported"),
    "step": ("{% for i in range(1, 10, 0) %}{{ i }}{% endfor %}", r"range\(\) arg 3 must not be zero"),
}
EXAMPLE_INPUTS = "inputs:\n  topic: {type: string, example: tea}\n"


def _write(root: Path, name: str, body: str) -> Path:
    path = root / "writing" / name / "1.0.0.jinja"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(version_file(name, inputs=EXAMPLE_INPUTS, body=body + "{{ topic }}"))
    return path


@pytest.mark.parametrize("isolate", ["drafts", "all"])
@pytest.mark.parametrize("name", list(BAD_AT_LOAD))
def test_load_limits_name_the_file_and_line(tmp_path: Path, name: str, isolate: str) -> None:
    body, message = BAD_AT_LOAD[name]
    path = _write(tmp_path, name, body)
    with pytest.raises(InvalidTemplate, match=message) as info:
        PromptRegistry([tmp_path], include_builtin=False, isolate=isolate).get(f"{name}@1.0.0")
    assert info.value.path == str(path) and info.value.line == 10


@pytest.mark.parametrize("name", list(BAD_AT_RENDER))
def test_render_errors_name_the_file_and_line(tmp_path: Path, name: str) -> None:
    body, message = BAD_AT_RENDER[name]
    path = _write(tmp_path, name, body)
    prompt = PromptRegistry([tmp_path], include_builtin=False).get(f"{name}@1.0.0")
    with pytest.raises(InvalidTemplate, match=message) as info:
        prompt.render(topic="x")
    assert info.value.path == str(path) and info.value.line == 10


def test_non_utf8_file_is_named_with_its_line_in_render_check_list_and_lock(tmp_path: Path, capfd) -> None:
    path = _write(tmp_path, "latin", "ok")
    path.write_bytes(path.read_bytes().replace(b"Test prompt.", b"Caf\xe9 prompt."))
    with pytest.raises(InvalidTemplate, match="not valid UTF-8") as info:
        PromptRegistry([tmp_path], include_builtin=False).get("latin@1.0.0")
    assert info.value.line == 5
    for args in (["check"], ["list"], ["lock"], ["render", "latin@1.0.0", "--example"]):
        code = run(["prompts", "--no-builtin", "--prompts-dir", str(tmp_path), *args])
        out, err = capfd.readouterr()
        assert code != 0, args
        assert "Traceback" not in out + err and "not valid UTF-8" in out + err, (args, out, err)


def test_check_reports_every_file_when_one_is_broken(tmp_path: Path) -> None:
    for name, (body, _) in {**BAD_AT_LOAD, **BAD_AT_RENDER}.items():
        _write(tmp_path, name, body)
    _write(tmp_path, "good", "Write about ")
    problems = check(PromptRegistry([tmp_path], include_builtin=False))
    errors = {Path(p.path).parent.name for p in problems if p.level == "error"}
    assert errors == set(BAD_AT_LOAD) | set(BAD_AT_RENDER)  # the render errors come from the example inputs
    assert any(Path(p.path).parent.name == "good" for p in problems)  # reported too (a draft warning)


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("descripton: Typo.\n", "unknown key 'descripton' (did you mean 'description'?); allowed here: name,"),
        ("version_: x\n", "unknown key 'version_' (did you mean 'version'?)"),
    ],
)
def test_front_matter_typo_names_the_unknown_key(tmp_path: Path, front: str, expected: str) -> None:
    text = f"---\nname: typo\nversion: 1.0.0\ntask: writing\n{front}changelog: x\n---\nHi.\n"
    if "descripton" not in front:
        text = text.replace("changelog", "description: d\nchangelog")
    path = tmp_path / "writing/typo/1.0.0.jinja"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(InvalidTemplate) as info:
        PromptRegistry([tmp_path], include_builtin=False).get("typo@1.0.0")
    assert expected in str(info.value) and info.value.line == 5


def test_unquoted_version_number_says_to_quote_it(tmp_path: Path) -> None:
    path = tmp_path / "writing/num/1.0.0.jinja"
    path.parent.mkdir(parents=True)
    path.write_text("---\nname: num\nversion: 1.0\ntask: writing\ndescription: d\nchangelog: x\n---\nHi.\n")
    with pytest.raises(InvalidTemplate, match=r'quote it, e\.g\. version: "1\.0\.0"') as info:
        PromptRegistry([tmp_path], include_builtin=False).get("num@1.0.0")
    assert info.value.line == 3
