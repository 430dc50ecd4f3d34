"""``aigc eval`` as a user runs it: real subprocesses against the local OpenAI server, a temp store and a temp
prompt library. SIGKILL mid-run then --resume; Ctrl-C; a model failing every case; YAML errors; baselines."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aigc_app.store import ResultsStore
from chains.testing import Answer, OpenAIServer
from tests.test_runner import tagline_library

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def suite_file(path: Path, cases: int, *, expect: bool = False) -> Path:
    lines = [
        "name: taglines",
        "prompts: [writing/tagline@1.0.0]",
        "models: [openai:gpt-test]",
        "evaluators: [{evaluator: adherence}]",
        "params: {max_tokens: 30}",
        "cases:",
    ]
    check = ", expect: [{check: 'keywords:existence', keywords: [said]}]" if expect else ""
    lines += [f"  - {{id: p{i:02d}, vars: {{product: Product {i}}}{check}}}" for i in range(cases)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def slow_server():
    """Every answer takes 0.15 s, so a run of 30 cases at concurrency 2 lasts a few seconds."""
    with OpenAIServer(models=("gpt-test",), responder=lambda req: Answer(content="You said: hi", delay_s=0.15)) as s:
        yield s


@pytest.fixture
def server():
    with OpenAIServer(models=("gpt-test",)) as s:
        yield s


def env_for(server: OpenAIServer, tmp_path: Path, lib: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AIGC_"))}
    return env | {
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "sk-test",
        "AIGC_STORE": str(tmp_path / "results.db"),
        "AIGC_PROMPTS_PATH": str(lib),
        "OMP_NUM_THREADS": "1",
    }


def aigc(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aigc_app.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aigc_app.cli", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    """A test run in the background (nohup, `cmd &`) ignores SIGINT, and children inherit that: restore it so the
    Ctrl-C test can send one."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def recorded(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=5) as con:
        try:
            return con.execute("SELECT count(*) FROM run_cases").fetchone()[0]
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0


def wait_for_rows(db: Path, proc: subprocess.Popen[str], at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while recorded(db) < at_least:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run recorded nothing in time"
        time.sleep(0.05)


def chat_requests(server: OpenAIServer) -> int:
    return sum(r.path.endswith("/chat/completions") for r in server.requests)


def test_sigkill_mid_run_then_resume_loses_nothing_and_duplicates_nothing(tmp_path, slow_server) -> None:
    lib = tagline_library(tmp_path / "lib")
    suite = suite_file(tmp_path / "suite.yaml", 30)
    env, db = env_for(slow_server, tmp_path, lib), tmp_path / "results.db"
    proc = start(["eval", str(suite), "--concurrency", "2", "--quiet"], env, tmp_path)
    wait_for_rows(db, proc, 5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    done = recorded(db)
    assert 5 <= done < 30, done
    with ResultsStore(db) as store:
        run_id = store.latest_run("taglines").run_id
    before = chat_requests(slow_server)
    result = aigc(["eval", str(suite), "--resume", run_id, "--concurrency", "4", "--quiet"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert chat_requests(slow_server) - before == 30 - done  # nothing recorded is generated again
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT case_id, prompt_ref, model, sample_index FROM run_cases WHERE run_id = ?", (run_id,))
        slots = rows.fetchall()
    assert len(slots) == 30 and len(set(slots)) == 30
    assert sorted(s[0] for s in slots) == [f"p{i:02d}" for i in range(30)]
    with ResultsStore(db) as store:
        info = store.get_run(run_id)
        assert info.status == "finished" and len(store.list_runs()) == 1


def test_ctrl_c_marks_the_run_interrupted_prints_the_resume_command_and_exits_130(tmp_path, slow_server) -> None:
    lib = tagline_library(tmp_path / "lib")
    suite = suite_file(tmp_path / "suite.yaml", 30)
    env, db = env_for(slow_server, tmp_path, lib), tmp_path / "results.db"
    proc = start(["eval", str(suite), "--concurrency", "2", "--quiet"], env, tmp_path)
    wait_for_rows(db, proc, 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    with ResultsStore(db) as store:
        info = store.latest_run("taglines")
    assert info.status == "interrupted" and f"aigc eval {suite} --resume {info.run_id}" in err.replace("\n", "")
    result = aigc(["eval", str(suite), "--resume", info.run_id, "--quiet"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorded(db) == 30


def test_a_full_run_prints_the_summary_and_the_report_path_then_compares_with_a_baseline(tmp_path, server) -> None:
    lib = tagline_library(tmp_path / "lib")
    suite = suite_file(tmp_path / "suite.yaml", 12, expect=True)
    env = env_for(server, tmp_path, lib)
    first = aigc(["eval", str(suite)], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "eval plan: taglines" in first.stderr and "12 = 1 x 1 x 12 x 1" in first.stderr
    report = next(line.split("report: ", 1)[1].strip() for line in first.stdout.splitlines() if "report: " in line)
    assert Path(tmp_path, report).is_file() and report.endswith(".html")
    same = aigc(["eval", str(suite), "--baseline", "latest", "--fail-on-regression", "-q"], env, tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    server.script(*[Answer(content="nope") for _ in range(12)])
    worse = aigc(
        ["eval", str(suite), "--baseline", "latest", "--fail-on-regression", "--no-cache", "-q"], env, tmp_path
    )
    assert worse.returncode == 1, worse.stdout + worse.stderr
    assert "regressed" in worse.stderr


def test_a_model_failing_every_case_gives_a_clear_summary_and_exit_1(tmp_path) -> None:
    lib = tagline_library(tmp_path / "lib")
    suite = suite_file(tmp_path / "suite.yaml", 8)
    with OpenAIServer(models=("gpt-test",), api_key="sk-other") as server:
        result = aigc(["eval", str(suite), "-q"], env_for(server, tmp_path, lib), tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "failed every case" in result.stderr and "AuthenticationFailed" in result.stderr


def test_suite_errors_are_one_line_with_file_and_line(tmp_path, server) -> None:
    lib = tagline_library(tmp_path / "lib")
    suite = tmp_path / "bad.yaml"
    suite.write_text("name: bad\nprompts: [writing/tagline@1.0.0]\ncases:\n  - {id: a, vars: {prodct: x}}\n")
    result = aigc(["eval", str(suite)], env_for(server, tmp_path, lib), tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{suite}:4" in result.stderr and "did you mean 'product'" in result.stderr
    unknown = aigc(["eval", "marketng"], env_for(server, tmp_path, lib), tmp_path)
    assert unknown.returncode == 1 and "did you mean 'marketing'" in unknown.stderr
