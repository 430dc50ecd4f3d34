"""Merging one store file into another (shards run elsewhere): idempotent and order-free.

Rows are matched by key (run id, generation key, score key, run slot). Where both files hold a row with one key, a
fixed rule picks the same one whichever way the merge goes, so merging A into B and B into A give the same content:

| table | kept |
|---|---|
| runs | the one updated last |
| generations | a success over a failure, then the earlier |
| scores | one without an evaluator error, then the earlier |
| run_cases | a success over a failure, then the one recorded first |
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aigc_app.store import codec

__all__ = ["merge_into"]

# (table, columns, conflict target, "better" ordering: the incoming row replaces the stored one when its tuple is
# smaller). Coalesce keeps NULLs out of row-value comparisons, which would otherwise be unknown.
_TABLES = [
    (
        "runs",
        codec.RUN_COLUMNS,
        "run_id",
        "(-{t}.updated_at, {t}.status, coalesce({t}.finished_at, 0), {t}.planned, {t}.cost_usd, {t}.notes, "
        "{t}.options, {t}.host, coalesce({t}.pid, 0))",
    ),
    (
        "generations",
        codec.GENERATION_COLUMNS,
        "key",
        "(1 - {t}.ok, {t}.created_at, {t}.output, {t}.latency_s, {t}.origin_run)",
    ),
    (
        "scores",
        codec.SCORE_COLUMNS,
        "key",
        "({t}.error IS NOT NULL, {t}.created_at, {t}.value, {t}.reason, coalesce({t}.error, ''))",
    ),
    (
        "run_cases",
        codec.RUN_CASE_COLUMNS,
        "run_id, case_id, prompt_ref, model, sample_index",
        "({t}.error IS NOT NULL, {t}.recorded_at, {t}.generation, {t}.score_keys)",
    ),
]


def _statement(table: str, columns: list[str], conflict: str, order: str) -> str:
    keys = {c.strip() for c in conflict.split(",")}
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    better = f"{order.format(t='excluded')} < {order.format(t=table)}"
    # `WHERE true` lets SQLite tell the upsert's ON CONFLICT from a join's ON.
    return (
        f"INSERT INTO main.{table} ({names}) SELECT {names} FROM other.{table} WHERE true "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates} WHERE {better}"
    )


def merge_into(db: sqlite3.Connection, other: Path) -> dict[str, int]:
    """Copy every row of the store at ``other`` into ``db`` in one transaction; return the rows added per table."""
    db.execute("ATTACH DATABASE ? AS other", (str(other),))
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            before = _counts(db)
            for table, columns, conflict, order in _TABLES:
                db.execute(_statement(table, columns, conflict, order))
            after = _counts(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    finally:
        db.execute("DETACH DATABASE other")
    return {name: after[table] - before[table] for name, table in _NAMES.items()}


_NAMES = {"runs": "runs", "cases": "run_cases", "generations": "generations", "scores": "scores"}


def _counts(db: sqlite3.Connection) -> dict[str, int]:
    return {table: db.execute(f"SELECT count(*) FROM main.{table}").fetchone()[0] for table in _NAMES.values()}
