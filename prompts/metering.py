"""Which template outputs need the ``aigc_out`` meter: those that can repeat or print a container."""

from __future__ import annotations

from jinja2 import nodes

__all__ = ["meter_outputs"]


def meter_outputs(ast: nodes.Template, partial: bool) -> None:
    """Wrap, in place, every output of ``ast`` that could print a container or repeat unmetered in ``aigc_out``
    (a partial's top level counts as repeated: it may be included in a loop)."""
    _wrap_outputs(ast, partial, _Bindings(ast))


class _Bindings:
    """Names a template binds itself (set, for, with, macro, import), as opposed to inputs from the context."""

    def __init__(self, ast: nodes.Template) -> None:
        self.macros = {m.name for m in ast.find_all(nodes.Macro)}
        self.modules = {i.target for i in ast.find_all(nodes.Import)}
        targets = ast.find_all((nodes.Assign, nodes.AssignBlock, nodes.For, nodes.With))
        self.assigned = {n.name for t in targets for n in t.find_all(nodes.Name) if n.ctx in ("store", "param")}
        self.assigned |= {a.name for m in ast.find_all((nodes.Macro, nodes.CallBlock)) for a in m.args}
        self.assigned |= self.macros | self.modules
        self.assigned |= {n if isinstance(n, str) else n[-1] for f in ast.find_all(nodes.FromImport) for n in f.names}


_REPEATING = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.FilterBlock)
# Filters whose result is a string or a number, and is charged by the filter itself.
_SCALAR_FILTERS = frozenset(
    [
        "aigc_concat",
        "capitalize",
        "center",
        "count",
        "e",
        "escape",
        "filesizeformat",
        "float",
        "forceescape",
        "format",
        "indent",
        "int",
        "join",
        "length",
        "lower",
        "pprint",
        "replace",
        "round",
        "safe",
        "string",
        "striptags",
        "title",
        "tojson",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "urlize",
        "wordcount",
        "wordwrap",
        "xmlattr",
    ]
)


def _wrap_outputs(node: nodes.Node, repeated: bool, bindings: _Bindings) -> None:
    """Wrap every output that could print a container, or repeat unmetered, in ``aigc_out``."""
    if isinstance(node, nodes.Output):
        node.nodes = [
            child
            if _metered_already(child, repeated, bindings)
            else nodes.Filter(child, "aigc_out", [], [], None, None).set_lineno(child.lineno)
            for child in node.nodes
        ]
        return
    inner = repeated or isinstance(node, _REPEATING)
    for child in node.iter_child_nodes():
        _wrap_outputs(child, inner, bindings)


def _metered_already(expr: nodes.Node, repeated: bool, bindings: _Bindings) -> bool:
    """Whether printing ``expr`` needs no check: a literal, a bool, a charged scalar, or an input printed once."""
    if isinstance(expr, nodes.TemplateData | nodes.Const | nodes.Compare | nodes.Test | nodes.Not):
        return True
    if isinstance(expr, nodes.CondExpr):
        return _metered_already(expr.expr1, repeated, bindings) and (
            expr.expr2 is None or _metered_already(expr.expr2, repeated, bindings)
        )
    if isinstance(expr, nodes.Filter):
        return expr.name in _SCALAR_FILTERS
    if isinstance(expr, nodes.Call):  # a macro's result is a string, charged by the call
        callee = expr.node
        return (isinstance(callee, nodes.Name) and callee.name in bindings.macros) or (
            isinstance(callee, nodes.Getattr)
            and isinstance(callee.node, nodes.Name)
            and callee.node.name in bindings.modules
        )
    return isinstance(expr, nodes.Name) and not repeated and expr.name not in bindings.assigned
