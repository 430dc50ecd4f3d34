"""Agreement of our IFEval checks with the official checker's strict labels on real model responses."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators.adherence.checks import bind
from evaluators.adherence.instructions import IFEVAL_CHECKS
from evaluators.errors import EvaluatorError

__all__ = ["Disagreement", "calibrate", "disagreements"]

_DATASET = "IFEval (5 models)"
_INSTRUCTION_GOAL = 0.995
_PROMPT_GOAL = 0.99
_TYPE_GOAL = 0.99


@dataclass(frozen=True)
class Disagreement:
    """One instruction where our strict verdict differs from the official label."""

    model: str
    key: int
    instruction: str
    label: bool
    ours: bool
    reason: str


def _rows(data_dir: Path) -> Iterator[Mapping[str, Any]]:
    folder = data_dir / "ifeval"
    files = sorted(folder.glob("*.labels.jsonl")) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no IFEval labels (*.labels.jsonl) in {folder}")
    for path in files:
        with path.open(encoding="utf-8") as lines:
            yield from (json.loads(line) for line in lines if line.strip())


def _judge(instruction: str, kwargs: Mapping[str, Any] | None, response: str) -> tuple[bool, str]:
    try:
        verdict = bind(instruction, kwargs, IFEVAL_CHECKS).strict(response)
    except EvaluatorError as exc:
        return False, f"error: {exc}"
    return verdict.passed, verdict.reason


def _compare(data_dir: Path) -> Iterator[tuple[Mapping[str, Any], list[tuple[str, bool, bool, str]]]]:
    for row in _rows(data_dir):
        judged = [
            (iid, label, *_judge(iid, kw, row["response"]))
            for iid, kw, label in zip(
                row["instruction_id_list"], row["kwargs"], row["follow_instruction_list"], strict=True
            )
        ]
        yield row, judged


def disagreements(data_dir: Path) -> list[Disagreement]:
    """Every instruction where our strict verdict differs from the official label, to inspect."""
    return [
        Disagreement(row["model"], row["key"], iid, label, ours, reason)
        for row, judged in _compare(data_dir)
        for iid, label, ours, reason in judged
        if label != ours
    ]


def _row(metric: str, agree: int, n: int, goal: float) -> dict[str, Any]:
    value = agree / n if n else 0.0
    return {
        "area": "adherence",
        "evaluator": "ifeval",
        "dataset": _DATASET,
        "metric": metric,
        "value": value,
        "goal": f">= {goal}",
        "n": n,
        "detail": f"{n - agree} of {n} disagree with the official strict labels",
    }


def calibrate(data_dir: Path) -> list[dict[str, Any]]:
    """Instruction-level, prompt-level and (where below 0.99) per-type agreement with the official IFEval checker."""
    per_type: Counter[str] = Counter()
    per_type_agree: Counter[str] = Counter()
    prompts = prompts_agree = 0
    for row, judged in _compare(data_dir):
        prompts += 1
        prompts_agree += all(ours for *_, ours, _ in judged) == bool(row["follow_all_instructions"])
        for iid, label, ours, _ in judged:
            per_type[iid] += 1
            per_type_agree[iid] += label == ours
    n, agree = sum(per_type.values()), sum(per_type_agree.values())
    rows = [
        _row("instruction_agreement", agree, n, _INSTRUCTION_GOAL),
        _row("prompt_agreement", prompts_agree, prompts, _PROMPT_GOAL),
    ]
    for iid in sorted(per_type):
        if per_type_agree[iid] / per_type[iid] < _TYPE_GOAL:
            rows.append(_row(f"agreement:{iid}", per_type_agree[iid], per_type[iid], _TYPE_GOAL))
    return rows
