"""The JSON report: the whole run as stable JSON (``schema_version`` 1), and reading it back into RunResults."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from aigc_app.results import CaseResult, RunInfo, RunResults, ScoreRow

__all__ = ["SCHEMA_VERSION", "from_dict", "render_json", "to_dict"]

SCHEMA_VERSION = 1


_PLAIN = frozenset({str, int, bool, type(None)})


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become null, tuples lists, unknown objects their str."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is list or kind is tuple:
        return [_clean(v) for v in value]
    if kind is dict or isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str | int):  # str and int subclasses (enums): their plain value
        return str(value) if isinstance(value, str) else int(value)
    return str(value)


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: _clean(getattr(obj, f.name)) for f in fields(obj)}


def _case(case: CaseResult) -> dict[str, Any]:
    data = _fields(case)
    data["scores"] = [_fields(s) for s in case.scores]
    data["variant"] = case.variant
    data["passed"] = case.passed
    return data


def to_dict(results: RunResults) -> dict[str, Any]:
    """The run as plain data: ``schema_version``, ``info`` (RunInfo's fields) and ``cases`` (CaseResult's fields,
    plus the derived ``variant`` and ``passed``)."""
    return {"schema_version": SCHEMA_VERSION, "info": _fields(results.info), "cases": [_case(c) for c in results.cases]}


def render_json(results: RunResults, *, indent: int | None = None) -> str:
    """:func:`to_dict` as JSON text (UTF-8 kept as is, NaN never written)."""
    return json.dumps(to_dict(results), indent=indent, ensure_ascii=False, allow_nan=False) + "\n"


def _build(cls: type, data: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def from_dict(data: Mapping[str, Any]) -> RunResults:
    """RunResults from :func:`to_dict`'s output (a JSON report read back); raises ValueError on another schema."""
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"not an aigc JSON report of schema {SCHEMA_VERSION} (schema_version: {version!r})")
    info = _build(RunInfo, {**data["info"], **_tuples(data["info"], ("prompts", "models", "evaluators", "notes"))})
    cases = []
    for raw in data["cases"]:
        scores = tuple(_build(ScoreRow, {**s, "value": _float(s.get("value"))}) for s in raw.get("scores", ()))
        extra = _tuples(raw, ("tags",))
        messages = tuple(raw.get("messages", ()))
        cases.append(_build(CaseResult, {**raw, **extra, "messages": messages, "scores": scores}))
    return RunResults(info=info, cases=cases)


def _tuples(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, tuple]:
    return {k: tuple(data[k]) for k in keys if k in data}


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
