"""ResultsStore: eval runs in one SQLite file (WAL), each finished case committed at once.

    with ResultsStore() as store:                      # $AIGC_STORE or ./.aigc/results.db
        info = store.create_run(RunInfo(run_id=new_run_id(), suite="writing", status="running", started_at=t))
        store.record_case(case)                        # generation + scores + slot, one transaction
        results = store.load_run("latest")

Generations and scores are keyed by content (:func:`aigc_app.results.generation_key`, ``score_key``), so another
run asking the same thing finds them (``find_generation``, ``find_scores``). Every write is one ``BEGIN IMMEDIATE``
transaction retried while another process holds the lock, so concurrent writers wait for each other instead of
failing, and a process killed mid-run loses at most the case it had not committed yet.
"""

from __future__ import annotations

import difflib
import os
import random
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from aigc_app.results import CaseResult, RunInfo, RunResults, ScoreRow
from aigc_app.store import codec
from aigc_app.store.errors import RunNotFound, StoreError, StoreSchemaTooNew, StoreUnwritable
from aigc_app.store.schema import SCHEMA_VERSION, migrate

__all__ = [
    "DEFAULT_STORE",
    "MergeSummary",
    "ResultsStore",
    "RunSummary",
    "VariantFigures",
    "default_store_path",
    "new_run_id",
]

DEFAULT_STORE = Path(".aigc") / "results.db"
T = TypeVar("T")
_RUN_FIELDS = {f.name for f in fields(RunInfo)} - {"run_id"}
_JSON_FIELDS = {"prompts", "models", "evaluators", "options", "notes"}
_UNWRITABLE = ("readonly", "unable to open", "disk i/o", "disk is full", "permission", "read-only")
_COUNTS = (
    "(SELECT count(*) FROM run_cases c WHERE c.run_id = r.run_id) AS n_cases, "
    "(SELECT count(*) FROM run_cases c WHERE c.run_id = r.run_id AND c.error IS NOT NULL) AS n_failed, "
    "(SELECT coalesce(sum(c.passed), 0) FROM run_cases c WHERE c.run_id = r.run_id) AS n_passed"
)


def default_store_path(env: Mapping[str, str] | None = None) -> Path:
    """``$AIGC_STORE``, else ``./.aigc/results.db``."""
    env = os.environ if env is None else env
    return Path(env["AIGC_STORE"]) if env.get("AIGC_STORE") else DEFAULT_STORE


