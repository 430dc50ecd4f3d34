"""Size estimates made before an operation runs, so that nothing allocates past the output limit first.

Each estimator gets the operation's arguments and returns an upper bound of the characters (or items) its
result would hold; the sandbox refuses the operation when the bound passes the limit. Operations without an
estimator have results bounded by their inputs, and are charged after they run.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from typing import Any

from jinja2.sandbox import SecurityError
from jinja2.utils import Namespace

from prompts.budget import deep_chars

__all__ = [
    "FILTER_ESTIMATES",
    "STR_METHOD_ESTIMATES",
    "brace_size",
    "check_brace_format",
    "check_printf",
    "estimate_chars",
    "printf_size",
]


def estimate_chars(value: Any, limit: int) -> int:
    """``len(str(value))`` at most, without building the string (namespaces print their attributes)."""
    if type(value) is str:
        return len(value)
    if isinstance(value, Namespace):
        value = dict(object.__getattribute__(value, "_Namespace__attrs"))
    if isinstance(value, str):
        return len(value)
    return deep_chars(value, limit)


def _width(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else len(str(value))


def _indent(limit: int, s: Any = "", width: Any = 4, *_: Any, **__: Any) -> int:
    text = str(s) if isinstance(s, str) else ""
    size = estimate_chars(s, limit)
    return size + (text.count("\n") + 1) * _width(width)


def _replace(limit: int, s: Any = "", old: Any = "", new: Any = "", count: Any = None, *_: Any, **__: Any) -> int:
    size = estimate_chars(s, limit)
    if not isinstance(s, str) or not isinstance(old, str):
        return size + estimate_chars(new, limit)
    hits = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and 0 <= count < hits:
        hits = count
    return size + hits * max(0, estimate_chars(new, limit) - len(old))


def _join(limit: int, value: Any = (), d: Any = "", attribute: Any = None, *_: Any, **__: Any) -> int:
    if isinstance(value, list | tuple):
        items: Any = value
    elif isinstance(value, str | Mapping | set | frozenset):
        items = list(value)
    else:
        return estimate_chars(value, limit)  # the sandbox turns iterators into lists before estimating
    separator = estimate_chars(d, limit)
    total = separator * max(0, len(items) - 1)
    for item in items:
        total += estimate_chars(item, limit)
        if total > limit:
            break
    return total


def _whole(limit: int, value: Any = "", *_: Any, **__: Any) -> int:
    return estimate_chars(value, limit)


def _pad(limit: int, value: Any = "", width: Any = 80, *_: Any, **__: Any) -> int:
    return max(estimate_chars(value, limit), _width(width))


def _wordwrap(limit: int, s: Any = "", width: Any = 79, _b: Any = True, wrapstring: Any = None, **kw: Any) -> int:
    size = estimate_chars(s, limit)
    text = s if isinstance(s, str) else ""
    wrap = kw.get("wrapstring", wrapstring)
    breaks = size // max(1, _width(width)) + text.count(" ") + text.count("\n") + 1
    return size + breaks * (len(wrap) if isinstance(wrap, str) else 2)


def _format(limit: int, value: Any = "", *args: Any, **kwargs: Any) -> int:
    if not isinstance(value, str):
        return estimate_chars(value, limit)
    return printf_size(value, kwargs or args, limit)


def _sum(limit: int, value: Any = (), attribute: Any = None, start: Any = 0, **kw: Any) -> int:
    start = kw.get("start", start)
    if isinstance(start, int | float) and not isinstance(start, bool):
        return 0  # numbers: bounded by the int-size check of each addition
    raise SecurityError("sum() adds numbers; to join lists or strings in a template use |join or ~")


def _tojson(limit: int, value: Any = "", indent: Any = None, **kw: Any) -> int:
    indent = kw.get("indent", indent)
    width = 0 if indent is None else _width(indent)
    return 6 * estimate_chars(value, limit) * (1 + width)


# Filters whose result can be much larger than their arguments; the rest are charged after they run.
FILTER_ESTIMATES: dict[str, Callable[..., int]] = {
    "center": _pad,
    "format": _format,
    "indent": _indent,
    "join": _join,
    "replace": _replace,
    "string": _whole,
    "sum": _sum,
    "tojson": _tojson,
    "wordwrap": _wordwrap,
    "xmlattr": lambda limit, value="", *_, **__: 6 * estimate_chars(value, limit),
    "urlencode": lambda limit, value="", *_, **__: 3 * estimate_chars(value, limit),
    "urlize": lambda limit, value="", *_, **__: 3 * estimate_chars(value, limit),
    "e": lambda limit, value="", *_, **__: 6 * estimate_chars(value, limit),
    "escape": lambda limit, value="", *_, **__: 6 * estimate_chars(value, limit),
    "forceescape": lambda limit, value="", *_, **__: 6 * estimate_chars(value, limit),
}


def _expandtabs(limit: int, s: str, tabsize: Any = 8, **kw: Any) -> int:
    tabsize = kw.get("tabsize", tabsize)
    return len(s) + s.count("\t") * max(0, _width(tabsize))


def _translate(limit: int, s: str, table: Any = None, *_: Any) -> int:
    longest = max((estimate_chars(v, limit) for v in table.values()), default=1) if isinstance(table, dict) else 1
    return len(s) * max(1, longest)


def _method_pad(limit: int, s: str, width: Any = 0, *_: Any, **__: Any) -> int:
    return max(len(s), _width(width))


# str methods that can expand their subject: the sandbox refuses a call whose estimate passes the limit.
STR_METHOD_ESTIMATES: dict[str, Callable[..., int]] = {
    "center": _method_pad,
    "ljust": _method_pad,
    "rjust": _method_pad,
    "zfill": _method_pad,
    "expandtabs": _expandtabs,
    "replace": lambda limit, s, old="", new="", count=-1, *_: _replace(limit, s, old, new, count),
    "join": lambda limit, s, items=(), *_: _join(limit, items, s),
    "translate": _translate,
}

# printf conversions: %[(key)][flags][width][.precision][length]type
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def printf_size(template: str, args: Any, limit: int) -> int:
    """At most the length of ``template % args``: every field may print the largest argument, or its width."""
    widths = check_printf(template, limit)
    fields = sum(1 for m in _PRINTF.finditer(template) if not m.group(0).endswith("%"))
    return len(template) + widths + fields * _largest(args, limit)


def brace_size(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], limit: int) -> int:
    """At most the length of ``template.format(*args, **kwargs)``, the same way."""
    widths = check_brace_format(template, limit)
    fields = sum(1 for _, name, _, _ in string.Formatter().parse(template) if name is not None)
    return len(template) + widths + fields * _largest((*args, *kwargs.values()), limit)


def _largest(args: Any, limit: int) -> int:
    if isinstance(args, Mapping):
        args = list(args.values())
    elif not isinstance(args, tuple | list):
        args = [args]
    return max((estimate_chars(a, limit) for a in args), default=0)


def check_printf(template: str, limit: int) -> int:
    """Refuse printf-style widths or precisions (``*`` included) past ``limit``; return their total."""
    total = 0
    for match in _PRINTF.finditer(template):
        for part in match.groups():
            if part == "*":
                raise SecurityError(f"format field {match.group(0)!r} takes its width from an argument; write it out")
            if part:
                total += int(part)
        if total > limit:
            raise SecurityError(f"format field {match.group(0)!r} is wider than the output limit of {limit:,}")
    return total


def check_brace_format(template: str, limit: int) -> int:
    """Refuse ``str.format`` fields whose width is computed (``{:>{}}``) or wider than the output limit; return
    their total width."""
    total = 0
    for _, _, spec, _ in string.Formatter().parse(template):
        if not spec:
            continue
        if "{" in spec:
            raise SecurityError(f"format field spec {spec!r} takes its width from an argument; write it out")
        total += sum(int(n) for n in re.findall(r"\d+", spec))
        if total > limit:
            raise SecurityError(f"format field spec {spec!r} is wider than the output limit of {limit:,}")
    return total
