"""The README's examples run as written, and its statements about the library match the code.

Marking convention (visible in the Markdown source, invisible on GitHub): the line above a fenced block may be
``<!-- test: run -->`` or ``<!-- test: skip (reason) -->``.

- Every ```python block runs unless marked skip; every command block (bash, sh, console) must be marked, and runs
  when marked run. A skip needs a reason.
- Each runs in a fresh empty folder holding ``.venv`` (a link to this virtual environment) and
  ``models/qwen2.5-0.5b-instruct`` (the tiny random-weight model of ``chains.testing``), with ``.venv/bin`` first on
  PATH, this checkout on PYTHONPATH, and ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` pointing at a scripted
  OpenAI-compatible server (``chains.testing.OpenAIServer``, which fills any requested JSON schema).
- Every ```jinja block is a version file: it is written into a temp library and rendered with its examples.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TINY_MODEL = "models/qwen2.5-0.5b-instruct"
COMMAND_LANGUAGES = ("bash", "sh", "shell", "console")
MARK = re.compile(r"^<!-- test: (run|skip)(?: \((.+)\))? -->$")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    language: str
    line: int
    code: str
    mark: str | None  # "run", "skip" or None
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.language or 'text'}-line{self.line}"


def readme_blocks(text: str) -> list[Block]:
    """Fenced blocks with the ``<!-- test: ... -->`` mark of the nearest non-blank line above them."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        above = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mark = MARK.match(above)
        code = "\n".join(lines[i + 1 : end]) + "\n"
        blocks.append(Block(opening.group(1), i + 1, code, mark and mark.group(1), (mark and mark.group(2)) or ""))
        i = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
PYTHON = [b for b in BLOCKS if b.language == "python"]
COMMANDS = [b for b in BLOCKS if b.language in COMMAND_LANGUAGES]
JINJA = [b for b in BLOCKS if b.language == "jinja"]


def params(blocks: list[Block]) -> list[pytest.param]:
    return [
        pytest.param(b, id=b.id, marks=[pytest.mark.skip(reason=b.reason)] if b.mark == "skip" else []) for b in blocks
    ]


def test_readme_has_examples_and_every_mark_is_well_formed() -> None:
    assert len(PYTHON) >= 3 and len(COMMANDS) >= 3 and JINJA
    for block in BLOCKS:
        assert block.mark != "skip" or block.reason, f"README line {block.line}: a skip needs a reason"
    unmarked = [b.line for b in COMMANDS if b.mark is None]
    assert not unmarked, f"command blocks at README lines {unmarked} need <!-- test: run --> or a skip with reason"
    raw_marks = re.findall(r"<!-- test:.*?-->", README.read_text(encoding="utf-8"))
    assert all(MARK.match(m) for m in raw_marks), raw_marks


# ------------------------------------------------------------------------------------------ running the blocks


