"""The response cache loses nothing: a locked database never fails a call, and answers are keyed by who gave them.

Real SQLite (a second connection really holds the lock, real processes really write) and the real OpenAI client
against the scripted local server.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from chains import ModelsConfig, Router
from chains.cache import ResponseCache
from chains.testing import Fault

PROMPT = [HumanMessage("Write a tagline for trail shoes.")]
PRIMARY, FALLBACK = "openai:gpt-test", "openai:gpt-big"


@pytest.fixture
def server(openai_server):
    openai_server.clear()
    yield openai_server
    openai_server.clear()


def make_router(server, cache: dict[str, Any]) -> Router:
    config = ModelsConfig.model_validate(
        {
            "openai": {"base_url": server.base_url, "api_key": "sk-test", "model": "gpt-test", "timeout": 5.0},
            "router": {
                "fallbacks": [FALLBACK],
                "retry": {"base_delay_s": 0.01, "max_delay_s": 0.02},
                "cooldown": {"failures": 100},
                "cache": cache,
            },
        }
    )
    return Router.from_config(config)


def chat_requests(server) -> int:
    return sum(1 for r in server.requests if r.path.endswith("/chat/completions"))


class _Holder:
    """Another connection holding the database's write lock (BEGIN IMMEDIATE) until released."""

    def __init__(self, path: Path, mode: str = "IMMEDIATE") -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute(f"BEGIN {mode}")

    def release(self) -> None:
        self.db.execute("COMMIT")
        self.db.close()


def test_a_locked_cache_never_loses_the_answer(server, tmp_path: Path, caplog) -> None:
    path = tmp_path / "cache.db"
    router = make_router(server, {"path": str(path)})
    server.script("Locked out of the cache.", "Asked again.")
    holder = _Holder(path)
    try:
        with caplog.at_level(logging.WARNING, logger="chains.cache"):
            answer = router.invoke(PROMPT, cache=True)  # the write waits the busy timeout, then is skipped
    finally:
        holder.release()
    assert answer.content == "Locked out of the cache."
    assert any("write skipped" in r.getMessage() and "locked" in r.getMessage() for r in caplog.records)
    again = router.invoke(PROMPT, cache=True)  # nothing was stored, so this is a miss, and now it is stored
    assert again.content == "Asked again." and chat_requests(server) == 2
    assert router.invoke(PROMPT, cache=True).response_metadata["aigc_route"]["cached"] is True
    router.close()


def test_a_cache_that_cannot_even_be_opened_is_a_miss_then_recovers(server, tmp_path: Path, caplog) -> None:
    path = tmp_path / "cache.db"
    sqlite3.connect(path).close()  # a rollback-journal database: an exclusive lock stops readers too
    holder = _Holder(path, "EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="chains.cache"):
            router = make_router(server, {"path": str(path), "busy_timeout_s": 0.1})
            server.script("First.")
            assert router.invoke(PROMPT, cache=True).content == "First."
    finally:
        holder.release()
    assert {"open skipped", "read skipped", "write skipped"} <= {
        m for r in caplog.records for m in ("open skipped", "read skipped", "write skipped") if m in r.getMessage()
    }
    server.script("Second.")
    assert router.invoke(PROMPT, cache=True).content == "Second."
    assert router.invoke(PROMPT, cache=True).content == "Second."
    assert len(router.response_cache or []) == 1
    router.close()


_WRITER = """
import sys, time
from langchain_core.messages import AIMessage
from chains.cache import ResponseCache
path, name, start, patience = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[5])
cache = ResponseCache(path, busy_timeout_s=patience)
print("ready", flush=True)
while time.time() < start:
    time.sleep(0.005)
stored = [cache.put(f"{name}-{i}", "m", AIMessage(f"{name} {i}")) for i in range(int(sys.argv[4]))]
print(sum(stored))
"""


def _writers(path: Path, count: int, rows: int, delay: float, patience: float = 2.0) -> list[subprocess.Popen[str]]:
    start = time.time() + delay
    return [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), f"p{n}", str(start), str(rows), str(patience)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]


