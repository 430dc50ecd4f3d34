"""The Jinja environment prompts render in: an immutable sandbox with strict undefined and a render budget.

Templates are authored data, but they may come from anyone who can open a pull request, so the sandbox is
the boundary: no underscore attributes, no ``lipsum``/``cycler``/``joiner`` gadgets, bounded ``range``,
bounded ``*`` and ``**``, bounded filter arguments, and a per-render budget of output size and time.
Variable values are never parsed as templates: they are data that Jinja prints.
"""

from __future__ import annotations

import contextvars
import functools
import re
import secrets
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound, nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

from prompts.errors import InvalidTemplate, PromptSecurityError

__all__ = ["PARTIALS_DIR", "ROLES", "MessageMarkers", "RenderBudget", "RenderState", "make_environment", "render_state"]

ROLES = ("system", "user", "assistant")
PARTIALS_DIR = "_partials"
_REMOVED_GLOBALS = ("lipsum", "cycler", "joiner")


@dataclass(frozen=True)
class RenderBudget:
    """Upper bounds on one render. Exceeding one raises PromptSecurityError."""

    max_output_chars: int = 200_000
    max_seconds: float = 2.0
    max_loop_items: int = 100_000


@dataclass(slots=True)
class RenderState:
    """Per-render bookkeeping: the budget, its deadline and the loop count."""

    budget: RenderBudget
    deadline: float
    loop_items: int = 0

    def check_time(self) -> None:
        """Raise once the render has run past its time budget."""
        if time.perf_counter() > self.deadline:
            raise SecurityError(f"render took longer than {self.budget.max_seconds} s")


_STATE: contextvars.ContextVar[RenderState | None] = contextvars.ContextVar("aigc_render_state", default=None)


def render_state(budget: RenderBudget) -> tuple[RenderState, contextvars.Token[RenderState | None]]:
    """Start a render: a fresh state bound to this context. Reset the returned token when done."""
    state = RenderState(budget, time.perf_counter() + budget.max_seconds)
    return state, _STATE.set(state)


def reset_render_state(token: contextvars.Token[RenderState | None]) -> None:
    """End a render started with :func:`render_state`."""
    _STATE.reset(token)


def _state() -> RenderState:
    state = _STATE.get()
    if state is None:  # rendered outside Prompt.render (e.g. a stray direct Template.render)
        state, _ = render_state(RenderBudget())
    return state


class MessageExtension(Extension):
    """``{% message "system" %}...{% endmessage %}``: one chat message per block.

    A block compiles to plain output wrapped in markers that carry a per-environment random nonce, so a render
    makes no extra calls and a variable value cannot forge a message boundary (it cannot know the nonce).
    """

    tags = {"message"}  # noqa: RUF012 - Jinja's own API

    def parse(self, parser: Parser) -> list[nodes.Node]:
        lineno = next(parser.stream).lineno
        if getattr(parser, "_aigc_in_message", False):
            parser.fail("a {% message %} block cannot contain another one", lineno)
        role = parser.parse_expression()
        if isinstance(role, nodes.Const) and role.value not in ROLES:
            parser.fail(f"unknown role {role.value!r}: use one of {', '.join(ROLES)}", lineno)
        parser._aigc_in_message = True  # type: ignore[attr-defined]
        try:
            body = parser.parse_statements(("name:endmessage",), drop_needle=True)
        finally:
            parser._aigc_in_message = False  # type: ignore[attr-defined]
        markers: MessageMarkers = self.environment.message_markers  # type: ignore[attr-defined]
        opening = nodes.Output([nodes.TemplateData(markers.open), role, nodes.TemplateData(markers.sep)])
        closing = nodes.Output([nodes.TemplateData(markers.close)])
        return [opening.set_lineno(lineno), *body, closing.set_lineno(lineno)]


