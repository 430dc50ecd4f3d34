"""Suites: evaluators grouped with thresholds per task, defined in YAML (or Python).

    # evaluators/suites/offline.yaml
    name: offline
    description: Every offline check; nothing is downloaded and no model is called.
    evaluators:
      - {evaluator: adherence}                         # the evaluator's own verdict and threshold
      - {evaluator: degeneration, threshold: 0.8}      # a deliberate override: passed = value >= 0.8
      - {evaluator: reading, threshold: 0.6, tasks: [education]}
      - {evaluator: acceptability, advisory: true}     # reported, never pass/fail

A sample is scored by the entries whose ``tasks`` include its task (or that name no tasks). An entry without a
threshold keeps the evaluator's own verdict, so a calibrated threshold (toxicity's, prompt injection's) has one
source of truth; ``threshold`` or per-task ``thresholds`` override it on the value scale (``value >= threshold``).
A Score that is not applicable (``applicable=False``: diversity of a single text) is reported, never judged.
An evaluator whose optional package is missing becomes an error Score for every sample; the suite still runs.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evaluators.base import Evaluator, Sample, Score, safe_score_batch
from evaluators.errors import EvaluatorError, MissingDependency, UnknownEvaluator
from evaluators.registry import EvaluatorRegistry
from evaluators.threads import DEFAULT_THREADS, limit_threads

__all__ = ["BUILTIN_SUITES", "Suite", "SuiteEntry", "SuiteSpec", "load_suite"]

BUILTIN_SUITES = Path(__file__).parent / "suites"


class SuiteEntry(BaseModel):
    """One evaluator in a suite."""

    model_config = ConfigDict(extra="forbid")

    evaluator: str
    params: dict[str, Any] = Field(default_factory=dict)
    threshold: float | None = Field(
        None, ge=0, le=1, description="Overrides the evaluator's own verdict: passed = value >= threshold."
    )
    thresholds: dict[str, float] = Field(default_factory=dict, description="Per task; 'default' for the rest.")
    tasks: list[str] | None = None
    advisory: bool = Field(False, description="Report the value but never pass or fail on it.")

    def threshold_for(self, task: str | None) -> float | None:
        """The threshold that applies to a sample of ``task`` (None: the evaluator's own verdict stands)."""
        if task is not None and task in self.thresholds:
            return self.thresholds[task]
        return self.thresholds.get("default", self.threshold)


class SuiteSpec(BaseModel):
    """A suite as written in YAML."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    evaluators: list[SuiteEntry]


@dataclass(frozen=True)
class _Unavailable:
    """Stands in for an evaluator that could not be built (a missing optional package): one error Score each."""

    name: str
    problem: MissingDependency
    version: str = "1"

    def score(self, sample: Sample) -> Score:
        return Score(
            self.name,
            0.0,
            passed=False,
            reason=f"evaluator unavailable: {self.problem}",
            evaluator_version=self.version,
            error=f"{type(self.problem).__name__}: {self.problem}",
        )


class Suite:
    """Evaluators plus thresholds, ready to score samples (vectorised per evaluator)."""

    def __init__(
        self, spec: SuiteSpec, registry: EvaluatorRegistry | None = None, *, where: Callable[[int], str] | None = None
    ) -> None:
        """``where(i)`` prefixes the error of entry ``i`` that cannot be built (``load_suite``: ``file:line: ``)."""
        registry = registry or EvaluatorRegistry()
        self.spec = spec
        self.entries: list[tuple[SuiteEntry, Evaluator]] = [
            (entry, _build(registry, entry, where(i) if where else "")) for i, entry in enumerate(spec.evaluators)
        ]

    @property
    def name(self) -> str:
        """The suite's name."""
        return self.spec.name

    def score(
        self, samples: Sequence[Sample], *, workers: int = 1, threads: int | None = DEFAULT_THREADS
    ) -> list[list[Score]]:
        """Scores per sample, in suite order. Evaluators run batched; ``workers`` > 1 runs them side by side.
        ``threads`` caps each native thread pool (BLAS, OpenMP, torch) while scoring; None leaves them alone."""
        results: list[list[Score]] = [[] for _ in samples]

        def run(item: tuple[SuiteEntry, Evaluator]) -> list[tuple[int, Score]]:
            entry, evaluator = item
            chosen = [i for i, s in enumerate(samples) if entry.tasks is None or s.task in entry.tasks]
            scores = safe_score_batch(evaluator, [samples[i] for i in chosen]) if chosen else []
            return [(i, _apply(entry, samples[i], score)) for i, score in zip(chosen, scores, strict=True)]

        with limit_threads(threads):
            if workers > 1:
                with ThreadPoolExecutor(workers) as pool:
                    outcomes = list(pool.map(run, self.entries))
            else:
                outcomes = [run(item) for item in self.entries]
        for outcome in outcomes:
            for index, score in outcome:
                results[index].append(score)
        return results


def _build(registry: EvaluatorRegistry, entry: SuiteEntry, where: str) -> Evaluator:
    try:
        return registry.create(entry.evaluator, **entry.params)
    except MissingDependency as exc:
        return _Unavailable(entry.evaluator, exc)
    except EvaluatorError as exc:
        if not where:
            raise
        raise type(exc)(f"{where}{exc}") from None


def _apply(entry: SuiteEntry, sample: Sample, score: Score) -> Score:
    if not score.applicable:
        return replace(score, passed=None, threshold=None)
    if entry.advisory:
        return replace(score, passed=None, threshold=None, reason=f"{score.reason} (advisory)".strip())
    threshold = entry.threshold_for(sample.task)
    if threshold is None or score.error is not None:
        return score
    return replace(score, threshold=threshold, passed=score.value >= threshold)


def load_suite(name_or_path: str | Path, registry: EvaluatorRegistry | None = None) -> Suite:
    """A built-in suite by name (``offline``, ``writing``, ...) or a YAML file. Every problem with the file is
    one :class:`~evaluators.errors.InvalidSuite` naming the file and the line."""
    from evaluators.suite_file import read_suite_file

    path = Path(name_or_path)
    builtin = BUILTIN_SUITES / f"{name_or_path}.yaml"
    if not path.suffix and builtin.is_file():
        path = builtin
    elif not path.suffix and not path.exists():
        known = sorted(p.stem for p in BUILTIN_SUITES.glob("*.yaml"))
        close = difflib.get_close_matches(str(name_or_path), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownEvaluator(
            f"unknown suite {str(name_or_path)!r}{hint}; built-in suites: {', '.join(known)} "
            f"(or give the path of a YAML file)"
        )
    spec, line_of = read_suite_file(path, SuiteSpec, SuiteEntry)
    return Suite(spec, registry, where=lambda i: f"{path}:{line_of(('evaluators', i)) or '?'}: ")
