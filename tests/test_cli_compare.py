"""``aigc compare`` against a real SQLite results store in a temp folder, in-process and in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_compare_data import case, score

from aigc_app.cli import run
from aigc_app.results import CaseResult, RunInfo
from aigc_app.store import ResultsStore

BASE, CAND, BOTH = "r-20261201-base01", "r-20261201-cand01", "r-20261201-both01"
IDS = [f"case-{i:02d}" for i in range(24)]


def _base_case(run_id: str, cid: str) -> CaseResult:
    return case(run_id, cid, [score("length", 1.0, True), score("fluency", 0.8)], output=f"short ad for {cid}")


def _cand_case(run_id: str, i: int, cid: str) -> CaseResult:
    ok = i % 3 != 0  # 8 of 24 fail in the candidate
    scores = [score("length", float(ok), ok, reason="" if ok else "61 words > 40"), score("fluency", 0.79)]
    return case(run_id, cid, scores, version="1.1.0", output=f"long rambling ad for {cid} " * (1 if ok else 9))


def _store(path: Path, runs: dict[str, list[CaseResult]]) -> None:
    with ResultsStore(path) as store:
        for start, (run_id, cases) in enumerate(runs.items()):
            store.create_run(RunInfo(run_id=run_id, suite="ads", status="finished", started_at=1000.0 + start))
            for c in cases:
                store.record_case(c)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "results.db"
    _store(
        path,
        {
            BASE: [_base_case(BASE, cid) for cid in IDS],
            CAND: [_cand_case(CAND, i, cid) for i, cid in enumerate(IDS)],
            BOTH: [_base_case(BOTH, cid) for cid in IDS] + [_cand_case(BOTH, i, cid) for i, cid in enumerate(IDS)],
        },
    )
    return path


def test_regression_exits_1_with_the_table_and_cases(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["compare", BASE, CAND, "--store", str(db)]) == 1
    captured = capsys.readouterr()
    assert "REGRESSED" in captured.out and "regressed cases" in captured.out
    assert max(len(line) for line in captured.out.splitlines()) <= 80
    assert "length failed: 61 words > 40" in captured.out
    assert f"{CAND} regressed against {BASE}: length -33.3 points" in captured.err


def test_no_regression_exits_0(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["compare", BASE, BASE[:14], "--store", str(db)]) == 0
    assert "no regression" in capsys.readouterr().out


def test_tolerance_and_alpha_loosen_the_gate(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["compare", BASE, CAND, "--tolerance", "0.4", "--store", str(db)]) == 0
    assert "within tol." in capsys.readouterr().out
    assert run(["compare", BASE, CAND, "--alpha", "0.0001", "--store", str(db)]) == 0


def test_variants_within_one_run(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["compare", BOTH, "--variant-a", "marketing/ad_copy@1.0.0 | hf:tiny", "--variant-b"]
    args.append("marketing/ad_copy@1.1.0")
    assert run([*args, "--format", "json", "--store", str(db)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["regressed"] is True
    (variant,) = data["variants"]
    assert variant["variant_b"] == "marketing/ad_copy@1.1.0 | hf:tiny" and variant["n_pairs"] == 24
    length = next(r for r in variant["rows"] if r["evaluator"] == "length")
    assert (length["a_only"], length["b_only"], length["verdict"]) == (8, 0, "regressed")


def test_markdown_to_a_file(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ci" / "compare.md"
    assert run(["compare", BASE, CAND, "--format", "md", "-o", str(out), "--store", str(db)]) == 1
    md = out.read_text()
    assert md.startswith("## aigc compare: regressed")
    assert ("long rambling ad for case-00 " * 9).strip() in md  # full output, not truncated
    assert str(out) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "r-nope", CAND], "no run 'r-nope'"),
        (["compare", BOTH, "--variant-a", "hf:nope", "--variant-b", "marketing/ad_copy@1.1.0"], "no variant 'hf:nope'"),
        (["compare", BOTH, "--variant-a", "marketing/ad_copy", "--variant-b", "hf:tiny"], "ambiguous"),
        (["compare", BOTH, BOTH], "--variant-a"),
        (["compare", "r-2026"], "give two runs"),
    ],
)
def test_bad_references_are_one_clear_line(
    db: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run([*args, "--store", str(db)])
    err = capsys.readouterr().err
    assert code in (1, 2) and message in err
    assert "Traceback" not in err and len([line for line in err.splitlines() if line.strip()]) <= 3


def test_a_missing_store_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "results.db"
    assert run(["compare", BASE, CAND, "--store", str(missing)]) == 1
    assert "no results store at" in capsys.readouterr().err and not missing.parent.exists()


def test_real_subprocess_gates_ci_by_exit_status(db: Path) -> None:
    env = {**os.environ, "AIGC_STORE": str(db), "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "aigc_app.cli", "compare"]
    regressed = subprocess.run([*cmd, BASE, CAND], capture_output=True, text=True, env=env, timeout=120)
    assert regressed.returncode == 1, regressed.stderr
    assert "REGRESSED" in regressed.stdout and "error:" in regressed.stderr
    same = subprocess.run([*cmd, CAND, CAND, "--format", "md"], capture_output=True, text=True, env=env, timeout=120)
    assert same.returncode == 0, same.stderr
    assert same.stdout.startswith("## aigc compare: no regression")
