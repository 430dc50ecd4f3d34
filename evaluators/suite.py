"""Suites: evaluators grouped with thresholds per task, defined in YAML (or Python).

    # evaluators/suites/offline.yaml
    name: offline
    description: Every offline check; nothing is downloaded and no model is called.
    evaluators:
      - {evaluator: adherence, threshold: 1.0}
      - {evaluator: toxicity, threshold: 0.5}
      - {evaluator: reading, threshold: 0.6, tasks: [education]}
      - {evaluator: acceptability, advisory: true}     # reported, never pass/fail

A sample is scored by the entries whose ``tasks`` include its task (or that name no tasks). ``passed`` is
``value >= threshold`` (the task's threshold, else ``default``, else the evaluator's own verdict).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evaluators.base import Evaluator, Sample, Score, safe_score_batch
from evaluators.errors import EvaluatorError, UnknownEvaluator
from evaluators.registry import EvaluatorRegistry

__all__ = ["BUILTIN_SUITES", "Suite", "SuiteEntry", "SuiteSpec", "load_suite"]

BUILTIN_SUITES = Path(__file__).parent / "suites"


class SuiteEntry(BaseModel):
    """One evaluator in a suite."""

    model_config = ConfigDict(extra="forbid")

    evaluator: str
    params: dict[str, Any] = Field(default_factory=dict)
    threshold: float | None = Field(None, ge=0, le=1)
    thresholds: dict[str, float] = Field(default_factory=dict, description="Per task; 'default' for the rest.")
    tasks: list[str] | None = None
    advisory: bool = Field(False, description="Report the value but never pass or fail on it.")

    def threshold_for(self, task: str | None) -> float | None:
        """The threshold that applies to a sample of ``task``."""
        if task is not None and task in self.thresholds:
            return self.thresholds[task]
        return self.thresholds.get("default", self.threshold)


class SuiteSpec(BaseModel):
    """A suite as written in YAML."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    evaluators: list[SuiteEntry]


class Suite:
    """Evaluators plus thresholds, ready to score samples (vectorised per evaluator)."""

    def __init__(self, spec: SuiteSpec, registry: EvaluatorRegistry | None = None) -> None:
        registry = registry or EvaluatorRegistry()
        self.spec = spec
        self.entries: list[tuple[SuiteEntry, Evaluator]] = [
            (entry, registry.create(entry.evaluator, **entry.params)) for entry in spec.evaluators
        ]

    @property
    def name(self) -> str:
        """The suite's name."""
        return self.spec.name

    def score(self, samples: Sequence[Sample], *, workers: int = 1) -> list[list[Score]]:
        """Scores per sample, in suite order. Evaluators run batched; ``workers`` > 1 runs them side by side."""
        results: list[list[Score]] = [[] for _ in samples]

        def run(item: tuple[SuiteEntry, Evaluator]) -> list[tuple[int, Score]]:
            entry, evaluator = item
            chosen = [i for i, s in enumerate(samples) if entry.tasks is None or s.task in entry.tasks]
            scores = safe_score_batch(evaluator, [samples[i] for i in chosen]) if chosen else []
            return [(i, _apply(entry, samples[i], score)) for i, score in zip(chosen, scores, strict=True)]

        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                outcomes = list(pool.map(run, self.entries))
        else:
            outcomes = [run(item) for item in self.entries]
        for outcome in outcomes:
            for index, score in outcome:
                results[index].append(score)
        return results


def _apply(entry: SuiteEntry, sample: Sample, score: Score) -> Score:
    if entry.advisory:
        return replace(score, passed=None, threshold=None, reason=f"{score.reason} (advisory)".strip())
    threshold = entry.threshold_for(sample.task)
    if threshold is None or score.error is not None:
        return score
    return replace(score, threshold=threshold, passed=score.value >= threshold)


def load_suite(name_or_path: str | Path, registry: EvaluatorRegistry | None = None) -> Suite:
    """A built-in suite by name (``offline``, ``writing``, ...) or a YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = BUILTIN_SUITES / f"{name_or_path}.yaml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in BUILTIN_SUITES.glob("*.yaml")))
            raise UnknownEvaluator(f"unknown suite {name_or_path!r}; built-in suites: {known}")
    try:
        spec = SuiteSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as exc:
        raise EvaluatorError(f"{path}: invalid suite definition: {exc}") from None
    return Suite(spec, registry)
