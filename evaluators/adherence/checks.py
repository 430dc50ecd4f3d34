"""The check seam: a :class:`CheckSpec` names a checker and its parameters; :func:`bind` validates kwargs once and
gives a :class:`BoundCheck` that judges outputs strictly or leniently (IFEval's "loose" variants).

A checker is a plain function ``(text, args, sample) -> Verdict``; ``args`` are the validated, converted kwargs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from evaluators.base import Sample
from evaluators.errors import InvalidArguments, UnknownEvaluator

__all__ = [
    "BoundCheck",
    "CheckResult",
    "CheckSpec",
    "Checker",
    "Param",
    "Verdict",
    "bind",
    "loose_variants",
]


@dataclass(frozen=True)
class Verdict:
    """Whether one output follows one instruction, and why."""

    passed: bool
    reason: str = ""


Checker = Callable[[str, Mapping[str, Any], Sample | None], Verdict]


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Param:
    """One keyword argument of a check: its name, how to convert it, and whether it must be given."""

    name: str
    convert: Callable[[Any], Any] = _identity
    required: bool = True
    default: Any = None


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: its id, its checker, its parameters, and whether IFEval's loose variants apply."""

    id: str
    checker: Checker
    params: tuple[Param, ...] = ()
    lenient: bool = True
    description: str = ""
    validate: Callable[[Mapping[str, Any]], None] | None = None

    @property
    def expected(self) -> str:
        """The parameter list, for error messages."""
        names = [p.name if p.required else f"{p.name}?" for p in self.params]
        return f"{self.id}({', '.join(names)})"


@dataclass(frozen=True)
class CheckResult:
    """One check on one output: the strict and the loose verdict and the reason of the deciding one."""

    id: str
    strict: bool
    loose: bool | None
    reason: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self, mode: str = "strict") -> dict[str, Any]:
        """A JSON-ready dict; ``passed`` is the verdict under ``mode``."""
        passed = bool(self.loose) if mode == "loose" else self.strict
        return {"id": self.id, "passed": passed, "strict": self.strict, "loose": self.loose, "reason": self.reason}


def loose_variants(text: str) -> Iterator[str]:
    """IFEval's lenient readings of a response: first and/or last line dropped, asterisks removed (8 in all)."""
    yield text
    yield text.replace("*", "")
    lines = text.split("\n")
    trimmed = ("\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip())
    yield from trimmed
    for variant in trimmed:
        yield variant.replace("*", "")


@dataclass(frozen=True)
class BoundCheck:
    """A check with validated arguments, ready to judge outputs."""

    spec: CheckSpec
    args: Mapping[str, Any]

    @property
    def id(self) -> str:
        """The check's id."""
        return self.spec.id

    def strict(self, text: str, sample: Sample | None = None) -> Verdict:
        """The verdict on the output as it is; an empty output follows nothing."""
        if not text.strip():
            return Verdict(False, "empty output")
        return self.spec.checker(text, self.args, sample)

    def loose(self, text: str, sample: Sample | None = None) -> Verdict:
        """Passes when any of IFEval's lenient readings passes (only the strict reading if the check is not lenient)."""
        first = self.strict(text, sample)
        if first.passed or not self.spec.lenient:
            return first
        for variant in loose_variants(text):
            if variant.strip():
                verdict = self.spec.checker(variant, self.args, sample)
                if verdict.passed:
                    return Verdict(True, f"loose: {verdict.reason}")
        return first

    def evaluate(self, text: str, sample: Sample | None = None, *, need_loose: bool = True) -> CheckResult:
        """Both verdicts; the loose one is None when not asked for (and not implied by a strict pass)."""
        strict = self.strict(text, sample)
        if strict.passed or not need_loose:
            return CheckResult(self.id, strict.passed, True if strict.passed else None, strict.reason, self.args)
        loose = self.loose(text, sample)
        return CheckResult(self.id, False, loose.passed, loose.reason, self.args)


def _convert(spec: CheckSpec, param: Param, value: Any) -> Any:
    try:
        return param.convert(value)
    except (TypeError, ValueError, LookupError) as exc:
        raise InvalidArguments(
            f"{spec.id}: bad value {value!r} for {param.name} ({exc}); expected {spec.expected}"
        ) from exc


def bind(check_id: str, kwargs: Mapping[str, Any] | None, registry: Mapping[str, CheckSpec]) -> BoundCheck:
    """Validate ``kwargs`` for the check ``check_id`` (None-valued keys are ignored) and bind them."""
    spec = registry.get(check_id)
    if spec is None:
        raise UnknownEvaluator(f"unknown check {check_id!r}; valid ids: {', '.join(sorted(registry))}")
    given = {k: v for k, v in (kwargs or {}).items() if v is not None}
    names = {p.name for p in spec.params}
    unexpected = sorted(set(given) - names)
    missing = [p.name for p in spec.params if p.required and p.name not in given]
    if unexpected or missing:
        problems = [f"unexpected {unexpected}" if unexpected else "", f"missing {missing}" if missing else ""]
        raise InvalidArguments(f"{check_id}: {'; '.join(p for p in problems if p)}; expected {spec.expected}")
    args = {p.name: _convert(spec, p, given[p.name]) if p.name in given else p.default for p in spec.params}
    if spec.validate is not None:
        try:
            spec.validate(args)
        except ValueError as exc:
            raise InvalidArguments(f"{check_id}: {exc}; expected {spec.expected}") from exc
    return BoundCheck(spec, args)
