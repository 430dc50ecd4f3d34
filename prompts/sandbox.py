"""The Jinja environment prompts render in: an immutable sandbox with strict undefined and a render budget.

Templates are authored data, but they may come from anyone who can open a pull request, so the sandbox is
the boundary: no underscore attributes, no ``lipsum``/``cycler``/``joiner`` gadgets, nothing evaluated at
compile time (constant folding is off), and every loop step, operator, filter, test, call and output charged
to the render's meter (:mod:`prompts.budget`) after a size estimate (:mod:`prompts.bounds`) where the result
could be larger than the arguments. Variable values are never parsed as templates: they are data that Jinja
prints. Templates that are not yet published run in a worker process under OS limits (:mod:`prompts.isolation`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sized
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

from prompts.bounds import FILTER_ESTIMATES, STR_METHOD_ESTIMATES, brace_size, estimate_chars, printf_size
from prompts.budget import RenderBudget, RenderState, active_state, current_state
from prompts.errors import InvalidTemplate, PromptSecurityError
from prompts.files import read_source
from prompts.metering import meter_outputs

__all__ = [
    "PARTIALS_DIR",
    "ROLES",
    "AigcSandbox",
    "LimitExceeded",
    "check_ast_safety",
    "find_variables",
    "is_security_error",
    "make_environment",
]

ROLES = ("system", "user", "assistant")
PARTIALS_DIR = "_partials"
_REMOVED_GLOBALS = ("lipsum", "cycler", "joiner")
_DICT_ATTRIBUTES = frozenset(dir(dict))
_SMALL_LOOP = 16  # loops up to this length check the deadline once, longer ones at every step
_STATEMENTS = (
    nodes.For,
    nodes.If,
    nodes.Macro,
    nodes.CallBlock,
    nodes.FilterBlock,
    nodes.With,
    nodes.AssignBlock,
    nodes.Scope,
    nodes.ScopedEvalContextModifier,
)


class LimitExceeded(TemplateSyntaxError):
    """A template over a load-time limit (size, nesting): reported as it is, not as a Jinja syntax error."""


class MessageExtension(Extension):
    """``{% message "system" %}...{% endmessage %}``: one chat message per block.

    A block compiles to ``{% set <var> %}...{% endset %}`` followed by ``<var>|aigc_message(role)``, which
    records (role, text) in the render's meter: no markers travel in the text, so a variable value can never
    forge a message boundary, and nothing has to be scanned for them afterwards.
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
        capture = nodes.AssignBlock(nodes.Name(_MESSAGE_VAR, "store"), None, body).set_lineno(lineno)
        emit = nodes.Filter(nodes.Name(_MESSAGE_VAR, "load"), "aigc_message", [role], [], None, None)
        return [capture, nodes.ExprStmt(emit.set_lineno(lineno)).set_lineno(lineno)]


_MESSAGE_VAR = "aigc_message_text"


def _emit_message(text: str, role: Any) -> str:
    """Record one message block of the render in progress."""
    if role not in ROLES:
        raise SecurityError(f"unknown message role {role!r}; use one of {', '.join(ROLES)}")
    current_state().messages.append((role, str(text)))
    return ""


class _NoFoldCodeGenerator(CodeGenerator):
    """Jinja's code generator without constant folding: no template code runs at compile time, outside the
    render budget (``{{ 'x'|center(200000)|replace(' ', ...) }}`` would otherwise run while loading)."""

    def __init__(
        self,
        environment: Any,
        name: Any,
        filename: Any,
        stream: Any = None,
        defer_init: bool = False,
        optimized: bool = True,
    ) -> None:
        super().__init__(environment, name, filename, stream, defer_init, optimized=False)

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if isinstance(node, nodes.TemplateData | nodes.Const):
            return super()._output_child_to_const(node, frame, finalize)
        raise nodes.Impossible()


