"""An optional SQLite response cache for chat calls.

The key covers the backend that answered, every generation parameter, the full messages, the seed and a sample
index, so that asking for five samples of the same prompt stores five independent answers rather than one answer
five times, and a fallback's answer is never served as the primary's. Credentials are never part of a key or a row.

A cache problem never fails a call: a locked or broken database is retried for ``busy_timeout_s`` (WAL mode lets
readers and one writer work side by side across threads and processes), then a read counts as a miss and a write
is skipped, each with a logged warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, message_to_dict, messages_from_dict

__all__ = ["ResponseCache", "cache_key"]

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, created REAL NOT NULL, "
    "message TEXT NOT NULL)",
]


def cache_key(model: str, messages: list[BaseMessage], params: dict[str, Any], sample_index: int = 0) -> str:
    """sha256 of everything that determines an answer (``model`` is the backend that answers)."""
    payload = {
        "model": model,
        "messages": [message_to_dict(m) for m in messages],
        "params": {k: v for k, v in sorted(params.items()) if v is not None},
        "sample_index": sample_index,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class ResponseCache:
    """A thread- and process-safe SQLite cache of AI messages; rows older than ``ttl_s`` are misses."""

    def __init__(self, path: str | Path, *, ttl_s: float | None = None, busy_timeout_s: float = 2.0) -> None:
        self.path = Path(path)
        self.ttl_s = ttl_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None)
        self._ready = False
        self._guarded("open", lambda: None, None)

    def _prepare(self) -> None:
        """WAL mode and the schema, once; a locked database is tried again at the next use."""
        if not self._ready:
            self._db.execute("PRAGMA synchronous=NORMAL")  # with WAL: short commits; a cache may lose its last rows
            self._db.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._ready = True

    def _guarded(self, action: str, work: Callable[[], _T], fallback: _T) -> _T:
        with self._lock:
            try:
                self._prepare()
                return work()
            except (sqlite3.Error, ValueError) as exc:  # locked, corrupt, closed; ValueError: a damaged row
                _LOG.warning("response cache %s: %s skipped (%s: %s)", self.path, action, type(exc).__name__, exc)
                return fallback

    def get(self, key: str, model: str | None = None) -> AIMessage | None:
        """The cached message (stored by ``model`` when given, and younger than the TTL), or None."""
        query = "SELECT message, model, created FROM responses WHERE key = ?"
        row = self._guarded("read", lambda: self._db.execute(query, (key,)).fetchone(), None)
        if row is None or (model is not None and row[1] != model) or self._expired(row[2]):
            return None
        try:
            (message,) = messages_from_dict([json.loads(row[0])])
        except (ValueError, KeyError, TypeError) as exc:
            _LOG.warning("response cache %s: a damaged row counts as a miss (%s)", self.path, exc)
            return None
        return message if isinstance(message, AIMessage) else None

    def _expired(self, created: float) -> bool:
        return self.ttl_s is not None and time.time() - created > self.ttl_s

    def put(self, key: str, model: str, message: AIMessage) -> bool:
        """Store a message (the last write wins); False when the write was skipped."""
        data = json.dumps(
            message_to_dict(
                AIMessage(
                    content=message.content,
                    response_metadata=dict(message.response_metadata),
                    usage_metadata=message.usage_metadata,
                )
            )
        )
        statement = "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)"
        return self._guarded("write", lambda: bool(self._db.execute(statement, (key, model, time.time(), data))), False)

    def __len__(self) -> int:
        count = self._guarded("count", lambda: self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0], 0)
        return int(count)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
