"""Cases of a suite: written inline, or read from JSONL and CSV files, each remembering the file and line it came from.

    cases.jsonl    {"id": "trail", "vars": {"product_name": "Aurora"}, "tags": ["outdoor"]}
                   {"product_name": "Aurora", "audience": "runners"}        # flat: every other key is a variable
    cases.csv      id,product_name,audience,tags,reference                 # tags: ';'-separated; expect: JSON

A row without an id gets ``<file stem>-<row>``. Ids must be unique across the suite.
"""

from __future__ import annotations

import csv
import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aigc_app.runner.errors import SuiteError
from aigc_app.runner.spec import CaseEntry, EvalSuite

__all__ = ["Case", "filter_cases", "resolve_cases"]

_RESERVED = ("id", "reference", "context", "expect", "tags")


@dataclass(frozen=True)
class Case:
    """One case, ready to render: its variables and where it was written (``file:line``)."""

    id: str
    vars: Mapping[str, Any]
    origin: str
    reference: str | None = None
    context: str | None = None
    expect: Sequence[Mapping[str, Any]] = ()
    tags: Sequence[str] = field(default_factory=tuple)


def resolve_cases(suite: EvalSuite) -> list[Case]:
    """Every case of the suite, in order; duplicate ids are an error naming both places."""
    cases: list[Case] = []
    for index, entry in enumerate(suite.cases):
        if entry.file is None:
            cases.append(_case(entry, entry.id or f"case-{index + 1}", suite.where("cases", index)))
        else:
            cases.extend(_read_file(suite, index, entry.file))
    seen: dict[str, Case] = {}
    for case in cases:
        if case.id in seen:
            raise SuiteError(
                f"{case.origin}: case id {case.id!r} is used twice (first at {seen[case.id].origin}); "
                f"ids must be unique"
            )
        seen[case.id] = case
    return cases


def filter_cases(cases: Iterable[Case], patterns: Sequence[str]) -> list[Case]:
    """The cases whose id matches a glob, or whose tags include NAME for ``tag:NAME``; no patterns keeps all."""
    if not patterns:
        return list(cases)

    def wanted(case: Case) -> bool:
        for pattern in patterns:
            if pattern.startswith("tag:"):
                if pattern.removeprefix("tag:") in case.tags:
                    return True
            elif fnmatch.fnmatchcase(case.id, pattern):
                return True
        return False

    return [c for c in cases if wanted(c)]


def _case(entry: CaseEntry, case_id: str, origin: str) -> Case:
    return Case(
        id=case_id,
        vars=dict(entry.vars),
        origin=origin,
        reference=entry.reference,
        context=entry.context,
        expect=tuple(entry.expect),
        tags=tuple(entry.tags),
    )


def _read_file(suite: EvalSuite, index: int, name: str) -> list[Case]:
    path = (suite.base_dir / name).resolve()
    where = suite.where("cases", index, "file")
    if not path.is_file():
        raise SuiteError(f"{where}: case file {name} not found (looked for {path}; paths are relative to the suite)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{where}: case file {path} cannot be read as UTF-8 text: {exc}") from None
    if path.suffix == ".jsonl":
        rows = _jsonl_rows(path, text)
    elif path.suffix == ".csv":
        rows = _csv_rows(path, text)
    else:
        raise SuiteError(f"{where}: case file {name} must end in .jsonl or .csv")
    return [_row_case(path, line, number, row) for number, (line, row) in enumerate(rows, start=1)]


def _jsonl_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"{path}:{line}: not a JSON object: {exc.msg} (column {exc.colno})") from None
        if not isinstance(row, dict):
            raise SuiteError(f"{path}:{line}: each line must be a JSON object, not {type(row).__name__}")
        rows.append((line, row))
    return rows


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    rows = []
    for row in reader:
        values: dict[str, Any] = {k.strip(): v for k, v in row.items() if k is not None and v not in (None, "")}
        if "tags" in values:
            values["tags"] = [t.strip() for t in values["tags"].replace(",", ";").split(";") if t.strip()]
        if "expect" in values:
            try:
                values["expect"] = json.loads(values["expect"])
            except json.JSONDecodeError as exc:
                raise SuiteError(f"{path}:{reader.line_num}: column expect: not JSON: {exc.msg}") from None
        rows.append((reader.line_num, values))
    return rows


def _row_case(path: Path, line: int, number: int, row: dict[str, Any]) -> Case:
    if "vars" not in row:  # flat: every key that is not a case field is a variable
        fields = {k: v for k, v in row.items() if k in _RESERVED}
        row = {**fields, "vars": {k: v for k, v in row.items() if k not in _RESERVED}}
    try:
        entry = CaseEntry.model_validate(row)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = ".".join(str(p) for p in error["loc"]) or "row"
            text = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                close = [k for k in CaseEntry.model_fields if k != "file"]
                text = f"unknown key (allowed: {', '.join(close)})"
            problems.append(f"{loc}: {text}")
        raise SuiteError(f"{path}:{line}: invalid case: {'; '.join(problems)}") from None
    if entry.file is not None:
        raise SuiteError(f"{path}:{line}: a case file cannot include another file")
    return _case(entry, entry.id or f"{path.stem}-{number}", f"{path}:{line}")
