"""Reading a suite's YAML file: every problem becomes one :class:`InvalidSuite` naming the file and the line.

    spec, line_of = read_suite_file(Path("my_suite.yaml"))
    line_of(("evaluators", 2))      # the line where the third entry starts

Unknown keys name the allowed ones and the nearest match (``evaluatr`` -> ``evaluator``); pydantic's own text
(with its documentation URL) never reaches the user.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from evaluators.errors import InvalidSuite
from prompts.files import NotUtf8, decode_utf8

__all__ = ["LineOf", "read_suite_file"]

LineOf = Callable[[Sequence[str | int]], int | None]
"""The 1-based line of a location such as ``("evaluators", 0, "threshold")``, or None when it is not in the file."""


def read_suite_file(
    path: Path,
    spec_model: type[BaseModel],
    entry_model: type[BaseModel],
    sections: Mapping[str, type[BaseModel]] | None = None,
) -> tuple[Any, LineOf]:
    """The validated suite in ``path`` and a function from locations to lines. ``sections`` names the model of other
    keys (``{"cases": CaseEntry}``: items of a list, or a mapping's keys), so their typos get near names too."""
    text = _read(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise InvalidSuite(f"{path}{line}: invalid suite definition: malformed YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:  # ReaderError: a control character or a byte YAML does not allow
        raise InvalidSuite(f"{path}: invalid suite definition: not readable as YAML ({exc})") from None

    def line_of(loc: Sequence[str | int]) -> int | None:
        return _line(root, loc)

    if not isinstance(data, dict):
        raise InvalidSuite(
            f"{path}:{line_of(()) or 1}: invalid suite definition: expected a mapping with 'name' and 'evaluators' "
            f"(e.g. name: my_suite / evaluators: [{{evaluator: toxicity}}])"
        )
    try:
        return spec_model.model_validate(data), line_of
    except ValidationError as exc:
        models = {0: spec_model, 2: entry_model}  # location depth of a key -> the model that owns it
        raise InvalidSuite(_describe(path, exc.errors(), line_of, models, sections or {})) from None


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidSuite(
            f"suite file {path} not found: give the path of a YAML suite file or a built-in suite name"
        ) from None
    except IsADirectoryError:
        raise InvalidSuite(f"{path} is a folder, not a suite file: give the path of a YAML suite file") from None
    except OSError as exc:
        raise InvalidSuite(f"suite file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        return decode_utf8(raw)
    except NotUtf8 as exc:
        raise InvalidSuite(
            f"{path}:{exc.line}: not a text suite file (byte 0x{exc.byte:02x} at offset {exc.offset} is not UTF-8); "
            f"a suite is a YAML file saved as UTF-8"
        ) from None


def _line(root: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                return line
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _where(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the suite"


def _owner(
    loc: tuple[Any, ...], models: dict[int, type[BaseModel]], sections: Mapping[str, type[BaseModel]]
) -> type[BaseModel] | None:
    """The model owning the key at ``loc``: a named section (``cases[0].idd``, ``params.temprature``), else by depth."""
    if loc and str(loc[0]) in sections and len(loc) in (2, 3):
        return sections[str(loc[0])] if len(loc) == 2 or isinstance(loc[1], int) else None
    return models.get(len(loc) - 1)


def _describe(
    path: Path,
    errors: Sequence[Any],
    line_of: LineOf,
    models: dict[int, type[BaseModel]],
    sections: Mapping[str, type[BaseModel]] | None = None,
) -> str:
    unknown = {tuple(e["loc"][:-1]): e for e in errors if e["type"] == "extra_forbidden"}
    problems: list[tuple[int, str]] = []
    for error in errors:
        loc, kind = tuple(error["loc"]), error["type"]
        model = _owner(loc, models, sections or {})
        if kind == "missing" and loc[:-1] in unknown and model is not None:
            typo = str(unknown[loc[:-1]]["loc"][-1])
            if difflib.get_close_matches(typo, [str(loc[-1])], n=1):
                continue  # reported as the unknown key with this suggestion
        line = line_of(loc) or 1
        if kind == "extra_forbidden" and model is not None:
            allowed = sorted(model.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            text = f"unknown key {loc[-1]!r} in {_where(loc[:-1])}{hint} (allowed keys: {', '.join(allowed)})"
        else:
            text = f"{_where(loc)}: {error['msg']}"
        problems.append((line, text))
    problems.sort()
    if len(problems) == 1:
        return f"{path}:{problems[0][0]}: invalid suite definition: {problems[0][1]}"
    listed = "\n".join(f"  {path}:{line}: {text}" for line, text in problems)
    return f"{path}: invalid suite definition ({len(problems)} problems):\n{listed}"
