"""A compiled prompt version: validated inputs in, chat messages out."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from jinja2 import TemplateNotFound, TemplateSyntaxError, nodes
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from prompts.budget import RenderBudget
from prompts.errors import AigcError, InvalidInputs, InvalidTemplate, MissingVariables
from prompts.frontmatter import parse_prompt_file
from prompts.rendering import InProcessRenderer, Message
from prompts.sandbox import AigcSandbox, LimitExceeded, check_ast_safety, find_variables
from prompts.schema import InputSpec, PromptMeta

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import Runnable

__all__ = ["Message", "Prompt", "Renderer", "compile_prompt", "content_hash"]

Renderer = Callable[[dict[str, Any]], list[Message]]  # validated input values -> chat messages

HASH_SCHEME = "aigc-prompt-v1"


class Prompt:
    """One version of a prompt, compiled and ready to render. Build it through a PromptRegistry."""

    def __init__(
        self,
        *,
        prompt_id: str,
        meta: PromptMeta,
        path: Path,
        source: str,
        renderer: Renderer,
        variables: frozenset[str],
        partials: dict[str, str],
        published: bool,
        budget: RenderBudget,
        isolated: bool = False,
    ) -> None:
        self.id = prompt_id
        self.meta = meta
        self.path = path
        self.source = source
        self.variables = variables
        self.partials = partials
        self.published = published
        self.budget = budget
        self.hash = content_hash(source, partials)
        self.input_model = build_input_model(self.ref, meta.inputs)
        self.warnings = [
            f"{path}: declared input {name!r} is never used by the template or its partials"
            for name in meta.inputs
            if name not in variables
        ]
        self.isolated = isolated
        self._renderer = renderer
        self._validate = self.input_model.__pydantic_validator__.validate_python

    @property
    def name(self) -> str:
        """The prompt's name, e.g. ``ad_copy``."""
        return self.meta.name

    @property
    def version(self) -> str:
        """The version string, e.g. ``1.2.0``."""
        return self.meta.version

    @property
    def ref(self) -> str:
        """The exact reference ``task/name@version``."""
        return f"{self.id}@{self.meta.version}"

    def __repr__(self) -> str:
        state = ("published" if self.published else "draft") + (" isolated" if self.isolated else "")
        return f"<Prompt {self.ref} {state} sha256:{self.hash[:12]}>"

    def validate_inputs(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Coerce and check ``variables`` against the declared inputs; fill in defaults."""
        try:
            return dict(self._validate(variables).__dict__)
        except ValidationError as exc:
            raise _inputs_error(self.ref, self.meta.inputs, exc) from None

    def render(self, /, **variables: Any) -> list[Message]:
        """Render to chat messages. Values are data: they are printed, never parsed as templates."""
        return self.to_messages(variables)

    def to_messages(self, variables: Mapping[str, Any]) -> list[Message]:
        """Like :meth:`render`, taking one mapping (the shape a LangChain Runnable passes)."""
        try:
            values = self._validate(variables).__dict__  # the template's context copies it
        except ValidationError as exc:
            raise _inputs_error(self.ref, self.meta.inputs, exc) from None
        return self._renderer(values)

    def to_langchain(self, /, **variables: Any) -> list[BaseMessage]:
        """Render to LangChain message objects."""
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
        return [kinds[m.role](content=m.content) for m in self.to_messages(variables)]

    def as_runnable(self) -> Runnable[dict[str, Any], list[BaseMessage]]:
        """A LangChain Runnable mapping an input dict to messages, ready to pipe into a chat model."""
        from langchain_core.runnables import RunnableLambda

        return RunnableLambda(lambda variables: self.to_langchain(**variables), name=self.ref)


def content_hash(source: str, partials: Mapping[str, str]) -> str:
    """sha256 over the version file and every partial it uses, in name order."""
    digest = hashlib.sha256(f"{HASH_SCHEME}\n".encode())
    digest.update(source.encode("utf-8"))
    for name in sorted(partials):
        digest.update(f"\0partial:{name}\0".encode())
        digest.update(partials[name].encode("utf-8"))
    return digest.hexdigest()


def compile_prompt(
    prompt_id: str, path: Path, source: str, env: AigcSandbox, *, published: bool, budget: RenderBudget
) -> Prompt:
    """Parse, check and compile one version file in this process. Every load-time error names the file and line.

    Nothing of the template runs here (constant folding is off), so compiling is bounded by the source size.
    """
    parsed = parse_prompt_file(source, str(path))
    jinja_source = "\n" * (parsed.body_line - 1) + parsed.body
    ast = _parse(env, jinja_source, f"{prompt_id}@{parsed.meta.version}", str(path))
    check_ast_safety(ast, str(path))
    partials: dict[str, str] = {}
    used = _guarded(str(path), find_variables, ast, env)
    used |= _load_partials(env, ast, str(path), partials)
    used -= set(env.globals)
    undeclared = sorted(used - set(parsed.meta.inputs))
    if undeclared:
        name = undeclared[0]
        declared = ", ".join(parsed.meta.inputs) or "none"
        raise InvalidTemplate(
            f"variable {name!r} is used but not declared under 'inputs' (declared: {declared}); "
            f"declare it in the front matter or fix the name",
            path=_where_used(name, ast, env, partials, str(path)),
            line=_line_used(name, ast, env, partials),
        )
    code = _guarded(str(path), env.compile, ast, filename=str(path))
    template = env.template_class.from_code(env, code, env.make_globals(None))
    ref = f"{prompt_id}@{parsed.meta.version}"
    return Prompt(
        prompt_id=prompt_id,
        meta=parsed.meta,
        path=path,
        source=source,
        renderer=InProcessRenderer(template, ref=ref, path=str(path), budget=budget),
        variables=frozenset(used),
        partials=partials,
        published=published,
        budget=budget,
    )


def _guarded(path: str, step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a compile step; Python's own limits (nesting, recursion) become an error naming the file."""
    try:
        return step(*args, **kwargs)
    except AigcError:
        raise
    except TemplateSyntaxError as exc:
        raise InvalidTemplate(
            f"Jinja syntax error: {exc.message}", path=exc.filename or path, line=exc.lineno
        ) from None
    except (SyntaxError, RecursionError, MemoryError) as exc:
        line = exc.lineno if isinstance(exc, SyntaxError) else None
        raise InvalidTemplate(
            f"the template is nested too deeply to compile ({type(exc).__name__}: {exc}); "
            f"flatten it with macros, {{% set %}} or a partial",
            path=path,
            line=line,
        ) from None


def _parse(env: AigcSandbox, source: str, name: str, filename: str) -> nodes.Template:
    try:
        return env.parse(source, name=name, filename=filename)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc, filename) from None