class MessageMarkers:
    """The nonce-bearing markers that delimit message blocks in rendered text, and their parser."""

    def __init__(self) -> None:
        nonce = secrets.token_hex(8)
        self.open, self.sep, self.close = f"\x02{nonce}<", ">\x02", f"\x03{nonce}\x03"

    def split(self, text: str) -> tuple[list[tuple[str, str]], str]:
        """The (role, content) blocks in ``text`` and the text left outside them."""
        if self.open not in text:
            return [], text
        first, *chunks = text.split(self.open)
        outside, blocks = [first], []
        for chunk in chunks:
            role, sep, rest = chunk.partition(self.sep)
            content, close, after = rest.partition(self.close)
            if not sep or not close or self.close in after:
                raise SecurityError("a {% message %} block was cut or transformed by a filter")
            if role not in ROLES:
                raise SecurityError(f"unknown message role {role!r}; use one of {', '.join(ROLES)}")
            blocks.append((role, content))
            outside.append(after)
        return blocks, "".join(outside)


class AigcSandbox(ImmutableSandboxedEnvironment):
    """Immutable sandbox plus bounded arithmetic, string building, loops, formatting and render time."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._partials: dict[str, Any] = {}
        self.message_markers = MessageMarkers()

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every template (prompt or partial) gets its loops and ``~`` concatenations routed through the budget."""
        return _Bounded().visit(super()._parse(source, name, filename))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` through Jinja's sandboxed formatter, with field widths bounded by the output limit."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None

        def bounded(*args: Any, **kwargs: Any) -> str:
            limit = _state().budget.max_output_chars
            check_brace_widths(value.__self__, limit)
            result = wrapped(*args, **kwargs)
            if len(result) > limit:
                raise SecurityError(f"formatting made {len(result)} characters, over the output limit of {limit}")
            return result

        return bounded

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        limit = _state().budget.max_output_chars
        if op == "**" and isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > 4096:
            raise SecurityError(f"{left} ** {right} is too large a number for a template")
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > limit:
                    raise SecurityError(f"repeating a value {times} times exceeds the output limit of {limit}")
        if op == "%" and isinstance(left, str):
            check_format_widths(left, limit)
        result = self.binop_table[op](left, right)
        if isinstance(result, str | list | tuple) and len(result) > limit:
            raise SecurityError(f"a value of {len(result)} items exceeds the output limit of {limit}")
        return result

    def get_template(self, name: Any, parent: str | None = None, globals: Any = None) -> Any:
        """Partials are immutable within a registry's life: memoise them past Jinja's LRU and loader checks."""
        if parent is None and globals is None and isinstance(name, str):
            cached = self._partials.get(name)
            if cached is None:
                cached = self._partials[name] = super().get_template(name)
            return cached
        return super().get_template(name, parent, globals)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _state().check_time()
        return super().call(__context, __obj, *args, **kwargs)


class _Bounded(NodeTransformer):
    """Rewrite ``{% for x in it %}`` to ``it|aigc_loop`` and ``a ~ b`` to ``[a, b]|aigc_concat`` (filters are
    called directly by compiled code: cheaper than a sandboxed call)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "aigc_loop", [], [], None, None).set_lineno(node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(node.nodes).set_lineno(node.lineno)
        return nodes.Filter(parts, "aigc_concat", [], [], None, None).set_lineno(node.lineno)


_WIDTH = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_format_widths(template: str, limit: int) -> None:
    """Refuse printf-style field widths or precisions that could allocate more than the output limit."""
    for match in _WIDTH.finditer(template):
        for part in match.groups():
            if part == "*" or (part and int(part) > limit):
                raise SecurityError(f"format field {match.group(0)!r} is wider than the output limit of {limit}")


def check_brace_widths(template: str, limit: int) -> None:
    """Refuse ``str.format`` fields whose width is computed (``{:>{}}``) or wider than the output limit."""
    for _, _, spec, _ in string.Formatter().parse(template):
        if not spec:
            continue
        if "{" in spec:
            raise SecurityError(f"format field spec {spec!r} takes its width from an argument; write it out")
        if any(int(n) > limit for n in re.findall(r"\d+", spec)):
            raise SecurityError(f"format field spec {spec!r} is wider than the output limit of {limit}")


def _loop(iterable: Any) -> Any:
    """Every template loop: its items count against the loop budget (sized ones at once), time is checked."""
    state = _state()
    if hasattr(iterable, "__len__"):
        state.loop_items += len(iterable)
        if state.loop_items > state.budget.max_loop_items:
            raise SecurityError(f"loops ran more than {state.budget.max_loop_items} iterations")
        state.check_time()
        return iterable
    return _counted(iterable, state)


def _counted(iterable: Any, state: RenderState) -> Iterator[Any]:
    for item in iterable:
        state.loop_items += 1
        if state.loop_items > state.budget.max_loop_items:
            raise SecurityError(f"loops ran more than {state.budget.max_loop_items} iterations")
        if state.loop_items % 256 == 0:
            state.check_time()
        yield item


def _concat(parts: list[Any]) -> str:
    """``a ~ b`` with the output limit applied to the result."""
    text = "".join(map(str, parts))
    limit = _state().budget.max_output_chars
    if len(text) > limit:
        raise SecurityError(f"joining values made {len(text)} characters, over the output limit of {limit}")
    return text


def _budgeted_range(*args: int) -> range:
    state = _state()
    numbers = range(*args)
    if len(numbers) > state.budget.max_loop_items:
        raise SecurityError(f"range of {len(numbers)} items exceeds the limit of {state.budget.max_loop_items}")
    return numbers  # iterating it in a template loop is counted by aigc_loop


def _bounded_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = _state()
        limit = state.budget.max_output_chars
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                raise SecurityError(f"filter {func.__name__!r} argument {value} exceeds the output limit")
        if func.__name__ == "do_format" and args and isinstance(args[0], str):
            check_format_widths(args[0], limit)
        state.check_time()
        result = func(*args, **kwargs)
        if isinstance(result, str) and len(result) > limit:
            raise SecurityError(f"filter {func.__name__!r} made {len(result)} characters, over the output limit")
        return result

    for marker in ("jinja_pass_arg",):
        if hasattr(func, marker):
            setattr(wrapper, marker, getattr(func, marker))
    return wrapper


class PartialsLoader(BaseLoader):
    """Serves ``_partials/<file>`` from the library roots, the prompt's own root first."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        parts = Path(template).parts
        if len(parts) < 2 or parts[0] != PARTIALS_DIR or ".." in parts:
            raise TemplateNotFound(f"{template} (only files under {PARTIALS_DIR}/ can be included or imported)")
        for root in self.roots:
            path = root.joinpath(*parts)
            if path.is_file():
                return path.read_text(encoding="utf-8"), str(path), lambda: True
        raise TemplateNotFound(f"{template} (looked in {', '.join(str(r / PARTIALS_DIR) for r in self.roots)})")


def make_environment(roots: list[Path]) -> AigcSandbox:
    """A sandbox whose includes resolve against ``roots`` (the prompt's own library root first)."""
    env = AigcSandbox(
        loader=PartialsLoader(roots),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
        cache_size=400,
        extensions=[MessageExtension],
    )
    for name in _REMOVED_GLOBALS:
        env.globals.pop(name, None)
    env.globals["range"] = _budgeted_range
    env.filters = {name: _bounded_filter(f) for name, f in env.filters.items()}
    env.filters["aigc_loop"] = _loop  # our own budget helpers, inserted by _Bounded
    env.filters["aigc_concat"] = _concat
    return env


def check_ast_safety(ast: nodes.Template, path: str) -> None:
    """Reject, at load time, constructs that only an injection attempt needs."""
    for node in ast.find_all(nodes.Extends):
        raise InvalidTemplate(
            "template inheritance ({% extends %}) is not supported: its parent would escape the "
            "content hash; use {% include %} or {% import %} of a partial instead",
            path=path,
            line=node.lineno,
        )
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Const)):
        problem = _unsafe(node)
        if problem:
            raise PromptSecurityError(problem, path=path, line=node.lineno)


def _unsafe(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        return f"access to the attribute {node.attr!r} is not allowed in templates (underscore attributes are blocked)"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and str(node.arg.value).startswith("_"):
        return f"access to the item {node.arg.value!r} is not allowed in templates (underscore names are blocked)"
    if isinstance(node, nodes.Name) and node.name in _REMOVED_GLOBALS:
        return f"{node.name!r} is not available in aigc templates (it is a known sandbox-escape gadget)"
    if isinstance(node, nodes.Const) and isinstance(node.value, int) and abs(node.value) > 1_000_000:
        return f"the number {node.value} is too large for a template literal (at most 1,000,000)"
    return None


def is_security_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the sandbox or the render budget."""
    return isinstance(exc, SecurityError | OverflowError | MemoryError)
