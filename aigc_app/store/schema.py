"""The store's schema as an append-only list of migrations (llm's logs.db is the model).

Never edit or reorder a migration that has shipped: append a new one. The number of migrations applied is kept in
``PRAGMA user_version``, so a store knows which ones it still needs, and a store written by a newer aigc (a
version past the end of this list) is refused instead of being misread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

Migration = Callable[[sqlite3.Connection], None]


def _m001_initial(db: sqlite3.Connection) -> None:
    """Runs, content-addressed generations and scores, and the slots that tie a run to them."""
    db.execute(
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            suite TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            suite_hash TEXT NOT NULL DEFAULT '',
            suite_path TEXT,
            prompts TEXT NOT NULL DEFAULT '[]',
            models TEXT NOT NULL DEFAULT '[]',
            evaluators TEXT NOT NULL DEFAULT '[]',
            planned INTEGER NOT NULL DEFAULT 0,
            done INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            options TEXT NOT NULL DEFAULT '{}',
            notes TEXT NOT NULL DEFAULT '[]',
            host TEXT NOT NULL DEFAULT '',
            pid INTEGER,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX runs_by_start ON runs (started_at DESC, run_id DESC)")
    db.execute("CREATE INDEX runs_by_suite ON runs (suite, started_at DESC)")
    # A generation is one model answer to one rendered request; `ok` = 0 for a failed attempt (kept so that a run's
    # failed case still has its request), which find_generation never reuses and a success replaces.
    db.execute(
        """CREATE TABLE generations (
            key TEXT PRIMARY KEY,
            ok INTEGER NOT NULL,
            prompt_name TEXT NOT NULL,
            prompt_version TEXT NOT NULL,
            prompt_hash TEXT NOT NULL,
            model TEXT NOT NULL,
            params TEXT NOT NULL,
            seed INTEGER,
            sample_index INTEGER NOT NULL,
            messages TEXT NOT NULL,
            output TEXT NOT NULL,
            latency_s REAL NOT NULL,
            tokens_in INTEGER NOT NULL,
            tokens_out INTEGER NOT NULL,
            cost_usd REAL,
            backend TEXT,
            created_at REAL NOT NULL,
            origin_run TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE scores (
            key TEXT PRIMARY KEY,
            generation TEXT NOT NULL,
            evaluator TEXT NOT NULL,
            evaluator_version TEXT NOT NULL,
            value REAL NOT NULL,
            passed INTEGER,
            threshold REAL,
            reason TEXT NOT NULL,
            error TEXT,
            applicable INTEGER NOT NULL,
            advisory INTEGER NOT NULL,
            rescore INTEGER NOT NULL,
            details TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX scores_by_generation ON scores (generation)")
    # One row per slot of a run's matrix. `score_keys` lists the case's scores in order (a JSON array of keys);
    # `passed` is CaseResult.passed, kept so that listing runs needs no join; `attempt` holds a failed attempt's
    # own output, timings and usage (a failed generation row may later be replaced by another run's success).
    db.execute(
        """CREATE TABLE run_cases (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            case_id TEXT NOT NULL,
            prompt_ref TEXT NOT NULL,
            model TEXT NOT NULL,
            sample_index INTEGER NOT NULL,
            generation TEXT NOT NULL,
            score_keys TEXT NOT NULL,
            inputs TEXT NOT NULL,
            reference TEXT,
            tags TEXT NOT NULL,
            error TEXT,
            attempt TEXT,
            cached INTEGER NOT NULL,
            passed INTEGER NOT NULL,
            recorded_at REAL NOT NULL,
            UNIQUE (run_id, case_id, prompt_ref, model, sample_index)
        )"""
    )
    db.execute("CREATE INDEX run_cases_by_generation ON run_cases (generation)")


def _m002_tally_index(db: sqlite3.Connection) -> None:
    """A covering index for the per-run counts that `aigc runs list` shows (done, failed, passed)."""
    db.execute("CREATE INDEX run_cases_tally ON run_cases (run_id, passed, error)")


MIGRATIONS: list[Migration] = [_m001_initial, _m002_tally_index]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection, current: int) -> int:
    """Apply the migrations after ``current`` inside the caller's transaction; return the new version."""
    for version, migration in enumerate(MIGRATIONS[current:], start=current + 1):
        migration(db)
        db.execute(f"PRAGMA user_version = {version}")
    return SCHEMA_VERSION