class _VariableTracker(_NoFoldCodeGenerator):
    """``jinja2.meta.find_undeclared_variables`` without folding (Jinja's own tracker folds constants)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment, "<introspection>", "<introspection>")
        self.undeclared: set[str] = set()

    def write(self, x: str) -> None:
        """Generate nothing."""

    def enter_frame(self, frame: Frame) -> None:
        super().enter_frame(frame)
        for _, (action, param) in frame.symbols.loads.items():
            if action == "resolve" and param not in self.environment.globals:
                self.undeclared.add(param)


class AigcSandbox(ImmutableSandboxedEnvironment):
    """Immutable sandbox whose every operator, filter, test, call, loop and output is metered and bounded."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, budget: RenderBudget | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.budget = budget or RenderBudget()
        self._partials: dict[str, Any] = {}
        self._partial_sizes: dict[str, int] = {}

    code_generator_class = _NoFoldCodeGenerator

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse with the load-time limits (size, nesting), then route loops and ``~`` through the meter."""
        budget = self.budget
        if len(source) > budget.max_source_chars:
            raise LimitExceeded(
                f"the template has {len(source):,} characters, over the limit of {budget.max_source_chars:,}",
                1,
                name,
                filename,
            )
        parser = Parser(self, source, name, filename)
        try:
            ast = parser.parse()
        except RecursionError:
            raise LimitExceeded(
                "expressions are nested too deeply to parse; split them with {% set %}",
                parser.stream.current.lineno,
                name,
                filename,
            ) from None
        _check_depth(ast, budget, name, filename)
        return _Bounded(partial=(name or "").startswith(PARTIALS_DIR)).visit(ast)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``p.label`` on a dict looks the key up directly (Jinja first raises and catches AttributeError)."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` through Jinja's sandboxed formatter, with widths and arguments sized first."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None

        def bounded(*args: Any, **kwargs: Any) -> str:
            state = current_state()
            limit = state.budget.max_output_chars
            mapping = args[0] if value.__name__ == "format_map" and args else kwargs
            _refuse_over(brace_size(value.__self__, args, mapping, limit), limit, "formatting")
            result = wrapped(*args, **kwargs)
            _refuse_over(len(result), limit, "formatting")
            state.charge(len(result))
            return result

        return bounded

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        state = current_state()
        _check_binop(state, op, left, right)
        result = self.binop_table[op](left, right)
        if isinstance(result, str | list | tuple):
            state.charge(len(result))
        else:
            state.check_time()
        return result

    def get_template(self, name: Any, parent: str | None = None, globals: Any = None) -> Any:
        """Partials are immutable within a registry's life: memoised past Jinja's LRU and loader checks. Each
        include or import charges the partial's size, so an include inside a loop is metered like the loop."""
        if globals is None and isinstance(name, str):
            cached = self._partials.get(name)
            if cached is None:
                cached = self._partials[name] = super().get_template(name)
                self._partial_sizes[name] = len(self.loader.get_source(self, name)[0])
            state = active_state()
            if state is not None:
                state.charge(self._partial_sizes[name])
            return cached
        return super().get_template(name, parent, globals)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        state = current_state()
        state.check_time()
        owner = getattr(__obj, "__self__", None)
        if (isinstance(owner, str) and getattr(__obj, "__name__", "") == "encode") or isinstance(owner, bytes):
            raise SecurityError("bytes are not supported in templates (str.encode); work with text")
        if isinstance(owner, str):
            estimate = STR_METHOD_ESTIMATES.get(getattr(__obj, "__name__", ""))
            if estimate is not None:
                limit = state.budget.max_output_chars
                _refuse_over(estimate(limit, owner, *args, **kwargs), limit, f"str.{__obj.__name__}()")
        result = super().call(__context, __obj, *args, **kwargs)
        _charge_result(state, result, "a call")
        return result


def _check_binop(state: RenderState, op: str, left: Any, right: Any) -> None:
    """Refuse ``*``, ``**``, ``+`` and ``%`` whose result would pass the limits, before computing it."""
    budget = state.budget
    limit = budget.max_output_chars
    ints = type(left) is int and type(right) is int
    if op == "*":
        if ints and left.bit_length() + right.bit_length() > budget.max_int_bits:
            raise SecurityError(f"multiplying makes a number over {budget.max_int_bits} bits, too large for a template")
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and type(times) is int and len(seq) * times > limit:
                raise SecurityError(f"repeating a value {times:,} times exceeds the output limit of {limit:,}")
    elif op == "**":
        if ints and left.bit_length() * max(right, 0) > budget.max_int_bits:
            raise SecurityError(f"{left} ** {right} is too large a number for a template")
    elif op == "+":
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            _refuse_over(len(left) + len(right), limit, "joining values")
    elif op == "%" and isinstance(left, str):
        _refuse_over(printf_size(left, right, limit), limit, "formatting")


