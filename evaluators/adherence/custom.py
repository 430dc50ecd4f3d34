"""aigc's own checks for a prompt's ``expect`` block; unlike IFEval's, they may read the sample's inputs and schema.

json_schema          {schema?}                       output is JSON (fences stripped) valid against the schema
reading_grade        {min?, max?, by_input?, tolerance?}   Flesch-Kincaid grade within bounds
max_chars            {limit} | {by_input, limits?}   at most N characters, possibly by platform
must_mention         {inputs: [names]}              every named input's value appears in the output
regex                {pattern, flags?, must_match?}  the output matches (or must not match) a pattern
keywords_from_input  {input}                        every keyword of a list input appears
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from evaluators.adherence.checks import CheckSpec, Param, Verdict
from evaluators.adherence.text import flesch_kincaid_grade, normalise
from evaluators.base import Sample
from evaluators.errors import InvalidArguments

__all__ = ["AIGC_CHECKS", "PLATFORM_LIMITS"]

Args = Mapping[str, Any]

PLATFORM_LIMITS: Mapping[str, int] = MappingProxyType(
    {"x": 280, "twitter": 280, "linkedin": 3000, "instagram": 2200, "facebook": 63206, "threads": 500}
)
"""Character limits of social platforms, used by ``max_chars`` when no ``limits`` are given."""

_FENCE = re.compile(r"^```[^\n]*\n?(.*?)\n?```$", re.DOTALL)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_FLAGS: Mapping[str, re.RegexFlag] = MappingProxyType(
    {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "a": re.ASCII}
)


def _input(sample: Sample | None, name: str, check: str) -> Any:
    if sample is None or name not in sample.inputs:
        raise InvalidArguments(f"{check}: the sample has no input named {name!r}")
    return sample.inputs[name]


def _values(value: Any) -> list[str]:
    """An input's value as strings to look for: list items, or the value itself."""
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    return [str(v) for v in items if v is not None and str(v).strip()]


# ---- json_schema -----------------------------------------------------------------------------------------------------


def strip_fences(text: str) -> str:
    """The text inside a Markdown code fence (```json ... ```), or the stripped text when there is none."""
    body = text.strip()
    fenced = _FENCE.match(body)
    return fenced.group(1).strip() if fenced else body


def _schema(value: Any) -> Mapping[str, Any]:
    from jsonschema.validators import validator_for

    if not isinstance(value, Mapping):
        raise TypeError("a schema is a mapping")
    validator_for(value).check_schema(value)
    return value


