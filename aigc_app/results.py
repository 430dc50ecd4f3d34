"""The values an eval run produces: what the runner returns, the store keeps, and reports and comparisons read.

    results = store.load_run("r-20261201-abc123")
    for case in results.cases:                      # one row per prompt version x model x case x repeat
        print(case.variant, case.case_id, case.passed, [s.evaluator for s in case.scores])

Plain frozen dataclasses with no behaviour beyond derived figures: the store, the runner, the reports and
``aigc compare`` agree on these and on nothing else. Keys are content-addressed (:func:`generation_key`,
:func:`score_key`), so the same request always has the same key wherever and whenever it ran.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CaseResult",
    "RunInfo",
    "RunResults",
    "RunStatus",
    "ScoreRow",
    "generation_key",
    "score_key",
]

RunStatus = Literal["running", "finished", "interrupted", "failed"]


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def generation_key(
    prompt_hash: str,
    messages: Sequence[Mapping[str, Any]],
    model: str,
    params: Mapping[str, Any],
    seed: int | None,
    sample_index: int,
) -> str:
    """sha256 of everything that determines one generation: the prompt's content hash, the rendered messages
    (``[{"role": ..., "content": ...}]``), the model id, the generation parameters (None values dropped), the seed
    and the sample (repeat) index."""
    return _digest(
        {
            "prompt_hash": prompt_hash,
            "messages": [dict(m) for m in messages],
            "model": model,
            "params": {k: v for k, v in sorted(params.items()) if v is not None},
            "seed": seed,
            "sample_index": sample_index,
        }
    )


def score_key(
    generation: str, evaluator: str, evaluator_version: str, config: Mapping[str, Any] | None = None, rescore: int = 0
) -> str:
    """sha256 of one score: the generation's key, the evaluator's name and version, its configuration (params and
    threshold as the suite sets them) and the rescore index (``rescore: K`` scores one output K times)."""
    return _digest(
        {
            "generation": generation,
            "evaluator": evaluator,
            "version": evaluator_version,
            "config": dict(config or {}),
            "rescore": rescore,
        }
    )


@dataclass(frozen=True)
class ScoreRow:
    """One evaluator's score of one generation (``rescore`` > 0: the same output scored again)."""

    evaluator: str
    evaluator_version: str
    value: float
    passed: bool | None
    threshold: float | None = None
    reason: str = ""
    error: str | None = None
    applicable: bool = True
    advisory: bool = False
    rescore: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)
    key: str = ""

    @property
    def gating(self) -> bool:
        """Whether this score takes part in a verdict: applicable, not advisory, with a pass/fail."""
        return self.applicable and not self.advisory and self.passed is not None


@dataclass(frozen=True)
class CaseResult:
    """One generation of one case by one prompt version and one model, with every score of it."""

    run_id: str
    case_id: str
    prompt_name: str
    prompt_version: str
    prompt_hash: str
    model: str
    sample_index: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    messages: Sequence[Mapping[str, Any]] = ()
    reference: str | None = None
    tags: Sequence[str] = ()
    output: str = ""
    error: str | None = None
    latency_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    cached: bool = False
    backend: str | None = None
    scores: Sequence[ScoreRow] = ()
    key: str = ""
    created_at: float = 0.0

    @property
    def prompt_ref(self) -> str:
        """``name@version``."""
        return f"{self.prompt_name}@{self.prompt_version}"

    @property
    def variant(self) -> str:
        """What a comparison groups by within one run: ``prompt@version | model``."""
        return f"{self.prompt_ref} | {self.model}"

    def score(self, evaluator: str, rescore: int = 0) -> ScoreRow | None:
        """The named evaluator's score (the first scoring when ``rescore`` is 0)."""
        return next((s for s in self.scores if s.evaluator == evaluator and s.rescore == rescore), None)

    @property
    def passed(self) -> bool:
        """No generation error and every gating score of the first scoring passed."""
        return self.error is None and all(s.passed for s in self.scores if s.rescore == 0 and s.gating)


@dataclass(frozen=True)
class RunInfo:
    """One eval run: what it was asked to do and how far it got."""

    run_id: str
    suite: str
    status: RunStatus
    started_at: float
    finished_at: float | None = None
    suite_hash: str = ""
    suite_path: str | None = None
    prompts: Sequence[str] = ()
    models: Sequence[str] = ()
    evaluators: Sequence[str] = ()
    planned: int = 0
    done: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    options: Mapping[str, Any] = field(default_factory=dict)
    notes: Sequence[str] = ()

    @property
    def resume_command(self) -> str:
        """The command that completes this run."""
        return f"aigc eval {self.suite_path or self.suite} --resume {self.run_id}"


@dataclass(frozen=True)
class RunResults:
    """A run and its cases, in a stable order (case id, prompt version, model, repeat)."""

    info: RunInfo
    cases: Sequence[CaseResult]

    @property
    def variants(self) -> list[str]:
        """The distinct ``prompt@version | model`` groups, in first-seen order."""
        return list(dict.fromkeys(c.variant for c in self.cases))

    @property
    def evaluator_names(self) -> list[str]:
        """Every evaluator that scored some case, in first-seen order."""
        return list(dict.fromkeys(s.evaluator for c in self.cases for s in c.scores))

    def of_variant(self, variant: str) -> list[CaseResult]:
        """The cases of one ``prompt@version | model`` group."""
        return [c for c in self.cases if c.variant == variant]
