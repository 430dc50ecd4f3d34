"""The results store on real SQLite files in temp folders: round trips, resume, reuse, refs, schema, merge, delete."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from aigc_app.results import CaseResult, RunInfo, ScoreRow, generation_key, score_key
from aigc_app.store import (
    SCHEMA_VERSION,
    ResultsStore,
    RunNotFound,
    StoreError,
    StoreSchemaTooNew,
    StoreUnwritable,
    default_store_path,
    new_run_id,
)


def make_run(run_id: str = "r20261201-120000-aaaa", suite: str = "writing", started_at: float = 1e9) -> RunInfo:
    return RunInfo(
        run_id=run_id,
        suite=suite,
        status="running",
        started_at=started_at,
        suite_hash="sha-suite",
        suite_path="suites/writing.yaml",
        prompts=("writing/blog@1.0.0", "writing/blog@1.1.0"),
        models=("openai:gpt-4o-mini",),
        evaluators=("length", "toxicity", "judge"),
        planned=4,
        options={"concurrency": 4, "filter": None, "nested": {"a": [1, 2]}},
        notes=("first note",),
    )


def make_case(run_id: str, case_id: str = "c1", *, version: str = "1.0.0", sample: int = 0, **changes) -> CaseResult:
    """A case with every field set to something other than its default."""
    messages = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Write about {case_id}"})
    scores = (
        ScoreRow("length", "2", 0.9, True, threshold=0.5, reason="ok", details={"words": 120, "bounds": [50, 200]}),
        ScoreRow("toxicity", "1", 0.1, None, advisory=True, applicable=False, reason="n/a"),
        ScoreRow("judge", "3", 0.0, False, error="judge timed out", rescore=1, threshold=0.7),
    )
    case = CaseResult(
        run_id=run_id,
        case_id=case_id,
        prompt_name="writing/blog",
        prompt_version=version,
        prompt_hash=f"hash-{version}",
        model="openai:gpt-4o-mini",
        sample_index=sample,
        params={"temperature": 0.7, "max_tokens": 256},
        seed=42,
        inputs={"topic": case_id, "words": 120, "tags": ["a", "b"]},
        messages=messages,
        reference="a reference answer",
        tags=("smoke", "en"),
        output=f"An answer about {case_id} (é, 日本)",
        latency_s=1.25,
        tokens_in=30,
        tokens_out=120,
        cost_usd=0.0012,
        cached=False,
        backend="openai",
        scores=scores,
        created_at=1e9 + 5,
    )
    return dataclasses.replace(case, **changes)


def keyed(case: CaseResult) -> CaseResult:
    """The case as the store gives it back: generation and score keys filled in from content."""
    key = generation_key(case.prompt_hash, case.messages, case.model, case.params, case.seed, case.sample_index)
    scores = tuple(
        dataclasses.replace(
            s,
            key=score_key(
                key,
                s.evaluator,
                s.evaluator_version,
                {} if s.threshold is None else {"threshold": s.threshold},
                s.rescore,
            ),
        )
        for s in case.scores
    )
    return dataclasses.replace(case, key=key, scores=scores)


@pytest.fixture
def store(tmp_path: Path):
    with ResultsStore(tmp_path / "results.db") as s:
        yield s


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_every_field_of_runs_cases_and_scores_comes_back(store: ResultsStore) -> None:
    info = store.create_run(make_run())
    ok = make_case(info.run_id, "c1")
    failed = make_case(
        info.run_id,
        "c2",
        error="HTTP 500 after 3 tries",
        output="partial",
        latency_s=3.5,
        tokens_out=0,
        cost_usd=None,
        backend=None,
        scores=(),
        seed=None,
        reference=None,
        cached=True,
    )
    assert store.record_case(ok) and store.record_case(failed)
    results = store.load_run(info.run_id)
    assert results.cases == [keyed(ok), keyed(failed)]
    assert results.info == dataclasses.replace(info, done=2, failed=1)
    assert results.cases[0].score("judge", rescore=1).error == "judge timed out"
    assert [c.passed for c in results.cases] == [True, False]


def test_cases_come_back_in_slot_order_whatever_the_recording_order(store: ResultsStore) -> None:
    run = store.create_run(make_run()).run_id
    slots = [(c, v, s) for c in ("c2", "c1", "c3") for v in ("1.1.0", "1.0.0") for s in (1, 0)]
    for case_id, version, sample in slots:
        store.record_case(make_case(run, case_id, version=version, sample=sample))
    loaded = [(c.case_id, c.prompt_version, c.sample_index) for c in store.load_run(run).cases]
    assert loaded == sorted(slots)


def test_recording_a_case_again_changes_nothing_and_a_success_replaces_a_failure(
    store: ResultsStore, tmp_path: Path
) -> None:
    run = store.create_run(make_run()).run_id
    case = make_case(run, "c1")
    assert store.record_case(case) is True
    assert store.record_case(dataclasses.replace(case, output="a different answer")) is False
    assert store.load_run(run).cases[0].output == case.output
    assert store.record_case(make_case(run, "c2", error="timeout", scores=())) is True
    assert store.done_slots(run) == {("c1", "writing/blog@1.0.0", "openai:gpt-4o-mini", 0)}
    assert len(store.done_slots(run, include_failed=True)) == 2
    assert store.record_case(make_case(run, "c2")) is True  # the resume's retry succeeded
    assert [c.error for c in store.load_run(run).cases] == [None, None]
    assert store.get_run(run).failed == 0 and store.get_run(run).done == 2
    assert count(tmp_path / "results.db", "run_cases") == 2


def test_generations_and_scores_are_found_by_content_from_any_run(store: ResultsStore, tmp_path: Path) -> None:
    first = store.create_run(make_run("r20261201-120000-aaaa")).run_id
    second = store.create_run(make_run("r20261201-130000-bbbb", started_at=2e9)).run_id
    case = keyed(make_case(first, "c1"))
    store.record_case(case)
    found = store.find_generation(case.key)
    assert found is not None and found.output == case.output and found.run_id == first and found.scores == ()
    reused = store.find_scores([s.key for s in case.scores])
    assert set(reused) == {case.scores[0].key, case.scores[1].key}  # the errored judge score is scored again
    store.record_case(dataclasses.replace(case, run_id=second, cached=True))
    assert count(tmp_path / "results.db", "generations") == 1
    assert store.load_run(second).cases[0].cached and not store.load_run(first).cases[0].cached
    assert store.find_generation("no such key") is None


def test_a_failed_generation_is_not_reused(store: ResultsStore) -> None:
    run = store.create_run(make_run()).run_id
    failed = keyed(make_case(run, "c1", error="rate limited", output=""))
    store.record_case(failed)
    assert store.find_generation(failed.key) is None
    store.record_case(dataclasses.replace(failed, error=None, output="fine", run_id=run, case_id="c2"))
    assert store.find_generation(failed.key).output == "fine"
    # the failed case still shows its own attempt, not the later success
    assert store.load_run(run).cases[0].output == "" and store.load_run(run).cases[0].error == "rate limited"


def test_runs_are_found_by_id_prefix_and_latest(store: ResultsStore) -> None:
    old = store.create_run(make_run("r20261130-090000-1111", suite="marketing", started_at=1e9))
    new = store.create_run(make_run("r20261201-090000-2222", suite="writing", started_at=2e9))
    assert store.get_run(old.run_id).run_id == old.run_id
    assert store.get_run("r20261130").run_id == old.run_id
    assert store.get_run("latest").run_id == new.run_id
    assert store.latest_run("marketing").run_id == old.run_id and store.latest_run("education") is None
    assert [r.run_id for r in store.list_runs()] == [new.run_id, old.run_id]
    with pytest.raises(RunNotFound, match="more than one run"):
        store.get_run("r2026")
    with pytest.raises(RunNotFound) as caught:
        store.get_run("r20261201-090000-2223")
    assert "Did you mean: r20261201-090000-2222?" in str(caught.value)
    assert "aigc runs list" in str(caught.value)


def test_an_empty_store_has_no_latest_run(store: ResultsStore) -> None:
    assert store.latest_run() is None and store.list_runs() == []
    with pytest.raises(RunNotFound, match="holds no runs yet"):
        store.get_run("latest")


def test_run_ids_are_sortable_and_readable() -> None:
    ids = [new_run_id(1_700_000_000 + i) for i in (0, 1, 3600)]
    assert ids == sorted(ids) and ids[0].startswith("r20231114-221320-") and len(ids[0]) == 21


def test_update_run_changes_fields_and_rejects_unknown_ones(store: ResultsStore) -> None:
    run = store.create_run(make_run()).run_id
    info = store.update_run(run, status="finished", finished_at=2e9, cost_usd=1.5, notes=["a", "b"])
    assert (info.status, info.finished_at, info.cost_usd, info.notes) == ("finished", 2e9, 1.5, ("a", "b"))
    with pytest.raises(TypeError, match="no field colour"):
        store.update_run(run, colour="red")
    with pytest.raises(RunNotFound):
        store.update_run("r19990101-000000-0000", status="failed")
    with pytest.raises(StoreError, match="already in"):
        store.create_run(make_run())
    assert store.create_run(dataclasses.replace(make_run(), run_id="")).run_id.startswith("r")


def test_a_case_for_an_unknown_run_is_refused(store: ResultsStore) -> None:
    with pytest.raises(RunNotFound, match="no run 'r-missing'"):
        store.record_case(make_case("r-missing"))


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.db"
    ResultsStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    with pytest.raises(StoreSchemaTooNew) as caught:
        ResultsStore(path)
    expected = f"created by a newer aigc (schema {SCHEMA_VERSION + 3}, this one knows {SCHEMA_VERSION}): upgrade aigc"
    assert str(caught.value) == f"{path}: {expected}"


def test_the_store_is_in_wal_mode_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "results.db"
    with ResultsStore(path) as store:
        store.create_run(make_run())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with ResultsStore(path) as store:
        assert len(store.list_runs()) == 1


@pytest.mark.parametrize("kind", ["folder", "under a file"])
def test_an_unwritable_path_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    if kind == "folder":
        path = tmp_path / "a_folder"
        path.mkdir()
        reason = "it is a folder, not a file"
    else:
        (tmp_path / "plain.txt").write_text("x")
        path = tmp_path / "plain.txt" / "results.db"
        reason = "cannot create the folder"
    with pytest.raises(StoreUnwritable) as caught:
        ResultsStore(path)
    message = str(caught.value)
    assert str(path) in message and reason in message and "--store PATH" in message
    assert isinstance(caught.value, OSError)


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="not a readable aigc results store"):
        ResultsStore(path)
    assert path.read_text().startswith("these are my notes")


def test_the_default_path_comes_from_the_environment() -> None:
    assert default_store_path({}) == Path(".aigc/results.db")
    assert default_store_path({"AIGC_STORE": "/x/y.db"}) == Path("/x/y.db")


def _content(path: Path) -> dict[str, list[tuple]]:
    """Every table's rows, sorted, without the surrogate row id of run_cases."""
    with sqlite3.connect(path) as db:
        out = {}
        for table in ("runs", "generations", "scores", "run_cases"):
            columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})") if r[1] != "id"]
            out[table] = sorted(db.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr)
        return out


