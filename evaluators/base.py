"""The evaluator interface: a stateless scorer turns a :class:`Sample` into a :class:`Score` value.

    class MyEvaluator:
        name = "my_check"
        version = "1"
        def score(self, sample: Sample) -> Score: ...
        # optional, for vectorised scorers (one model call for many samples):
        def score_batch(self, samples: Sequence[Sample]) -> list[Score]: ...

Evaluators are thread-safe and keep no per-sample state. A failure inside one becomes a Score carrying the error
(:func:`safe_score`), never a crashed run.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from evaluators.errors import MissingDependency, missing_dependency

__all__ = [
    "BatchEvaluator",
    "Evaluator",
    "Sample",
    "Score",
    "as_text",
    "error_score",
    "safe_score",
    "safe_score_batch",
]


def as_text(output: str | bytes | None) -> str:
    """Model output as text: bytes that are not UTF-8 are decoded with U+FFFD replacements, None is empty."""
    if output is None:
        return ""
    if isinstance(output, bytes):
        return output.decode("utf-8", errors="replace")
    return str(output)


@dataclass(frozen=True)
class Sample:
    """One thing to score: the output and everything known about how it was produced."""

    output: str
    prompt_ref: str | None = None
    prompt_hash: str | None = None
    task: str | None = None
    messages: Sequence[Mapping[str, str]] = ()
    inputs: Mapping[str, Any] = field(default_factory=dict)
    expect: Sequence[Mapping[str, Any]] = ()
    output_schema: Mapping[str, Any] | None = None
    reference: str | None = None
    context: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.output, str):
            object.__setattr__(self, "output", as_text(self.output))

    @property
    def prompt_text(self) -> str:
        """The user-visible brief: the text of the rendered user messages."""
        return "\n\n".join(m["content"] for m in self.messages if m.get("role") == "user")

    @classmethod
    def from_prompt(cls, prompt: Any, inputs: Mapping[str, Any], output: str | bytes, **extra: Any) -> Sample:
        """A sample for an output of a ``prompts.Prompt`` rendered with ``inputs``."""
        messages = [m.to_dict() for m in prompt.render(**inputs)]
        return cls(
            output=as_text(output),
            prompt_ref=prompt.ref,
            prompt_hash=prompt.hash,
            task=prompt.meta.task,
            messages=messages,
            inputs=dict(prompt.validate_inputs(inputs)),
            expect=[{"check": e.check, **e.kwargs} for e in prompt.meta.expect],
            output_schema=prompt.meta.output.schema_,
            **extra,
        )


@dataclass(frozen=True)
class Score:
    """The result of one evaluator on one sample. ``value`` is 0..1, higher is better.

    ``passed`` is None when there is no verdict: an advisory figure, no threshold, or a check that does not apply
    to this sample (``applicable=False``, e.g. diversity of a single text; its value then means nothing). Build the
    last with :meth:`not_applicable`.
    """

    name: str
    value: float
    passed: bool | None = None
    threshold: float | None = None
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    evaluator_version: str = "1"
    error: str | None = None
    applicable: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"score {self.name}: value {self.value} is outside 0..1")
        if not self.applicable and self.passed is not None:
            raise ValueError(f"score {self.name}: a check that does not apply can neither pass nor fail")

    @classmethod
    def not_applicable(cls, name: str, reason: str, evaluator_version: str = "1", **details: Any) -> Score:
        """The Score of a check that does not apply to the sample: neither passed nor failed."""
        return cls(name, 0.0, None, None, f"not applicable: {reason}", details, evaluator_version, applicable=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "value": self.value,
            "passed": self.passed,
            "threshold": self.threshold,
            "reason": self.reason,
            "details": dict(self.details),
            "evaluator_version": self.evaluator_version,
            "error": self.error,
            "applicable": self.applicable,
        }


@runtime_checkable
class Evaluator(Protocol):
    """Scores one sample."""

    name: str
    version: str

    def score(self, sample: Sample) -> Score: ...


@runtime_checkable
class BatchEvaluator(Evaluator, Protocol):
    """Also scores many samples at once (one model call for a batch)."""

    def score_batch(self, samples: Sequence[Sample]) -> list[Score]: ...


def error_score(evaluator: Evaluator, exc: BaseException) -> Score:
    """The Score that records a failure inside an evaluator (a missing package names the extra to install)."""
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    if isinstance(exc, ImportError) and not isinstance(exc, MissingDependency) and exc.name:
        exc = missing_dependency(evaluator.name, exc)
    origin = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
    return Score(
        name=evaluator.name,
        value=0.0,
        passed=False,
        reason=f"evaluator failed: {exc}",
        evaluator_version=getattr(evaluator, "version", "1"),
        error=f"{type(exc).__name__}: {exc}{origin}",
    )


def safe_score(evaluator: Evaluator, sample: Sample) -> Score:
    """``evaluator.score(sample)``, with any exception turned into an error Score."""
    try:
        return evaluator.score(sample)
    except Exception as exc:
        return error_score(evaluator, exc)


def safe_score_batch(evaluator: Evaluator, samples: Sequence[Sample]) -> list[Score]:
    """Vectorised when the evaluator can; a failing batch falls back to one sample at a time."""
    if isinstance(evaluator, BatchEvaluator):
        try:
            return list(evaluator.score_batch(samples))
        except Exception:
            pass
    return [safe_score(evaluator, s) for s in samples]
