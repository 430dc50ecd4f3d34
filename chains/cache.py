"""An optional SQLite response cache for chat calls.

The key covers the model id, every generation parameter, the full messages, the seed and a sample index, so
that asking for five samples of the same prompt stores five independent answers rather than one answer five
times. Credentials are never part of a key or a row.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, message_to_dict, messages_from_dict

__all__ = ["ResponseCache", "cache_key"]

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, created REAL NOT NULL, "
    "message TEXT NOT NULL)",
]


def cache_key(model: str, messages: list[BaseMessage], params: dict[str, Any], sample_index: int = 0) -> str:
    """sha256 of everything that determines an answer."""
    payload = {
        "model": model,
        "messages": [message_to_dict(m) for m in messages],
        "params": {k: v for k, v in sorted(params.items()) if v is not None},
        "sample_index": sample_index,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class ResponseCache:
    """A thread-safe SQLite cache of AI messages."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def get(self, key: str) -> AIMessage | None:
        """The cached message, or None."""
        with self._lock:
            row = self._db.execute("SELECT message FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        (message,) = messages_from_dict([json.loads(row[0])])
        return message if isinstance(message, AIMessage) else None

    def put(self, key: str, model: str, message: AIMessage) -> None:
        """Store a message (the last write wins)."""
        data = json.dumps(
            message_to_dict(
                AIMessage(
                    content=message.content,
                    response_metadata=dict(message.response_metadata),
                    usage_metadata=message.usage_metadata,
                )
            )
        )
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", (key, model, time.time(), data))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