def _shards(tmp_path: Path) -> tuple[Path, Path]:
    """Two stores: a run each, the same third run split between them, a generation both made."""
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    with ResultsStore(a) as left, ResultsStore(b) as right:
        left.create_run(make_run("r20261201-100000-aaaa", started_at=1e9))
        right.create_run(make_run("r20261201-110000-bbbb", started_at=1.1e9))
        shared = make_run("r20261201-120000-cccc", started_at=1.2e9)
        left.create_run(shared)
        right.create_run(shared)
        left.update_run(shared.run_id, status="finished")
        for i in range(6):
            left.record_case(make_case("r20261201-100000-aaaa", f"c{i}"))
            right.record_case(make_case("r20261201-110000-bbbb", f"c{i}", version="1.1.0"))
            shard = left if i % 2 else right
            shard.record_case(make_case(shared.run_id, f"c{i}"))
        right.record_case(make_case(shared.run_id, "c1", error="boom", scores=()))  # left has c1's success
    return a, b


def test_merging_is_idempotent_and_order_free(tmp_path: Path) -> None:
    import shutil

    a, b = _shards(tmp_path)
    a2, b2 = tmp_path / "a2.db", tmp_path / "b2.db"
    for source, copy in ((a, a2), (b, b2)):
        with ResultsStore(source):  # checkpoint: the copy must hold everything
            pass
        shutil.copy(source, copy)
    with ResultsStore(a) as left:
        first = left.merge(b)
        assert (first.runs, first.cases) == (1, 9)  # run bbbb; its 6 cases and the 3 shared-run slots a lacked
        assert left.merge(b).total == 0
        merged = left.load_run("r20261201-120000-cccc")
        assert len(merged.cases) == 6 and all(c.error is None for c in merged.cases)
        assert merged.info.status == "finished" and merged.info.done == 6
    with ResultsStore(b2) as right:
        right.merge(a2)
    assert _content(a) == _content(b2)