def test_eight_processes_writing_past_a_held_lock_all_finish(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    ResponseCache(path).close()
    holder = _Holder(path)
    writers = _writers(path, 8, 4, delay=0.0)
    assert [w.stdout.readline() for w in writers if w.stdout] == ["ready\n"] * 8
    time.sleep(6)  # longer than any busy timeout: sqlite's own default is 5 s
    holder.release()
    results = [w.communicate(timeout=120) for w in writers]
    assert [w.returncode for w in writers] == [0] * 8, [err[-500:] for _, err in results]
    assert all("write skipped" in err for _, err in results)  # each met the lock, logged it and went on
    assert sum(int(out) for out, _ in results) == len(ResponseCache(path)) > 0  # the writes after it landed


def test_eight_processes_and_32_instances_writing_at_once_store_every_row(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    # A patient busy timeout: this checks that WAL writers in many processes and threads all get their turn (with
    # the default 2 s, a writer starved on a busy machine would skip its row, which is allowed but not this test).
    writers = _writers(path, 8, 50, delay=2.0, patience=60.0)
    failures: list[BaseException] = []
    barrier = threading.Barrier(32)

    def write(n: int) -> None:
        try:
            barrier.wait()
            cache = ResponseCache(path, busy_timeout_s=60.0)
            assert all(cache.put(f"t{n}-{i}", "m", AIMessage("x")) for i in range(10))
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = [w.communicate(timeout=120) for w in writers]
    assert not failures and [w.returncode for w in writers] == [0] * 8, [err[-500:] for _, err in results]
    assert [out.split() for out, _ in results] == [["ready", "50"]] * 8
    assert len(ResponseCache(path)) == 8 * 50 + 32 * 10


def test_a_fallback_answer_is_not_served_once_the_primary_recovers(server, tmp_path: Path) -> None:
    router = make_router(server, {"path": str(tmp_path / "cache.db")})
    server.script(Fault.server_error(), Fault.server_error(), Fault.server_error(), model="gpt-test")
    server.script("From the fallback.", model="gpt-big")
    first = router.invoke(PROMPT, cache=True)
    assert first.content == "From the fallback." and first.response_metadata["aigc_route"]["backend"] == FALLBACK
    server.script("From the primary.", model="gpt-test")
    second = router.invoke(PROMPT, cache=True)
    assert second.content == "From the primary."
    assert second.response_metadata["aigc_route"] == {"backend": PRIMARY, "attempts": 1, "tried": [], "cached": False}
    third = router.invoke(PROMPT, cache=True)
    assert third.content == "From the primary." and third.response_metadata["aigc_route"]["cached"] is True
    # While the primary stays down, the fallback's own stored answer is served without asking the fallback again.
    other = [HumanMessage("Write a tagline for rain jackets.")]
    down = [Fault.server_error()] * 6
    server.script(*down, model="gpt-test")
    server.script("Fallback, once.", model="gpt-big")
    assert router.invoke(other, cache=True).content == "Fallback, once."
    before = chat_requests(server)
    streamed = list(router.stream(other, cache=True))
    assert "".join(c.content for c in streamed) == "Fallback, once."
    assert streamed[0].response_metadata["aigc_route"]["backend"] == FALLBACK
    assert chat_requests(server) == before + 3  # the primary's three attempts, nothing asked of the fallback
    router.close()


def test_rows_older_than_the_ttl_are_misses(server, tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    router = make_router(server, {"path": str(path), "ttl_s": 60})
    server.script("Fresh.", "Renewed.")
    assert router.invoke(PROMPT, cache=True).content == "Fresh."
    assert router.invoke(PROMPT, cache=True).content == "Fresh."
    with sqlite3.connect(path) as db:  # the row was written two minutes ago
        db.execute("UPDATE responses SET created = created - 120")
    assert router.invoke(PROMPT, cache=True).content == "Renewed."
    assert router.invoke(PROMPT, cache=True).response_metadata["aigc_route"]["cached"] is True
    assert chat_requests(server) == 2
    router.close()
