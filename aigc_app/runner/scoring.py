"""Scoring finished generations: the evaluator suite over a batch of samples, with stored scores reused by key.

A score's key is :func:`aigc_app.results.score_key` of the generation's key, the evaluator's name and version, the
entry's configuration (params, threshold for the prompt's task, advisory) and the rescore index, so a re-run scores
only what changed. ``rescore: K`` scores each output K times (index 0..K-1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aigc_app.results import CaseResult, ScoreRow, score_key

if TYPE_CHECKING:
    from aigc_app.runner.plan import Slot
    from aigc_app.store import ResultsStore
    from evaluators.base import Sample, Score
    from evaluators.suite import Suite

__all__ = ["sample_of", "score_batch", "score_keys"]


def _entries(evaluators: Suite, slot: Slot) -> list[tuple[Any, Any]]:
    task = slot.prompt.meta.task
    return [(e, ev) for e, ev in evaluators.entries if e.tasks is None or task in e.tasks]


def _entry_config(entry: Any, task: str | None) -> dict[str, Any]:
    return {"params": entry.params, "threshold": entry.threshold_for(task), "advisory": entry.advisory}


def score_keys(evaluators: Suite, scorings: int, slot: Slot, case: CaseResult) -> list[list[str]]:
    """Per scoring, the score key of each entry that applies to the slot's prompt."""
    task = slot.prompt.meta.task
    return [
        [
            score_key(case.key, e.evaluator, getattr(ev, "version", "1"), _entry_config(e, task), k)
            for e, ev in _entries(evaluators, slot)
        ]
        for k in range(scorings)
    ]


def score_batch(
    evaluators: Suite,
    scorings: int,
    store: ResultsStore,
    batch: Sequence[tuple[Slot, CaseResult]],
    *,
    threads: int | None = 1,
) -> dict[int, list[ScoreRow]]:
    """Scores of each case (by ``id(case)``): stored ones reused by key, the rest computed in one pass per scoring.
    Runs the evaluators in the calling thread (the executor calls it from a worker thread)."""
    keys = {id(c): score_keys(evaluators, scorings, s, c) for s, c in batch}
    found = store.find_scores(k for per_case in keys.values() for ks in per_case for k in ks)
    out: dict[int, list[ScoreRow]] = {}
    todo = []
    for slot, case in batch:
        wanted = [k for ks in keys[id(case)] for k in ks]
        if all(k in found for k in wanted):
            out[id(case)] = [replace(found[k], key=k) for k in wanted]
        else:
            todo.append((slot, case))
    if not todo:
        return out
    samples = [sample_of(slot, case) for slot, case in todo]
    for k in range(scorings):
        scores = evaluators.score(samples, threads=threads)
        for (slot, case), row in zip(todo, scores, strict=True):
            entries = _entries(evaluators, slot)
            rows = [
                _row(score, entry, key, k)
                for score, (entry, _), key in zip(row, entries, keys[id(case)][k], strict=True)
            ]
            out.setdefault(id(case), []).extend(rows)
    return out


def _row(score: Score, entry: Any, key: str, rescore: int) -> ScoreRow:
    return ScoreRow(
        evaluator=score.name,
        evaluator_version=score.evaluator_version,
        value=float(score.value),
        passed=score.passed,
        threshold=score.threshold,
        reason=score.reason,
        error=score.error,
        applicable=score.applicable,
        advisory=entry.advisory,
        rescore=rescore,
        details=_plain(score.details),
        key=key,
    )


def _plain(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details as JSON values (numpy numbers and tuples become plain ones)."""
    return json.loads(json.dumps(dict(details), default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def sample_of(slot: Slot, case: CaseResult) -> Sample:
    """The evaluators' view of one generation: output, rendered messages, inputs, the prompt's and the case's checks."""
    from evaluators.base import Sample

    prompt = slot.prompt
    return Sample(
        output=case.output,
        prompt_ref=prompt.ref,
        prompt_hash=prompt.hash,
        task=prompt.meta.task,
        messages=[dict(m) for m in slot.messages],
        inputs=dict(slot.inputs),
        expect=[*({"check": e.check, **e.kwargs} for e in prompt.meta.expect), *slot.case.expect],
        output_schema=prompt.meta.output.schema_,
        reference=slot.case.reference,
        context=slot.case.context,
        metadata={"case_id": slot.case.id, "model": slot.model, "sample_index": slot.sample_index},
    )
