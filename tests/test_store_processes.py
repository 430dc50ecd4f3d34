"""The store under real processes: two writers at once on one file, and a writer killed with SIGKILL mid-stream."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from aigc_app.results import RunInfo
from aigc_app.store import ResultsStore

RUN = "r20261201-120000-abcd"

# Writes `count` cases into RUN, one committed case at a time, and prints each case index once it is committed.
# Case ids differ between writers, but writer w's case i has the same messages as every other writer's case i, so
# the writers also race on the same generation and score keys.
WRITER = textwrap.dedent(
    """
    import sys, time
    from aigc_app.results import CaseResult, ScoreRow
    from aigc_app.store import ResultsStore

    path, writer, count, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    with ResultsStore(path) as store:
        store.update_run("RUN_ID", status="running")  # this process is now the run's writer
        for i in range(count):
            scores = tuple(ScoreRow(name, "1", i / count, i % 3 != 0, reason="r" * 50) for name in ("a", "b", "c"))
            store.record_case(CaseResult(
                run_id="RUN_ID", case_id=f"{writer}-{i:04d}", prompt_name="p", prompt_version="1.0.0",
                prompt_hash="h", model="openai:m", messages=({"role": "user", "content": f"case {i}"},),
                inputs={"i": i}, output="x" * 400 + str(i), latency_s=0.1, tokens_in=10, tokens_out=100,
                scores=scores, created_at=time.time(),
            ))
            print(i, flush=True)
            if pause:
                time.sleep(pause)
    """
).replace("RUN_ID", RUN)


def _start(tmp_path: Path, store: Path, writer: str, count: int, pause: float = 0.0) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    return subprocess.Popen(
        [sys.executable, str(script), str(store), writer, str(count), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _new_store(path: Path) -> None:
    with ResultsStore(path) as store:
        store.create_run(RunInfo(run_id=RUN, suite="s", status="running", started_at=time.time(), planned=1000))


def _integrity(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def test_two_writer_processes_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    path = tmp_path / "results.db"
    _new_store(path)
    writers = [_start(tmp_path, path, name, 500) for name in ("w0", "w1")]
    for proc in writers:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        assert out.split() == [str(i) for i in range(500)]
    assert _integrity(path) == "ok"
    with ResultsStore(path) as store:
        results = store.load_run(RUN)
    ids = [c.case_id for c in results.cases]
    assert ids == sorted(f"w{w}-{i:04d}" for w in (0, 1) for i in range(500))  # each exactly once
    assert all(len(c.scores) == 3 and c.output.startswith("x" * 400) for c in results.cases)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM generations").fetchone()[0] == 500  # shared by content
        assert db.execute("SELECT count(*) FROM scores").fetchone()[0] == 1500


def test_a_writer_killed_mid_stream_leaves_every_committed_case_readable(tmp_path: Path) -> None:
    path = tmp_path / "results.db"
    _new_store(path)
    proc = _start(tmp_path, path, "w0", 100_000, pause=0.002)
    assert proc.stdout is not None
    last = -1
    for line in proc.stdout:
        last = int(line)
        if last >= 150:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _integrity(path) == "ok"
    with ResultsStore(path) as store:
        results = store.load_run(RUN)
        summary = store.summary(RUN)
    # every case it reported as committed is there; at most the one it was printing is extra
    assert last + 1 <= len(results.cases) <= last + 2
    assert [c.case_id for c in results.cases] == [f"w0-{i:04d}" for i in range(len(results.cases))]
    assert all(len(c.scores) == 3 and c.output.endswith(str(int(c.case_id[3:]))) for c in results.cases)
    assert summary.info.status == "running" and not summary.live and summary.resumable