def new_run_id(at: float | None = None) -> str:
    """A sortable, readable run id: ``r20261201-133501-ab12`` (UTC start time and 4 random hex digits)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if at is None else at))
    return f"r{stamp}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class RunSummary:
    """A run as ``aigc runs list`` shows it: its info, how many cases passed, and whether its writer is alive."""

    info: RunInfo
    passed: int
    live: bool

    @property
    def pass_rate(self) -> float | None:
        """Passed cases over recorded cases (None before the first case)."""
        return self.passed / self.info.done if self.info.done else None

    @property
    def resumable(self) -> bool:
        """Stopped before the end (interrupted, or marked running by a process that is gone)."""
        return self.info.status == "interrupted" or (self.info.status == "running" and not self.live)


@dataclass(frozen=True)
class VariantFigures:
    """One ``prompt@version | model`` group of a run, counted in SQL (no cases loaded)."""

    variant: str
    cases: int
    passed: int
    errors: int
    mean_latency_s: float | None  # over generations made by this run (not failed, not reused)

    @property
    def pass_rate(self) -> float:
        """Passed over recorded cases."""
        return self.passed / self.cases if self.cases else 0.0


@dataclass(frozen=True)
class MergeSummary:
    """Rows that a merge added to the store (a row already there with the same key is not counted)."""

    source: Path
    runs: int
    cases: int
    generations: int
    scores: int

    @property
    def total(self) -> int:
        """All rows added."""
        return self.runs + self.cases + self.generations + self.scores


class ResultsStore:
    """Eval runs, generations and scores in one SQLite file; safe to share between processes."""

    def __init__(self, path: str | Path | None = None, *, timeout_s: float = 60.0) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.timeout_s = timeout_s
        self._lock = threading.RLock()
        self._db = self._open()

    # -- opening --------------------------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise StoreUnwritable(self.path, "it is a folder, not a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnwritable(self.path, f"cannot create the folder {self.path.parent} ({exc.strerror})") from None
        try:
            db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreUnwritable(self.path, str(exc)) from None
        db.row_factory = sqlite3.Row
        self._db = db
        try:
            self._retry(lambda: self._prepare(db))
        except BaseException:
            db.close()
            raise
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreSchemaTooNew(self.path, version, SCHEMA_VERSION)
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a killed process loses nothing committed
        db.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            db.execute("BEGIN IMMEDIATE")
            try:
                current = db.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
                if current > SCHEMA_VERSION:
                    raise StoreSchemaTooNew(self.path, current, SCHEMA_VERSION)
                migrate(db, current)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the connection (the store can no longer be used)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r})"

    # -- transactions ---------------------------------------------------------------------------------------------

    def _retry(self, work: Callable[[], T]) -> T:
        """Run ``work``, again while another process holds the lock (busy_timeout covers most waits; WAL recovery
        and checkpoints can still answer "locked" at once); sqlite errors become store errors."""
        deadline, delay = time.monotonic() + self.timeout_s, 0.005
        while True:
            try:
                return work()
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if ("locked" in text or "busy" in text) and time.monotonic() < deadline:
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 0.25)
                    continue
                raise self._translate(exc) from None
            except sqlite3.DatabaseError as exc:
                raise self._translate(exc) from None

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if any(word in text.lower() for word in _UNWRITABLE):
            return StoreUnwritable(self.path, text)
        if "locked" in text or "busy" in text:
            return StoreError(f"{self.path} stayed locked by another process for {self.timeout_s:.0f}s: try again")
        if "not a database" in text or "malformed" in text:
            return StoreError(f"{self.path} is not a readable aigc results store ({text}): pass --store another file")
        return StoreError(f"{self.path}: {text}")

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` inside one BEGIN IMMEDIATE transaction, committed before returning."""

        def attempt() -> T:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
                self._db.execute("COMMIT")
                return result
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

        with self._lock:
            return self._retry(attempt)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same snapshot."""
        with self._lock:
            self._retry(lambda: self._db.execute("BEGIN"))
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise self._translate(exc) from None
            finally:
                self._db.execute("COMMIT")

    # -- runs -----------------------------------------------------------------------------------------------------

    def create_run(self, info: RunInfo) -> RunInfo:
        """Store a new run (an empty ``run_id`` gets one from :func:`new_run_id`) and return it."""
        sql = f"INSERT OR IGNORE INTO runs ({', '.join(codec.RUN_COLUMNS)}) VALUES ({_marks(codec.RUN_COLUMNS)})"
        for _ in range(8):  # a generated id that is taken (same second, same 4 hex digits) is drawn again
            chosen = info if info.run_id else replace(info, run_id=new_run_id(info.started_at or None))
            row = codec.run_values(chosen, host=socket.gethostname(), pid=os.getpid(), updated_at=time.time())
            if self._write(lambda db, row=row: db.execute(sql, row).rowcount):
                return chosen
            if info.run_id:
                break
        raise StoreError(f"a run {chosen.run_id} is already in {self.path}: resume it or choose another id")

    def update_run(self, run_id: str, **changes: Any) -> RunInfo:
        """Change a run's fields (status, done, failed, cost_usd, finished_at, notes, ...); setting the status to
        ``running`` also records this process as the run's writer."""
        unknown = sorted(set(changes) - _RUN_FIELDS)
        if unknown:
            raise TypeError(f"update_run: RunInfo has no field {', '.join(unknown)}")
        values = {k: codec.dumps(v) if k in _JSON_FIELDS else v for k, v in changes.items()}
        values["updated_at"] = time.time()
        if changes.get("status") == "running":
            values.update(host=socket.gethostname(), pid=os.getpid())
        sql = f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE run_id = ?"
        if not self._write(lambda db: db.execute(sql, (*values.values(), run_id)).rowcount):
            raise self._not_found(run_id)
        return self.get_run(run_id)

    def get_run(self, ref: str) -> RunInfo:
        """The run a reference names: its full id, a unique prefix of it, or ``latest``. ``done`` and ``failed``
        are counted from the recorded cases, so they are right after a crash too."""
        return self._summary(ref).info

    def latest_run(self, suite: str | None = None) -> RunInfo | None:
        """The most recently started run (of ``suite`` when given), or None."""
        where, args = ("WHERE r.suite = ?", (suite,)) if suite else ("", ())
        rows = self._summaries(f"{where} ORDER BY r.started_at DESC, r.run_id DESC LIMIT 1", args)
        return rows[0].info if rows else None

    def list_runs(self, limit: int = 50) -> list[RunInfo]:
        """The newest ``limit`` runs, newest first."""
        return [s.info for s in self.summaries(limit)]

    def summaries(self, limit: int = 50) -> list[RunSummary]:
        """The newest ``limit`` runs with pass counts and liveness, newest first."""
        return self._summaries("ORDER BY r.started_at DESC, r.run_id DESC LIMIT ?", (limit,))

    def summary(self, ref: str) -> RunSummary:
        """One run (by id, prefix or ``latest``) with its pass count and liveness."""
        return self._summary(ref)

    def variant_figures(self, ref: str) -> list[VariantFigures]:
        """Cases, passes, errors and mean latency of each ``prompt@version | model`` of a run."""
        run_id = self.get_run(ref).run_id
        sql = (
            "SELECT rc.prompt_ref || ' | ' || rc.model, count(*), sum(rc.passed), sum(rc.error IS NOT NULL), "
            "avg(CASE WHEN rc.error IS NULL AND NOT rc.cached THEN g.latency_s END) "
            "FROM run_cases rc JOIN generations g ON g.key = rc.generation WHERE rc.run_id = ? "
            "GROUP BY rc.prompt_ref, rc.model ORDER BY rc.prompt_ref, rc.model"
        )
        with self._read() as db:
            return [VariantFigures(*row) for row in _tuples(db).execute(sql, (run_id,))]

    def _summaries(self, tail: str, args: tuple = ()) -> list[RunSummary]:
        with self._read() as db:
            rows = db.execute(f"SELECT r.*, {_COUNTS} FROM runs r {tail}", args).fetchall()
        return [_to_summary(row) for row in rows]

    def _summary(self, ref: str) -> RunSummary:
        ref = ref.strip()
        if ref == "latest":
            found = self._summaries("ORDER BY r.started_at DESC, r.run_id DESC LIMIT 1")
            if not found:
                raise RunNotFound(f"{self.path} holds no runs yet", ref=ref)
            return found[0]
        found = self._summaries("WHERE r.run_id = ?", (ref,)) or self._summaries(
            "WHERE substr(r.run_id, 1, ?) = ? ORDER BY r.run_id LIMIT 6", (len(ref), ref)
        )
        if len(found) == 1 and ref:
            return found[0]
        if len(found) > 1:
            ids = [s.info.run_id for s in found[:5]]
            raise RunNotFound(
                f"{ref!r} is the start of more than one run ({', '.join(ids)}): give more of the id", ref=ref
            )
        raise self._not_found(ref)

    def _not_found(self, ref: str) -> RunNotFound:
        with self._read() as db:
            ids = [row[0] for row in db.execute("SELECT run_id FROM runs")]
        near = difflib.get_close_matches(ref, ids, n=3, cutoff=0.8)  # run ids look alike: be strict
        return RunNotFound(f"no run {ref!r} in {self.path}.", ref=ref, near=near)

    def delete_run(self, ref: str, *, force: bool = False) -> RunInfo:
        """Delete a run and the generations and scores no other run uses; refuse a live run unless ``force``."""
        summary = self._summary(ref)
        if summary.live and not force:
            raise StoreError(
                f"run {summary.info.run_id} is still being written by process {self._pid(summary.info.run_id)}: "
                "stop it first"
            )
        self._write(lambda db: _delete(db, summary.info.run_id))
        return summary.info

    def _pid(self, run_id: str) -> int | None:
        with self._read() as db:
            return db.execute("SELECT pid FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]

    # -- cases ----------------------------------------------------------------------------------------------------

    def record_case(self, case: CaseResult) -> bool:
        """Commit one case (its generation, its scores and its slot in the run) in one transaction. Recording a
        slot again changes nothing, except that a success replaces a failed attempt. Returns whether the slot
        was written."""
        key, score_keys = codec.case_keys(case)
        stamp = time.time()
        generation = codec.generation_values(case, key, stamp)
        scores = [codec.score_values(s, k, key, stamp) for s, k in zip(case.scores, score_keys, strict=True)]
        slot = codec.run_case_values(case, key, score_keys, stamp)

        def work(db: sqlite3.Connection) -> bool | None:
            if db.execute("SELECT 1 FROM runs WHERE run_id = ?", (case.run_id,)).fetchone() is None:
                return None
            db.execute(_UPSERT_GENERATION, generation)
            db.executemany(_UPSERT_SCORE, scores)
            return db.execute(_UPSERT_SLOT, slot).rowcount > 0

        written = self._write(work)
        if written is None:
            raise self._not_found(case.run_id)
        return written

    def done_slots(self, run_id: str, *, include_failed: bool = False) -> set[tuple[str, str, str, int]]:
        """The (case_id, prompt_ref, model, sample_index) slots the run has recorded; failed ones only with
        ``include_failed`` (a resume retries them)."""
        where = "" if include_failed else " AND error IS NULL"
        sql = f"SELECT case_id, prompt_ref, model, sample_index FROM run_cases WHERE run_id = ?{where}"
        with self._read() as db:
            return {tuple(row) for row in db.execute(sql, (run_id,))}  # type: ignore[misc]

    def find_generation(self, key: str) -> CaseResult | None:
        """A successful generation with this key, from whichever run made it (scores not attached), or None."""
        sql = (
            f"{codec.CASE_SELECT} WHERE rc.generation = ? AND g.ok = 1 AND rc.error IS NULL "
            "ORDER BY rc.recorded_at LIMIT 1"
        )
        with self._read() as db:
            row = _tuples(db).execute(sql, (key,)).fetchone()
        return None if row is None else codec.case_from_row(row)

    def find_scores(self, keys: Iterable[str]) -> dict[str, ScoreRow]:
        """The stored scores among ``keys`` that did not end in an evaluator error, by key."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, ScoreRow] = {}
        with self._read() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                sql = f"{codec.SCORE_SELECT} WHERE s.error IS NULL AND s.key IN ({_marks(chunk)})"
                found.update((row[0], codec.score_from_row(row)) for row in _tuples(db).execute(sql, chunk))
        return found

    def load_run(self, ref: str) -> RunResults:
        """A run and all its cases with their scores, ordered by case id, prompt ref, model and sample index."""
        info = self.get_run(ref)
        score_sql = (
            codec.SCORE_SELECT.replace(
                "FROM scores s", "FROM run_cases rc, json_each(rc.score_keys) j JOIN scores s ON s.key = j.value"
            )
            + " WHERE rc.run_id = ?"
        )
        case_sql = (
            f"{codec.CASE_SELECT} WHERE rc.run_id = ? ORDER BY rc.case_id, rc.prompt_ref, rc.model, rc.sample_index"
        )
        shared: dict[str, str] = {}  # one copy of each repeated name, reason and message in memory
        with self._read() as db:
            rows = _tuples(db).execute(score_sql, (info.run_id,))
            scores = {row[0]: codec.score_from_row(row, shared) for row in rows}
            cases = [codec.case_from_row(row, scores, shared) for row in _tuples(db).execute(case_sql, (info.run_id,))]
        return RunResults(info=info, cases=cases)

    # -- merging --------------------------------------------------------------------------------------------------

    def merge(self, other_path: str | Path) -> MergeSummary:
        """Copy the runs, cases, generations and scores of another store file into this one. Idempotent, and
        order-free: where both hold a row with one key, both sides keep the same one (a success over a failure,
        then the earlier)."""
        from aigc_app.store.merge import merge_into

        other = Path(other_path)
        if not other.is_file():
            raise StoreError(f"no results store at {other}: give the path of a .db file that `aigc eval` wrote")
        if other.resolve() == self.path.resolve():
            raise StoreError(f"{other} is this store itself: give another file to merge")
        ResultsStore(other, timeout_s=self.timeout_s).close()  # refuses a newer schema, migrates an older one
        with self._lock:
            counts = self._retry(lambda: merge_into(self._db, other))
        return MergeSummary(source=other, **counts)


def _marks(values: Iterable[object]) -> str:
    return ", ".join("?" for _ in values)


def _upsert(table: str, columns: list[str], conflict: str, when: str) -> str:
    keys = {c.strip() for c in conflict.split(",")}
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(columns)}) "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates} WHERE {when}"
    )


# A success replaces a stored failure; anything else already stored stays as it is.
_UPSERT_GENERATION = _upsert("generations", codec.GENERATION_COLUMNS, "key", "generations.ok = 0 AND excluded.ok = 1")
_UPSERT_SCORE = _upsert("scores", codec.SCORE_COLUMNS, "key", "scores.error IS NOT NULL AND excluded.error IS NULL")
_UPSERT_SLOT = _upsert(
    "run_cases",
    codec.RUN_CASE_COLUMNS,
    "run_id, case_id, prompt_ref, model, sample_index",
    "run_cases.error IS NOT NULL",
)


def _tuples(db: sqlite3.Connection) -> sqlite3.Cursor:
    """A cursor giving plain tuples (faster than sqlite3.Row where thousands of rows are read)."""
    cursor = db.cursor()
    cursor.row_factory = None
    return cursor


def _to_summary(row: sqlite3.Row) -> RunSummary:
    info = codec.run_from_row(row, done=row["n_cases"], failed=row["n_failed"])
    return RunSummary(info=info, passed=row["n_passed"], live=_alive(info.status, row["host"], row["pid"]))


def _alive(status: str, host: str, pid: int | None) -> bool:
    """Whether a ``running`` run's writer still exists (a run written on another machine counts as alive)."""
    if status != "running" or pid is None:
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def _delete(db: sqlite3.Connection, run_id: str) -> None:
    """Remove a run's cases and the run, then the generations and scores that no remaining case uses."""
    db.execute("CREATE TEMP TABLE IF NOT EXISTS gone (key TEXT PRIMARY KEY)")
    db.execute("DELETE FROM temp.gone")
    db.execute("INSERT OR IGNORE INTO temp.gone SELECT generation FROM run_cases WHERE run_id = ?", (run_id,))
    db.execute("DELETE FROM run_cases WHERE run_id = ?", (run_id,))
    db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
    db.execute(
        "DELETE FROM scores WHERE generation IN (SELECT key FROM temp.gone) AND key NOT IN "
        "(SELECT j.value FROM run_cases rc, json_each(rc.score_keys) j "
        "WHERE rc.generation IN (SELECT key FROM temp.gone))"
    )
    db.execute(
        "DELETE FROM generations WHERE key IN (SELECT key FROM temp.gone) "
        "AND NOT EXISTS (SELECT 1 FROM run_cases rc WHERE rc.generation = generations.key)"
    )
