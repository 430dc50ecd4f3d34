"""``aigc report`` against a real SQLite results store in a temp folder, and in a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aigc_app.cli import run
from aigc_app.reports.sample import sample_results
from aigc_app.results import RunResults
from aigc_app.store import ResultsStore

RUN_ID = "r-20261201-demo01"


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, RunResults]:
    results = sample_results(48, run_id=RUN_ID)
    db = tmp_path / "store" / "results.db"
    with ResultsStore(db) as store:
        store.create_run(results.info)
        for case in results.cases:
            store.record_case(case)
        return db, store.load_run(RUN_ID)


def test_terminal_report_by_prefix(stored: tuple[Path, RunResults], capsys: pytest.CaptureFixture[str]) -> None:
    db, results = stored
    assert run(["report", RUN_ID[:12], "--store", str(db)]) == 0
    out = capsys.readouterr().out
    assert RUN_ID in out and "pass rate by variant" in out and results.variants[0].split(" | ")[0] in out
    assert "note:" in out


def test_markdown_and_json_print_to_stdout(stored: tuple[Path, RunResults], capsys: pytest.CaptureFixture[str]) -> None:
    db, results = stored
    assert run(["report", "latest", "--format", "md", "--store", str(db)]) == 0
    assert capsys.readouterr().out.startswith(f"# Eval run `{RUN_ID}`")
    assert run(["report", RUN_ID, "-f", "json", "--store", str(db)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["info"]["run_id"] == RUN_ID and len(data["cases"]) == len(results.cases)


def test_html_and_junit_go_to_files(
    stored: tuple[Path, RunResults], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = stored
    monkeypatch.chdir(tmp_path)
    assert run(["report", RUN_ID, "--format", "html", "--store", str(db)]) == 0
    default = Path(".aigc/reports") / f"{RUN_ID}.html"
    assert str(default) in capsys.readouterr().out and default.read_text().startswith("<!DOCTYPE html>")
    out = tmp_path / "ci" / "junit.xml"
    assert run(["report", RUN_ID, "-o", str(out), "--store", str(db)]) == 0  # format from the suffix
    assert ET.parse(out).getroot().tag == "testsuites"


def test_a_json_report_reads_back(stored: tuple[Path, RunResults], tmp_path: Path) -> None:
    db, _ = stored
    saved = tmp_path / "run.json"
    assert run(["report", RUN_ID, "-o", str(saved), "--store", str(db)]) == 0
    md = tmp_path / "again.md"
    assert run(["report", str(saved), "-o", str(md)]) == 0
    assert md.read_text().startswith(f"# Eval run `{RUN_ID}`")


def test_unknown_run_is_one_red_line(stored: tuple[Path, RunResults], capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = stored
    assert run(["report", "r-2026nope", "--store", str(db)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and len(err.strip().splitlines()) <= 3


def test_a_missing_store_is_an_error_and_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "results.db"
    assert run(["report", "latest", "--store", str(missing)]) == 1
    assert "no results store at" in capsys.readouterr().err and not missing.parent.exists()


def test_unwritable_path_keeps_the_store(
    stored: tuple[Path, RunResults], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, results = stored
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    before = db.read_bytes()
    assert run(["report", RUN_ID, "-o", str(blocker / "r.html"), "--store", str(db)]) == 1
    err = capsys.readouterr().err
    assert "cannot write the report" in err and str(blocker / "r.html") in " ".join(err.split())
    assert db.read_bytes() == before
    with ResultsStore(db) as store:
        assert len(store.load_run(RUN_ID).cases) == len(results.cases)


def test_report_in_a_subprocess_with_aigc_store(stored: tuple[Path, RunResults], tmp_path: Path) -> None:
    db, _ = stored
    out = tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, "-m", "aigc_app.cli", "report", "-o", str(out)],
        env={"AIGC_STORE": str(db), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "md report written to" in proc.stdout and out.read_text().startswith("# Eval run")