def _json_schema(text: str, args: Args, sample: Sample | None) -> Verdict:
    from jsonschema.validators import validator_for

    schema = args["schema"] or (sample.output_schema if sample is not None else None)
    if schema is None:
        raise InvalidArguments("json_schema: give a schema kwarg or a sample with output_schema")
    try:
        document = json.loads(strip_fences(text))
    except ValueError as exc:
        return Verdict(False, f"not JSON: {exc}")
    error = next(iter(validator_for(schema)(schema).iter_errors(document)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return Verdict(False, f"schema violation at {where}: {error.message}")
    return Verdict(True, "valid against the schema")


# ---- reading_grade ---------------------------------------------------------------------------------------------------


def _grade_of(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    found = _NUMBER.search(str(value))
    if found is None:
        raise InvalidArguments(f"reading_grade: no grade number in input value {value!r}")
    return float(found.group())


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("not a number")
    return float(value)


def _needs_bound(args: Args) -> None:
    if args["min"] is None and args["max"] is None and args["by_input"] is None:
        raise ValueError("give min, max or by_input")


def _reading_grade(text: str, args: Args, sample: Sample | None) -> Verdict:
    grade = flesch_kincaid_grade(text)
    if grade is None:
        return Verdict(False, "no words to grade")
    upper = args["max"]
    if args["by_input"] is not None:
        target = _grade_of(_input(sample, args["by_input"], "reading_grade")) + args["tolerance"]
        upper = target if upper is None else min(upper, target)
    low_ok = args["min"] is None or grade >= args["min"]
    high_ok = upper is None or grade <= upper
    return Verdict(low_ok and high_ok, f"Flesch-Kincaid grade {grade:.1f}; needs {args['min']}..{upper}")


# ---- max_chars, must_mention, regex, keywords_from_input -------------------------------------------------------


def _limits(value: Any) -> Mapping[str, int]:
    if not isinstance(value, Mapping):
        raise TypeError("limits is a mapping of platform to characters")
    return MappingProxyType({str(k).strip().lower(): int(v) for k, v in value.items()})


def _needs_limit(args: Args) -> None:
    if (args["limit"] is None) == (args["by_input"] is None):
        raise ValueError("give either limit or by_input")


def _max_chars(text: str, args: Args, sample: Sample | None) -> Verdict:
    limit, where = args["limit"], "limit"
    if limit is None:
        platform = str(_input(sample, args["by_input"], "max_chars")).strip().lower()
        limit, where = args["limits"].get(platform), f"{platform} limit"
        if limit is None:
            return Verdict(False, f"no character limit known for {platform!r}; known: {sorted(args['limits'])}")
    found = len(text.strip())
    return Verdict(found <= limit, f"{found} characters; {where} {limit}")


def _names(value: Any) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) for n in names):
        raise TypeError("a list of input names")
    return tuple(names)


def _absent(text: str, wanted: list[str]) -> list[str]:
    haystack = normalise(text)
    return [w for w in wanted if normalise(w) not in haystack]


def _must_mention(text: str, args: Args, sample: Sample | None) -> Verdict:
    wanted = [v for name in args["inputs"] for v in _values(_input(sample, name, "must_mention"))]
    missing = _absent(text, wanted)
    return Verdict(not missing, f"does not mention {missing}" if missing else "mentions every input")


def _keywords_from_input(text: str, args: Args, sample: Sample | None) -> Verdict:
    value = _input(sample, args["input"], "keywords_from_input")
    keywords = [k.strip() for k in value.split(",")] if isinstance(value, str) else _values(value)
    missing = _absent(text, [k for k in keywords if k])
    return Verdict(not missing, f"missing keywords {missing}" if missing else "every keyword appears")


def _flags(value: Any) -> re.RegexFlag:
    if isinstance(value, int):
        return re.RegexFlag(value)
    names = list(value)
    flags = re.RegexFlag(0)
    for name in names:
        flags |= _FLAGS[name.lower()] if len(name) == 1 else re.RegexFlag[name.upper()]
    return flags


def _compile(args: Args) -> None:
    try:
        re.compile(args["pattern"], args["flags"])
    except re.error as exc:
        raise ValueError(f"bad pattern: {exc}") from exc


def _regex(text: str, args: Args, sample: Sample | None) -> Verdict:
    found = re.search(args["pattern"], text, args["flags"]) is not None
    wanted = args["must_match"]
    return Verdict(found == wanted, f"pattern {'found' if found else 'not found'}; must_match={wanted}")


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("true or false")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


_SPECS = (
    CheckSpec(
        "json_schema",
        _json_schema,
        (Param("schema", _schema, required=False),),
        description="output is JSON valid against the schema",
    ),
    CheckSpec(
        "reading_grade",
        _reading_grade,
        (
            Param("min", _float, required=False),
            Param("max", _float, required=False),
            Param("by_input", _str, required=False),
            Param("tolerance", _float, required=False, default=1.0),
        ),
        lenient=False,
        validate=_needs_bound,
        description="Flesch-Kincaid grade within bounds",
    ),
    CheckSpec(
        "max_chars",
        _max_chars,
        (
            Param("limit", int, required=False),
            Param("by_input", _str, required=False),
            Param("limits", _limits, required=False, default=PLATFORM_LIMITS),
        ),
        lenient=False,
        validate=_needs_limit,
        description="at most N characters",
    ),
    CheckSpec("must_mention", _must_mention, (Param("inputs", _names),), lenient=False),
    CheckSpec(
        "regex",
        _regex,
        (
            Param("pattern", _str),
            Param("flags", _flags, required=False, default=re.RegexFlag(0)),
            Param("must_match", _bool, required=False, default=True),
        ),
        lenient=False,
        validate=_compile,
    ),
    CheckSpec("keywords_from_input", _keywords_from_input, (Param("input", _str),), lenient=False),
)

AIGC_CHECKS: Mapping[str, CheckSpec] = MappingProxyType({spec.id: spec for spec in _SPECS})
"""aigc's own checks by id."""
