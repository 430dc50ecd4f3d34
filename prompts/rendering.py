"""Render a compiled template in this process: metered by the sandbox, split into chat messages."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from jinja2 import UndefinedError

from prompts.budget import RenderBudget, render_state, reset_render_state
from prompts.errors import AigcError, InvalidTemplate, PromptSecurityError
from prompts.sandbox import is_security_error

__all__ = ["InProcessRenderer", "Message", "messages_from_blocks", "render_error"]


@dataclass(frozen=True, slots=True)
class Message:
    """One rendered chat message (a plain value: rendering makes thousands per second)."""

    role: Literal["system", "user", "assistant"]
    content: str

    def to_dict(self) -> dict[str, str]:
        """The OpenAI chat format: ``{"role": ..., "content": ...}``."""
        return {"role": self.role, "content": self.content}


class InProcessRenderer:
    """Renders one compiled template in this process; every error names the template file and line."""

    def __init__(self, template: Any, *, ref: str, path: str, budget: RenderBudget) -> None:
        self.template = template
        self.ref = ref
        self.path = path
        self.budget = budget
        self._root = template.root_render_func
        self._new_context = template.new_context

    def __call__(self, values: dict[str, Any]) -> list[Message]:
        state, token = render_state(self.budget)
        try:
            outside = "".join(self._root(self._new_context(values)))  # every output is metered by the sandbox
        except AigcError:
            raise
        except Exception as exc:
            raise self._error(exc) from None
        finally:
            reset_render_state(token)
        return messages_from_blocks(outside, state.messages, self.budget, self.path)

    def _error(self, exc: BaseException) -> InvalidTemplate:
        try:  # Jinja rewrites the traceback to template lines
            self.template.environment.handle_exception()
        except BaseException as rewritten:
            exc = rewritten
        return render_error(self.ref, self.path, exc, self.budget)


def render_error(ref: str, default_path: str, exc: BaseException, budget: RenderBudget) -> InvalidTemplate:
    """One error for anything a render raised: the file and line of the innermost template frame."""
    path, line = _template_frame(exc.__traceback__, default_path)
    if is_security_error(exc):
        if isinstance(exc, RecursionError):
            detail = "nested too deeply (recursion)"
        elif isinstance(exc, MemoryError):
            detail = f"ran out of memory (drafts render in a worker limited to {budget.max_memory_mb} MB)"
        else:
            detail = str(exc)
        return PromptSecurityError(f"{ref} blocked by the sandbox: {detail}", path=path, line=line)
    if isinstance(exc, UndefinedError):
        return InvalidTemplate(f"{ref}: {exc.message}", path=path, line=line)
    return InvalidTemplate(f"{ref}: {type(exc).__name__}: {exc}", path=path, line=line)


def messages_from_blocks(text: str, blocks: list[tuple[str, str]], budget: RenderBudget, path: str) -> list[Message]:
    """The chat messages of a render: its ``{% message %}`` blocks, or the whole text as one user message."""
    if not blocks:
        messages = [Message(role="user", content=text.strip())]
    elif text.strip():
        raise InvalidTemplate(
            f"text outside {{% message %}} blocks: {text.strip()[:60]!r}; move it into a block", path=path
        )
    else:
        messages = [Message(role=role, content=content.strip()) for role, content in blocks]  # type: ignore[arg-type]
    size = sum(len(m.content) for m in messages)
    if size > budget.max_output_chars:
        raise PromptSecurityError(
            f"rendered {size:,} characters, over the output limit of {budget.max_output_chars:,}", path=path
        )
    return messages


def _template_frame(tb: TracebackType | None, default_path: str) -> tuple[str, int | None]:
    """The innermost traceback frame that belongs to a template file (Jinja rewrites those to template lines)."""
    path, line = default_path, None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".jinja"):
            path, line = filename, tb.tb_lineno
        tb = tb.tb_next
    return path, line
