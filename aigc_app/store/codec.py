"""Rows to values and back: the results dataclasses as SQLite columns (JSON text for nested fields).

Sequences come back as tuples and mappings as dicts, whatever they went in as.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from aigc_app.results import CaseResult, RunInfo, ScoreRow, generation_key, score_key

__all__ = [
    "CASE_SELECT",
    "GENERATION_COLUMNS",
    "RUN_CASE_COLUMNS",
    "RUN_COLUMNS",
    "SCORE_COLUMNS",
    "SCORE_SELECT",
    "case_from_row",
    "case_keys",
    "dumps",
    "generation_values",
    "run_case_values",
    "run_from_row",
    "run_values",
    "score_from_row",
    "score_values",
]

RUN_COLUMNS = [
    "run_id",
    "suite",
    "status",
    "started_at",
    "finished_at",
    "suite_hash",
    "suite_path",
    "prompts",
    "models",
    "evaluators",
    "planned",
    "done",
    "failed",
    "cost_usd",
    "options",
    "notes",
    "host",
    "pid",
    "updated_at",
]
GENERATION_COLUMNS = [
    "key",
    "ok",
    "prompt_name",
    "prompt_version",
    "prompt_hash",
    "model",
    "params",
    "seed",
    "sample_index",
    "messages",
    "output",
    "latency_s",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "backend",
    "created_at",
    "origin_run",
]
SCORE_COLUMNS = [
    "key",
    "generation",
    "evaluator",
    "evaluator_version",
    "value",
    "passed",
    "threshold",
    "reason",
    "error",
    "applicable",
    "advisory",
    "rescore",
    "details",
    "created_at",
]
RUN_CASE_COLUMNS = [
    "run_id",
    "case_id",
    "prompt_ref",
    "model",
    "sample_index",
    "generation",
    "score_keys",
    "inputs",
    "reference",
    "tags",
    "error",
    "attempt",
    "cached",
    "passed",
    "recorded_at",
]
_JSON_RUN_FIELDS = ("prompts", "models", "evaluators", "options", "notes")
_ATTEMPT_FIELDS = ("output", "latency_s", "tokens_in", "tokens_out", "cost_usd", "backend", "created_at")


def dumps(value: Any) -> str:
    """Compact JSON; mappings and sequences of any kind, anything else unknown as its ``str``."""
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"), default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value


def _tuple(text: str) -> tuple:
    return tuple(json.loads(text))


def run_values(info: RunInfo, *, host: str, pid: int | None, updated_at: float) -> tuple:
    """The ``runs`` row of ``info`` (columns in RUN_COLUMNS order)."""
    row = {name: getattr(info, name) for name in RUN_COLUMNS if hasattr(info, name)}
    row.update({name: dumps(row[name]) for name in _JSON_RUN_FIELDS})
    row.update(host=host, pid=pid, updated_at=updated_at)
    return tuple(row[name] for name in RUN_COLUMNS)


def run_from_row(row: sqlite3.Row, *, done: int | None = None, failed: int | None = None) -> RunInfo:
    """A RunInfo from a ``runs`` row; ``done``/``failed`` override the stored counters when given."""
    fields = {name: row[name] for name in RUN_COLUMNS if name not in ("host", "pid", "updated_at")}
    fields.update({name: _tuple(row[name]) for name in ("prompts", "models", "evaluators", "notes")})
    fields["options"] = json.loads(row["options"])
    if done is not None:
        fields["done"] = done
    if failed is not None:
        fields["failed"] = failed
    return RunInfo(**fields)


def case_keys(case: CaseResult) -> tuple[str, list[str]]:
    """The case's generation key and its scores' keys, computed from content where the runner left them blank
    (a score's config is then its threshold)."""
    key = case.key or generation_key(
        case.prompt_hash, case.messages, case.model, case.params, case.seed, case.sample_index
    )
    scores = [
        s.key
        or score_key(
            key, s.evaluator, s.evaluator_version, {} if s.threshold is None else {"threshold": s.threshold}, s.rescore
        )
        for s in case.scores
    ]
    return key, scores


def generation_values(case: CaseResult, key: str, now: float) -> tuple:
    """The ``generations`` row of a case (GENERATION_COLUMNS order)."""
    return (
        key,
        int(case.error is None),
        case.prompt_name,
        case.prompt_version,
        case.prompt_hash,
        case.model,
        dumps(case.params),
        case.seed,
        case.sample_index,
        dumps(case.messages),
        case.output,
        case.latency_s,
        case.tokens_in,
        case.tokens_out,
        case.cost_usd,
        case.backend,
        case.created_at or now,
        case.run_id,
    )


def score_values(score: ScoreRow, key: str, generation: str, now: float) -> tuple:
    """The ``scores`` row of one score (SCORE_COLUMNS order)."""
    passed = None if score.passed is None else int(score.passed)
    return (
        key,
        generation,
        score.evaluator,
        score.evaluator_version,
        score.value,
        passed,
        score.threshold,
        score.reason,
        score.error,
        int(score.applicable),
        int(score.advisory),
        score.rescore,
        dumps(score.details),
        now,
    )


def run_case_values(case: CaseResult, key: str, score_keys: list[str], now: float) -> tuple:
    """The ``run_cases`` row of a case (RUN_CASE_COLUMNS order)."""
    attempt = None
    if case.error is not None:
        attempt = {name: getattr(case, name) for name in _ATTEMPT_FIELDS}
        attempt = dumps(attempt | {"created_at": case.created_at or now})
    return (
        case.run_id,
        case.case_id,
        case.prompt_ref,
        case.model,
        case.sample_index,
        key,
        dumps(score_keys),
        dumps(case.inputs),
        case.reference,
        dumps(case.tags),
        case.error,
        attempt,
        int(case.cached),
        int(case.passed),
        now,
    )


# The columns the readers below expect, in order. The case's JSON fields travel as one JSON array so that a row
# costs one parse: [score_keys, inputs, tags, params, messages].
SCORE_SELECT = (
    "SELECT s.key, s.evaluator, s.evaluator_version, s.value, s.passed, s.threshold, s.reason, s.error, "
    "s.applicable, s.advisory, s.rescore, s.details FROM scores s"
)
CASE_SELECT = (
    "SELECT rc.run_id, rc.case_id, g.prompt_name, g.prompt_version, g.prompt_hash, rc.model, rc.sample_index, "
    "g.seed, rc.reference, rc.error, rc.cached, rc.generation, g.output, g.latency_s, g.tokens_in, g.tokens_out, "
    "g.cost_usd, g.backend, g.created_at, rc.attempt, "
    "'[' || rc.score_keys || ',' || rc.inputs || ',' || rc.tags || ',' || g.params || ',' || g.messages || ']' "
    "FROM run_cases rc JOIN generations g ON g.key = rc.generation"
)


def score_from_row(row: tuple, shared: dict[str, str] | None = None) -> ScoreRow:
    """A ScoreRow from a SCORE_SELECT row; ``shared`` keeps one copy of repeated strings across rows."""
    key, evaluator, version, value, passed, threshold, reason, error, applicable, advisory, rescore, details = row
    if shared is not None:
        evaluator, version, reason = (shared.setdefault(v, v) for v in (evaluator, version, reason))
    return ScoreRow(
        evaluator,
        version,
        value,
        None if passed is None else bool(passed),
        threshold,
        reason,
        error,
        bool(applicable),
        bool(advisory),
        rescore,
        {} if details == "{}" else json.loads(details),
        key,
    )


def case_from_row(
    row: tuple, scores: Mapping[str, ScoreRow] | None = None, shared: dict[str, str] | None = None
) -> CaseResult:
    """A CaseResult from a CASE_SELECT row, with those of its scores found in ``scores`` (by key); ``shared``
    keeps one copy of repeated strings (names, message texts) across rows."""
    (run_id, case_id, prompt_name, prompt_version, prompt_hash, model, sample_index, seed, reference, error, cached,
     key, output, latency_s, tokens_in, tokens_out, cost_usd, backend, created_at, attempt, blob) = row  # fmt: skip
    score_keys, inputs, tags, params, messages = json.loads(blob)
    if shared is not None:
        run_id, prompt_name, prompt_version, prompt_hash, model, backend = (
            v if v is None else shared.setdefault(v, v)
            for v in (run_id, prompt_name, prompt_version, prompt_hash, model, backend)
        )
        messages = [{k: shared.setdefault(v, v) if isinstance(v, str) else v for k, v in m.items()} for m in messages]
    if attempt is not None:  # a failed attempt: its own output, timings and usage
        failed = json.loads(attempt)
        output, latency_s, tokens_in, tokens_out = (
            failed[k] for k in ("output", "latency_s", "tokens_in", "tokens_out")
        )
        cost_usd, backend, created_at = failed["cost_usd"], failed["backend"], failed["created_at"]
    return CaseResult(
        run_id=run_id,
        case_id=case_id,
        prompt_name=prompt_name,
        prompt_version=prompt_version,
        prompt_hash=prompt_hash,
        model=model,
        sample_index=sample_index,
        params=params,
        seed=seed,
        inputs=inputs,
        messages=tuple(messages),
        reference=reference,
        tags=tuple(tags),
        output=output,
        error=error,
        latency_s=latency_s,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_usd=cost_usd,
        cached=bool(cached),
        backend=backend,
        scores=tuple(scores[k] for k in score_keys if k in scores) if scores else (),
        key=key,
        created_at=created_at,
    )