def test_merge_refuses_itself_a_missing_file_and_a_newer_schema(tmp_path: Path, store: ResultsStore) -> None:
    with pytest.raises(StoreError, match="is this store itself"):
        store.merge(store.path)
    with pytest.raises(StoreError, match="no results store at"):
        store.merge(tmp_path / "missing.db")
    newer = tmp_path / "newer.db"
    ResultsStore(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreSchemaTooNew):
        store.merge(newer)


def test_deleting_a_run_keeps_what_other_runs_use(store: ResultsStore, tmp_path: Path) -> None:
    keep = store.create_run(make_run("r20261201-100000-aaaa")).run_id
    drop = store.create_run(make_run("r20261201-110000-bbbb")).run_id
    store.record_case(make_case(keep, "shared"))
    store.record_case(make_case(drop, "shared", cached=True))
    store.record_case(make_case(drop, "own"))
    store.update_run(drop, status="finished")
    assert store.delete_run("r20261201-11").run_id == drop
    path = tmp_path / "results.db"
    assert count(path, "generations") == 1 and count(path, "scores") == 3 and count(path, "run_cases") == 1
    assert store.load_run(keep).cases[0].scores == keyed(make_case(keep, "shared")).scores
    with pytest.raises(RunNotFound):
        store.get_run(drop)


