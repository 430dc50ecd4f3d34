"""Split a prompt version file into YAML front matter and a Jinja body, with file line numbers in errors."""

from __future__ import annotations

import difflib
from typing import Any, NamedTuple

import yaml
from pydantic import ValidationError

from prompts.errors import InvalidTemplate
from prompts.schema import InputSpec, ModelDefaults, OutputSpec, PromptMeta

__all__ = ["ParsedFile", "parse_prompt_file"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FENCE = "---"


class ParsedFile(NamedTuple):
    """A version file split in two; ``body_line`` is the file line where the body starts (1-based)."""

    meta: PromptMeta
    body: str
    body_line: int


def parse_prompt_file(text: str, path: str) -> ParsedFile:
    """Parse and validate a version file; raise InvalidTemplate naming ``path`` and the line."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != _FENCE:
        raise InvalidTemplate("the file must start with a '---' line opening the YAML front matter", path=path, line=1)
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == _FENCE), None)
    if end is None:
        raise InvalidTemplate("the front matter is not closed: add a '---' line after it", path=path, line=1)
    yaml_text = "".join(lines[1:end])
    data = _load_yaml(yaml_text, path)
    meta = _validate(data, yaml_text, path)
    return ParsedFile(meta, "".join(lines[end + 1 :]), end + 2)


def _load_yaml(yaml_text: str, path: str) -> dict[str, Any]:
    try:
        data = yaml.load(yaml_text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 2 if mark else 1
        raise InvalidTemplate(f"malformed YAML front matter: {exc.problem or exc}", path=path, line=line) from None
    if not isinstance(data, dict):
        raise InvalidTemplate("the front matter must be a YAML mapping of keys to values", path=path, line=2)
    return data


def _validate(data: dict[str, Any], yaml_text: str, path: str) -> PromptMeta:
    try:
        return PromptMeta.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a typo explains the rest
        first = errors[0]
        loc = [str(part) for part in first["loc"]]
        where = ".".join(loc) or "front matter"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            near = difflib.get_close_matches(loc[-1], allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            message = f"unknown key {loc[-1]!r}{hint}; allowed here: {', '.join(allowed)}"
        elif first["type"] == "missing":
            message = "this key is required"
        elif first["type"] == "string_type" and isinstance(first.get("input"), int | float | bool):
            example = "1.0.0" if loc == ["version"] else first["input"]
            message += f' (YAML read {first["input"]!r} as a number: quote it, e.g. {loc[-1]}: "{example}")'
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        line = _line_of(yaml_text, loc)
        raise InvalidTemplate(f"front matter {where}: {message}{more}", path=path, line=line) from None


def _allowed_keys(parent: list[str]) -> list[str]:
    models = {(): PromptMeta, ("model",): ModelDefaults, ("output",): OutputSpec}
    model = models.get(tuple(parent), InputSpec if parent[:1] == ["inputs"] else PromptMeta)
    return [field.alias or name for name, field in model.model_fields.items()]


def _line_of(yaml_text: str, loc: list[str]) -> int:
    """File line of the deepest key in ``loc`` that exists in the YAML (front matter starts on line 2)."""
    try:
        node = yaml.compose(yaml_text, Loader=_Loader)
    except yaml.YAMLError:
        return 2
    line = node.start_mark.line if node is not None else 0
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            match = (node.value[int(key)], node.value[int(key)])
        else:
            match = None
        if match is None:
            break
        line, node = match[0].start_mark.line, match[1]
    return line + 2
