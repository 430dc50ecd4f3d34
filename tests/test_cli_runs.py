"""``aigc runs list|show|delete|merge`` on real store files in temp folders."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from aigc_app.cli import run
from aigc_app.store import SCHEMA_VERSION, ResultsStore
from tests.test_store import make_case, make_run

DONE = "r20261201-110000-bbbb"
STOPPED = "r20261201-100000-aaaa"


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with a finished run (one case of three failed) and an interrupted one of a long-named suite."""
    path = tmp_path / "results.db"
    monkeypatch.delenv("AIGC_STORE", raising=False)
    with ResultsStore(path) as store:
        stopped = store.create_run(make_run(STOPPED, suite="marketing-launch-emails", started_at=1.7e9))
        done = store.create_run(make_run(DONE, started_at=1.8e9))
        for i in range(3):
            store.record_case(make_case(stopped.run_id, f"c{i}"))
            store.record_case(make_case(done.run_id, f"c{i}", version="1.1.0", error="boom" if i == 2 else None))
        store.update_run(stopped.run_id, status="interrupted", cost_usd=0.0123)
        store.update_run(done.run_id, status="finished", finished_at=1.8e9 + 60)
    return path


def test_list_fits_80_columns_and_says_how_to_resume(store_path: Path, capsys) -> None:
    assert run(["runs", "list", "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines if not line.startswith(STOPPED + " stopped")) <= 80
    done_row = next(line for line in lines if line.startswith(DONE))
    assert "writing" in done_row and "finished" in done_row and "3/4" in done_row and "67%" in done_row
    stopped_row = next(line for line in lines if line.startswith(STOPPED) and "interrupted" in line)
    assert "100%" in stopped_row and "$0.01" in stopped_row and "marketing" in stopped_row
    assert f"{STOPPED} stopped at 3/4: aigc eval suites/writing.yaml --resume {STOPPED}" in out
    assert lines.index(done_row) < lines.index(stopped_row)  # newest first


def test_list_json_and_an_empty_store(store_path: Path, tmp_path: Path, capsys) -> None:
    assert run(["runs", "list", "--json", "--store", str(store_path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in rows] == [DONE, STOPPED]
    assert rows[0]["failed"] == 1 and rows[0]["pass_rate"] == pytest.approx(2 / 3) and rows[0]["resume_command"] is None
    assert rows[1]["resume_command"] == f"aigc eval suites/writing.yaml --resume {STOPPED}"
    assert run(["runs", "list", "--store", str(tmp_path / "new.db")]) == 0
    assert "no runs in" in capsys.readouterr().out


def test_the_store_comes_from_the_environment(store_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("AIGC_STORE", str(store_path))
    assert run(["runs", "list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_show_gives_the_run_and_its_variants(store_path: Path, capsys) -> None:
    assert run(["runs", "show", "r20261201-10", "--store", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert f"run {STOPPED}" in out and "interrupted" in out and "3 of 4 recorded, 0 failed, 3 passed" in out
    assert "writing/blog@1.0.0 | openai:gpt-4o-mini" in out and "complete it with: aigc eval" in out
    assert run(["runs", "show", "--json", "--store", str(store_path)]) == 0  # latest by default
    shown = json.loads(capsys.readouterr().out)
    assert shown["run"]["run_id"] == DONE
    assert shown["variants"] == [
        {"variant": "writing/blog@1.1.0 | openai:gpt-4o-mini", "cases": 3, "passed": 2, "pass_rate": 2 / 3,
         "errors": 1, "mean_latency_s": 1.25},
    ]  # fmt: skip


def test_an_unknown_run_is_one_line_naming_near_ids(store_path: Path, capsys) -> None:
    assert run(["runs", "show", "r20261201-110000-bbbc", "--store", str(store_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "no run 'r20261201-110000-bbbc'" in err and f"Did you mean: {DONE}?" in err and "aigc runs list" in err


def test_delete_asks_unless_yes(store_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert run(["runs", "delete", STOPPED, "--store", str(store_path)]) == 130
    assert "aborted" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert run(["runs", "delete", STOPPED, "--store", str(store_path)]) == 0
    assert f"deleted run {STOPPED} (3 cases)" in capsys.readouterr().out
    assert run(["runs", "delete", "r2026", "--yes", "--store", str(store_path)]) == 0  # now a unique prefix
    assert f"deleted run {DONE}" in capsys.readouterr().out
    assert run(["runs", "list", "--json", "--store", str(store_path)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_merge_prints_counts_and_adds_nothing_the_second_time(store_path: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "merged.db"
    assert run(["runs", "merge", str(store_path), "--store", str(target)]) == 0
    out = capsys.readouterr().out
    assert "2 runs, 6 cases, 6 generations, 18 scores added" in out
    assert run(["runs", "merge", str(store_path), "--store", str(target)]) == 0
    assert "0 runs, 0 cases, 0 generations, 0 scores added" in capsys.readouterr().out
    assert run(["runs", "merge", str(tmp_path / "nope.db"), "--store", str(target)]) == 1
    assert "no results store at" in capsys.readouterr().err


def test_store_errors_are_one_line(tmp_path: Path, store_path: Path, capsys) -> None:
    assert run(["runs", "list", "--store", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "it is a folder, not a file" in err and "--store PATH" in err
    with sqlite3.connect(store_path) as db:
        db.execute("PRAGMA user_version = 42")
    assert run(["runs", "list", "--store", str(store_path)]) == 1
    err = capsys.readouterr().err
    assert f"created by a newer aigc (schema 42, this one knows {SCHEMA_VERSION}): upgrade aigc" in err
    assert err.count("\n") == 1


def test_runs_help_does_not_import_sqlite() -> None:
    code = "import sys; from aigc_app.cli import run; run(['runs', '--help']); print('sqlite3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


def test_reading_commands_do_not_create_a_missing_store(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nowhere" / "results.db"
    assert run(["runs", "list", "--store", str(missing)]) == 0
    assert f"no runs in {missing} yet" in capsys.readouterr().out
    assert run(["runs", "show", "--store", str(missing)]) == 1
    assert f"no results store at {missing}" in capsys.readouterr().err
    assert run(["runs", "delete", "r1", "--yes", "--store", str(missing)]) == 1
    assert not missing.parent.exists()