def test_a_live_run_is_not_deleted_without_force(store: ResultsStore) -> None:
    run = store.create_run(make_run()).run_id  # status running, written by this very process
    assert store.summary(run).live and not store.summary(run).resumable
    with pytest.raises(StoreError, match="still being written by process"):
        store.delete_run(run)
    store.delete_run(run, force=True)
    assert store.list_runs() == []


def test_an_older_store_is_migrated_forward_keeping_its_runs(tmp_path: Path) -> None:
    from aigc_app.store.schema import MIGRATIONS

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # a store as the first release of the schema wrote it
        MIGRATIONS[0](db)
        db.execute("PRAGMA user_version = 1")
    with ResultsStore(path) as store:
        run = store.create_run(make_run()).run_id
        store.record_case(make_case(run))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
        indexes = {row[1] for row in db.execute("PRAGMA index_list(run_cases)")}
        assert "run_cases_tally" in indexes
    with ResultsStore(path) as store:
        assert store.summary(run).passed == 1


def test_variant_figures_are_counted_without_loading_cases(store: ResultsStore) -> None:
    run = store.create_run(make_run()).run_id
    store.record_case(make_case(run, "c1"))
    store.record_case(make_case(run, "c2", cached=True, latency_s=9.0))
    store.record_case(make_case(run, "c1", version="1.1.0", error="boom", scores=()))
    figures = {v.variant: v for v in store.variant_figures(run)}
    old, new = figures["writing/blog@1.0.0 | openai:gpt-4o-mini"], figures["writing/blog@1.1.0 | openai:gpt-4o-mini"]
    assert (old.cases, old.passed, old.errors, old.mean_latency_s, old.pass_rate) == (2, 2, 0, 1.25, 1.0)
    assert (new.cases, new.passed, new.errors, new.mean_latency_s, new.pass_rate) == (1, 0, 1, None, 0.0)
