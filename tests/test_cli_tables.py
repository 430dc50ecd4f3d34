"""``aigc prompts list`` and ``show`` read well in an 80-column terminal: nothing wider, no word split, nothing cut."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from aigc_app.cli import run
from aigc_app.cli.output import console
from prompts import PromptRegistry

WIDTH = 80


@pytest.fixture(autouse=True)
def columns_80(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh console that sees ``COLUMNS=80``, as a piped or narrow terminal would."""
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    console.cache_clear()
    yield
    console.cache_clear()


def output_of(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert run(["prompts", *args]) == 0
    return capsys.readouterr().out.splitlines()


def assert_fits(lines: list[str]) -> None:
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert not too_wide, f"{len(too_wide)} line(s) wider than {WIDTH} columns, e.g. {too_wide[0]!r}"


def assert_words_whole(text: str, lines: list[str]) -> None:
    """Every word of ``text`` appears unbroken on one output line (a word split mid-way or cut off does not)."""
    words = set(re.findall(r"\S+", text))
    missing = sorted(w for w in words if not any(w in line for line in lines))
    assert not missing, f"words split or cut: {missing[:5]}"


def test_list_fits_80_columns_with_descriptions_wrapped_at_word_boundaries(capsys) -> None:
    lines = output_of(capsys, "list")
    assert_fits(lines)
    registry = PromptRegistry([])
    for entry in registry:
        assert any(entry.id in line for line in lines), entry.id
        assert_words_whole(registry.get(entry.id).meta.description, lines)


@pytest.mark.parametrize("ref", ["marketing/ad_copy@1.1.0", "education/quiz@1.1.0", "writing/product_description"])
def test_show_fits_80_columns_and_prints_every_source_line_whole(capsys, ref: str) -> None:
    prompt = PromptRegistry([]).get(ref)
    lines = output_of(capsys, "show", ref)
    assert_fits(lines)
    assert_words_whole(prompt.meta.description + " " + prompt.meta.changelog, lines)
    for spec in prompt.meta.inputs.values():
        assert_words_whole(spec.description, lines)
    source = prompt.source.splitlines()
    numbered = [int(line[:5]) for line in lines if line[:5].strip().isdigit() and line[5:6] == " "]
    assert numbered[-len(source) :] == list(range(1, len(source) + 1))
    assert_words_whole(prompt.source, lines)