@pytest.fixture(scope="module")
def readme_parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The tiny model (built once; a context long enough for the built-in prompts) and the scripted server."""
    from chains.testing import OpenAIServer
    from chains.testing.tiny_model import build_tiny_model

    model = build_tiny_model(tmp_path_factory.mktemp("readme-model") / "tiny", context=8192)
    with OpenAIServer(models=("gpt-4o-mini",)) as server:
        yield model, server.base_url


@pytest.fixture
def workdir(tmp_path: Path, readme_parts: tuple[Path, str]) -> tuple[Path, dict[str, str]]:
    model, base_url = readme_parts
    (tmp_path / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (tmp_path / TINY_MODEL).parent.mkdir(parents=True)
    (tmp_path / TINY_MODEL).symlink_to(model, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGC_", "OPENAI_", "PYTEST_"))}
    env.update(
        PATH=f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO),
        OPENAI_BASE_URL=base_url,
        OPENAI_API_KEY="sk-readme-test",
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TRANSFORMERS_VERBOSITY="error",
        COLUMNS="100",
    )
    return tmp_path, env


def run_block(argv: list[str], block: Block, workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (
        f"README line {block.line} ({block.language}) failed with exit code {done.returncode}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


@pytest.mark.parametrize("block", params(PYTHON))
def test_python_example_runs(block: Block, workdir: tuple[Path, dict[str, str]]) -> None:
    run_block([sys.executable, "-c", block.code], block, workdir)


@pytest.mark.parametrize("block", params(COMMANDS))
def test_command_example_runs(block: Block, workdir: tuple[Path, dict[str, str]]) -> None:
    run_block(["bash", "-euo", "pipefail", "-c", block.code], block, workdir)


@pytest.mark.parametrize("block", params(JINJA))
def test_version_file_example_loads_and_renders(block: Block, tmp_path: Path) -> None:
    """Written into a temp library, it loads and renders; if it shares a name and version with a built-in
    prompt, it is a shortened copy of it: the same metadata, and every input it declares declared the same."""
    from prompts import BUILTIN_LIBRARY, PromptRegistry
    from prompts.frontmatter import parse_prompt_file

    meta = parse_prompt_file(block.code, "README.md").meta
    shutil.copytree(Path(BUILTIN_LIBRARY) / "_partials", tmp_path / "_partials")
    path = tmp_path / meta.task / meta.name / f"{meta.version}.jinja"
    path.parent.mkdir(parents=True)
    path.write_text(block.code, encoding="utf-8")
    prompt = PromptRegistry([tmp_path], include_builtin=False).get(f"{meta.name}@{meta.version}")
    examples = {k: s.example for k, s in prompt.meta.inputs.items() if s.example is not None}
    assert prompt.render(**examples)
    real_file = Path(BUILTIN_LIBRARY) / meta.task / meta.name / f"{meta.version}.jinja"
    if real_file.exists():
        real = parse_prompt_file(real_file.read_text(encoding="utf-8"), str(real_file)).meta
        same = ("name", "version", "task", "description", "model", "expect", "tags", "changelog")
        assert {k: getattr(meta, k) for k in same} == {k: getattr(real, k) for k in same}
        assert meta.output.format == real.output.format
        assert {k: real.inputs.get(k) for k in meta.inputs} == dict(meta.inputs)


# ------------------------------------------------------------------------------------- statements about the code


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{title}\n")
    level = title.split(" ", 1)[0]
    ends = [m.start() for m in re.finditer(rf"^#{{1,{len(level)}}} ", text[start + 1 :], re.M)]
    return text[start : start + 1 + ends[1]] if len(ends) > 1 else text[start:]


def test_builtin_prompts_table_is_the_library() -> None:
    from prompts import PromptRegistry
    from prompts.frontmatter import parse_prompt_file

    rows = re.findall(
        r"^\| `([^`]+)` \| ([^|]*) \| ([^|]*) \| (\w+) \| (.+) \|$", section("### Built-in prompts"), re.M
    )
    expected = []
    for entry in PromptRegistry([]):
        newest = entry.versions[max(entry.versions)]
        meta = parse_prompt_file(newest.read_text(encoding="utf-8"), str(newest)).meta
        versions = ", ".join(str(v) for v in sorted(entry.versions))
        labels = ", ".join(f"{k}={v}" for k, v in sorted(entry.labels.items()))
        expected.append((entry.id, versions, labels, meta.output.format, meta.description))
    assert [tuple(c.strip() for c in row) for row in rows] == expected


def test_required_front_matter_keys_are_documented() -> None:
    from prompts.schema import PromptMeta

    documented = re.search(r"Required keys: (.+?)\.? \(", section("### A version file").replace("\n", " "))
    assert documented, "the version-file section lists the required front-matter keys"
    names = set(re.findall(r"`(\w+)`", documented.group(1)))
    assert names == {name for name, field in PromptMeta.model_fields.items() if field.is_required()}


def test_conformance_skips_are_documented_by_name() -> None:
    spec = importlib.util.spec_from_file_location("_conformance", REPO / "tests" / "test_chains_conformance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ours = {name for cls in vars(module).values() for name in getattr(cls, "content_skips", {}) or {}}
    text = section("### Real parts for tests, shipped for you too (`chains.testing`)")
    assert "the only tests we skip" not in text
    missing = sorted(n for n in ours if f"`{n}`" not in text)
    assert ours and not missing, f"content_skips not named in the README: {missing}"


def test_prompt_injection_row_says_what_it_scans() -> None:
    from evaluators.safety.injection import InjectionEvaluator

    row = next(
        line for line in section("## Evaluators").splitlines() if line.startswith("| safety | `prompt_injection`")
    )
    assert not InjectionEvaluator().include_output
    assert "**inputs**" in row and "not the output" in row