def _syntax_error(exc: TemplateSyntaxError, path: str) -> InvalidTemplate:
    message = exc.message if isinstance(exc, LimitExceeded) else f"Jinja syntax error: {exc.message}"
    return InvalidTemplate(message or "Jinja syntax error", path=path, line=exc.lineno)


def _load_partials(env: AigcSandbox, ast: nodes.Template, path: str, seen: dict[str, str]) -> set[str]:
    """Load every partial reachable from ``ast`` into ``seen``; return the variables they use."""
    used: set[str] = set()
    for node in ast.find_all((nodes.Include, nodes.Import, nodes.FromImport)):
        if not isinstance(node.template, nodes.Const):
            raise InvalidTemplate(
                "include/import needs a literal file name such as '_partials/x.jinja'", path=path, line=node.lineno
            )
        name = node.template.value
        if name in seen:
            continue
        try:
            source, filename, _ = env.loader.get_source(env, name)
        except TemplateNotFound as exc:
            raise InvalidTemplate(f"partial not found: {exc.message}", path=path, line=node.lineno) from None
        seen[name] = source
        partial_ast = _parse(env, source, name, filename)
        check_ast_safety(partial_ast, filename)
        if isinstance(node, nodes.Include):
            used |= _guarded(filename, find_variables, partial_ast, env)
        used |= _load_partials(env, partial_ast, filename, seen)
        _guarded(filename, env.get_template, name)  # compile it now, not at the first render
    return used


def _names(ast: nodes.Template, name: str) -> list[nodes.Name]:
    return [n for n in ast.find_all(nodes.Name) if n.name == name and n.ctx == "load"]


def _line_used(name: str, ast: nodes.Template, env: AigcSandbox, partials: dict[str, str]) -> int | None:
    found = _names(ast, name)
    if found:
        return found[0].lineno
    for partial, source in partials.items():
        found = _names(env.parse(source, name=partial), name)
        if found:
            return found[0].lineno
    return None


def _where_used(name: str, ast: nodes.Template, env: AigcSandbox, partials: dict[str, str], path: str) -> str:
    if _names(ast, name):
        return path
    for partial, source in partials.items():
        if _names(env.parse(source, name=partial), name):
            return env.loader.get_source(env, partial)[1]
    return path


def _split_list(value: Any) -> Any:
    """Let CLI and env strings fill list inputs: JSON (``["a","b"]``) or comma-separated (``a, b``)."""
    if not isinstance(value, str):
        return value
    import json

    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    return [part.strip() for part in text.split(",") if part.strip()]


def _annotation(spec: InputSpec) -> Any:
    from typing import Literal as Lit

    scalar: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "object": dict[str, Any]}
    if spec.type == "list":
        item = Lit[tuple(spec.enum)] if spec.enum else scalar.get(spec.items or "string", Any)
        return Annotated[list[item], BeforeValidator(_split_list), Field(max_length=spec.max_length)]
    if spec.enum:
        return Lit[tuple(spec.enum)]
    if spec.type == "string":
        return Annotated[str, Field(max_length=spec.max_length)]
    return scalar[spec.type]


def build_input_model(ref: str, inputs: Mapping[str, InputSpec]) -> type[BaseModel]:
    """A pydantic model of the declared inputs; unknown inputs are rejected to catch typos."""
    fields: dict[str, Any] = {}
    for name, spec in inputs.items():
        default = ... if spec.is_required else spec.default
        fields[name] = (_annotation(spec), Field(default, description=spec.description or None))
    model_name = "Inputs_" + "".join(c if c.isalnum() else "_" for c in ref)
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def _inputs_error(ref: str, inputs: Mapping[str, InputSpec], exc: ValidationError) -> InvalidInputs:
    """One error that lists every problem: missing inputs, then wrong values and unknown names."""
    declared = [f"{n} ({s.type}{', required' if s.is_required else ''})" for n, s in inputs.items()]
    missing = [str(e["loc"][0]) for e in exc.errors() if e["type"] == "missing"]
    problems = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"])
        if error["type"] == "missing":
            continue
        if error["type"] == "extra_forbidden":
            problems.append(f"{name}: not a declared input (declared: {', '.join(inputs) or 'none'})")
        else:
            problems.append(f"{name}: {error['msg']} (got {error.get('input')!r:.80})")
    if missing:
        also = f" Also: {'; '.join(problems)}." if problems else ""
        return MissingVariables(
            f"{ref}: missing required input(s) {', '.join(missing)}. Declared inputs: {', '.join(declared) or 'none'}."
            f"{also}",
            prompt=ref,
            missing=missing,
            declared=list(inputs),
            problems=problems,
        )
    return InvalidInputs(f"{ref}: invalid input(s): " + "; ".join(problems), prompt=ref, problems=problems)
