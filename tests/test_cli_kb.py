"""``aigc kb``: add, list, query, remove against a temp embedded store and a real server; 80-column output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigc_app.cli import run
from aigc_app.cli.output import console, err_console

WIDTH = 80


@pytest.fixture(autouse=True)
def columns_80(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    monkeypatch.delenv("AIGC_KB_SERVER", raising=False)
    console.cache_clear()
    err_console.cache_clear()
    yield
    console.cache_clear()
    err_console.cache_clear()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "guides"
    folder.mkdir()
    (folder / "brand.md").write_text("# Brand guide\n\nOur tone is warm and direct. We never use exclamation marks.")
    facts = "sku,fact\nTB2,The Trailblazer 2 weighs 280 grams\nSJ1,The Storm jacket is waterproof\n"
    (folder / "facts.csv").write_text(facts)
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n")
    return folder


def kb(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> tuple[int, str, str]:
    code = run(["kb", *args, "--path", str(store)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_fits(text: str) -> None:
    wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not wide, f"wider than {WIDTH} columns: {wide[0]!r}"


def test_add_list_query_remove(capsys: pytest.CaptureFixture[str], tmp_path: Path, docs: Path) -> None:
    store = tmp_path / "store"
    code, out, err = kb(capsys, store, "add", str(docs), "--collection", "brand")
    assert code == 0 and "2 added" in out and "1 skipped" in out and "3 chunks in the collection" in out
    assert "skipped" in err and "logo.png: unsupported type .png" in err
    code, out, _ = kb(capsys, store, "add", str(docs), "-c", "brand")
    assert code == 0 and "2 unchanged" in out and "0 chunks written" in out

    code, out, _ = kb(capsys, store, "list")
    assert code == 0 and "brand" in out and "all-MiniLM-L6-v2" in out and "384" in out
    assert_fits(out)
    code, out, _ = kb(capsys, store, "list", "brand")
    assert code == 0 and "Brand guide" in out and "brand.md" in out
    assert_fits(out)

    code, out, _ = kb(capsys, store, "query", "brand", "how heavy is the shoe", "-k", "1")
    assert code == 0 and "280 grams" in out and "facts.csv" in out
    assert_fits(out)
    code, out, _ = kb(capsys, store, "query", "brand", "shoe", "--where", "title=Brand guide", "--json")
    (hit,) = json.loads(out)
    assert hit["metadata"]["title"] == "Brand guide" and 0 <= hit["score"] <= 1 and hit["id"]
    code, out, _ = kb(capsys, store, "query", "brand", "shoe", "--mmr", "-k", "2", "--where", "chunk=0", "--json")
    assert code == 0 and len(json.loads(out)) == 2

    code, out, _ = kb(capsys, store, "remove", "brand", "--source", str(docs / "facts.csv"))
    assert code == 0 and "removed 2 chunks" in out
    code, out, _ = kb(capsys, store, "remove", "brand")
    assert code == 0 and "deleted collection brand (1 chunks)" in out


def test_errors_are_one_clear_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, docs: Path) -> None:
    store = tmp_path / "store"
    assert kb(capsys, store, "add", str(docs / "brand.md"), "-c", "brand")[0] == 0
    code, _, err = kb(capsys, store, "query", "brnd", "x")
    assert code == 1 and "no collection 'brnd' (did you mean 'brand'?)" in err
    code, _, err = kb(capsys, store, "query", "brand", "x", "--where", "title")
    assert code == 2 and "expected KEY=VALUE" in err
    code, _, err = kb(capsys, store, "remove", "brand", "--source", "nope.md")
    assert code == 1 and "has no chunks from nope.md" in err
    code, _, err = kb(capsys, store, "list", "--server", "http://127.0.0.1:9", "--timeout", "1")
    assert code == 1 and "Chroma server http://127.0.0.1:9 is not reachable" in err


def test_server_option(capsys: pytest.CaptureFixture[str], chroma_server: str, tmp_path: Path, docs: Path) -> None:
    code, out, _ = kb(capsys, tmp_path, "add", str(docs / "brand.md"), "-c", "cli-brand", "--server", chroma_server)
    assert code == 0 and "1 added" in out
    code, out, _ = kb(capsys, tmp_path, "query", "cli-brand", "tone", "--server", chroma_server, "--json")
    assert code == 0 and json.loads(out)[0]["metadata"]["title"] == "Brand guide"
    assert not (tmp_path / "chroma.sqlite3").exists()  # nothing was written to the embedded store