def _refuse_over(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise SecurityError(f"{what} would make {size:,} characters or items, over the output limit of {limit:,}")


def _charge_result(state: RenderState, result: Any, what: str) -> None:
    if isinstance(result, str):
        _refuse_over(len(result), state.budget.max_output_chars, what)
        state.charge(len(result))
    elif isinstance(result, list | tuple | dict):
        state.charge(len(result))


def find_variables(ast: nodes.Template, env: AigcSandbox) -> set[str]:
    """The names a template reads from its context (inputs and undefined globals)."""
    tracker = _VariableTracker(env)
    tracker.visit(ast)
    return tracker.undeclared


class _Bounded(NodeTransformer):
    """Rewrite ``{% for x in it %}`` to ``it|aigc_loop(<static chars per step>)``, ``a ~ b`` to
    ``[a, b]|aigc_concat`` and outputs that could repeat or print a container to ``value|aigc_out``
    (filters are called directly by compiled code: cheaper than a sandboxed call)."""

    def __init__(self, partial: bool) -> None:
        self.partial = partial

    def visit_Template(self, node: nodes.Template) -> nodes.Node:
        self.generic_visit(node)
        meter_outputs(node, self.partial)
        return node

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        weight = nodes.Const(_static_chars(node.body))
        node.iter = nodes.Filter(node.iter, "aigc_loop", [weight], [], None, None).set_lineno(node.lineno)
        return node

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        if not isinstance(node.arg, nodes.Slice):
            return node
        bounds = [part or nodes.Const(None) for part in (node.arg.start, node.arg.stop, node.arg.step)]
        return nodes.Filter(node.node, "aigc_slice", bounds, [], None, None).set_lineno(node.lineno)

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(node.nodes).set_lineno(node.lineno)
        return nodes.Filter(parts, "aigc_concat", [], [], None, None).set_lineno(node.lineno)


def _static_chars(body: list[nodes.Node]) -> int:
    """Characters of literal text one loop step outputs (nested loops are weighed by their own filter)."""
    total, stack = 0, list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            total += len(node.value)
        elif not isinstance(node, nodes.For):
            stack.extend(node.iter_child_nodes())
    return total


def _check_depth(ast: nodes.Template, budget: RenderBudget, name: str | None, filename: str | None) -> None:
    """Refuse blocks or expressions nested deeper than Python can compile, before anything recurses on them."""
    stack: list[tuple[nodes.Node, int, int]] = [(ast, 0, 0)]
    while stack:
        node, blocks, depth = stack.pop()
        if isinstance(node, _STATEMENTS):
            blocks += 1
            if blocks > budget.max_block_depth:
                raise LimitExceeded(
                    f"blocks are nested {blocks} deep, over the limit of {budget.max_block_depth}; "
                    f"move the inner part into a macro or a partial",
                    node.lineno,
                    name,
                    filename,
                )
        if depth > budget.max_expression_depth:
            raise LimitExceeded(
                f"an expression is nested over {budget.max_expression_depth} levels deep (parentheses, filters, "
                f"operators); split it with {{% set %}}",
                getattr(node, "lineno", 1),
                name,
                filename,
            )
        child_depth = depth + 1 if isinstance(node, nodes.Expr) else 0
        stack.extend((child, blocks, child_depth) for child in node.iter_child_nodes())


def _loop(iterable: Any, weight: int = 0) -> Any:
    """Every template loop: its items count against the loop budget, its literal text against the work budget,
    and the deadline is checked at every step of a loop longer than a few items."""
    state = current_state()
    if isinstance(iterable, Sized):
        size = len(iterable)
        state.count_loop(size)
        state.charge(size * weight)
        return iterable if size <= _SMALL_LOOP else _timed(iterable, state)
    return _counted(iterable, state, weight)


def _timed(iterable: Any, state: RenderState) -> Iterator[Any]:
    check = state.check_time
    for item in iterable:
        check()
        yield item


def _counted(iterable: Any, state: RenderState, weight: int) -> Iterator[Any]:
    for item in iterable:
        state.count_loop(1)
        state.charge(weight)
        yield item


def _concat(parts: list[Any]) -> str:
    """``a ~ b`` with the result sized before it is built."""
    state = current_state()
    limit = state.budget.max_output_chars
    _refuse_over(sum(estimate_chars(p, limit) for p in parts), limit, "joining values with ~")
    text = "".join(map(str, parts))
    state.charge(len(text))
    return text


def _out(value: Any) -> Any:
    """An output that could repeat or print a container: charged, and a container sized before ``str()``."""
    kind = type(value)
    if kind is int or kind is float or kind is bool:  # numbers are at most max_int_bits wide
        return value
    state = active_state() or current_state()
    if kind is str:
        state.work += len(value)
        if state.work > state.budget.max_work:
            state.charge(0)
        return value
    limit = state.budget.max_output_chars
    size = estimate_chars(value, limit)
    _refuse_over(size, limit, "printing a value")
    state.charge(size)
    return value


def _slice(value: Any, start: Any, stop: Any, step: Any) -> Any:
    """``x[a:b:c]`` (Jinja compiles slices to plain subscripts): the copy is charged."""
    result = value[start:stop:step]
    if isinstance(result, str | list | tuple):
        current_state().charge(len(result))
    return result


def _budgeted_range(*args: int) -> range:
    state = current_state()
    numbers = range(*args)
    if len(numbers) > state.budget.max_loop_items:
        raise SecurityError(f"range of {len(numbers):,} items exceeds the limit of {state.budget.max_loop_items:,}")
    return numbers  # iterating it in a template loop is counted by aigc_loop


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose int arguments, estimated result and actual result are checked against the budget."""
    offset = 1 if hasattr(func, "jinja_pass_arg") else 0  # context / eval context / environment comes first
    estimate = FILTER_ESTIMATES.get(name)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = current_state()
        limit = state.budget.max_output_chars
        for value in (*args[offset + 1 :], *kwargs.values()):
            if type(value) is int and value > limit:
                raise SecurityError(f"filter {name!r} argument {value:,} exceeds the output limit of {limit:,}")
        if estimate is not None and len(args) > offset:
            subject = args[offset]
            if not isinstance(subject, Sized) and hasattr(subject, "__iter__"):  # a generator: make it a list
                subject = list(subject)
                state.charge(len(subject))
                args = (*args[:offset], subject, *args[offset + 1 :])
            _refuse_over(estimate(limit, *args[offset:], **kwargs), limit, f"filter {name!r}")
        state.check_time()
        result = func(*args, **kwargs)
        _charge_result(state, result, f"filter {name!r}")
        return result

    return wrapper


def _timed_test(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current_state().check_time()
        return func(*args, **kwargs)

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
                return read_source(path), str(path), lambda: True
        raise TemplateNotFound(f"{template} (looked in {', '.join(str(r / PARTIALS_DIR) for r in self.roots)})")


def make_environment(roots: list[Path], budget: RenderBudget | None = None) -> AigcSandbox:
    """A sandbox whose includes resolve against ``roots`` (the prompt's own library root first)."""
    env = AigcSandbox(
        budget,
        loader=PartialsLoader(roots),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
        cache_size=400,
        optimized=False,
        extensions=[MessageExtension],
    )
    for name in _REMOVED_GLOBALS:
        env.globals.pop(name, None)
    env.globals["range"] = _budgeted_range
    env.filters = {name: _bounded_filter(name, f) for name, f in env.filters.items() if name != "pprint"}
    env.tests = {name: _timed_test(f) for name, f in env.tests.items()}
    env.filters["aigc_loop"] = _loop  # our own budget helpers, inserted by _Bounded
    env.filters["aigc_concat"] = _concat
    env.filters["aigc_slice"] = _slice
    env.filters["aigc_out"] = _out
    env.filters["aigc_message"] = _emit_message
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
    for node in ast.find_all(nodes.For):
        if node.recursive:
            raise InvalidTemplate(
                "recursive loops ({% for ... recursive %}) are not supported: use a fixed depth of nested loops",
                path=path,
                line=node.lineno,
            )
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Const, nodes.EvalContextModifier)):
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
    if isinstance(node, nodes.EvalContextModifier) and not all(isinstance(k.value, nodes.Const) for k in node.options):
        return "{% autoescape %} takes a literal true or false"
    return None


def is_security_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the sandbox or the render budget."""
    return isinstance(exc, SecurityError | OverflowError | MemoryError | RecursionError)
