"""Render budgets: the limits on one render, and the per-render meter that the sandbox's hooks charge.

Every hook the sandbox installs (loops, operators, filters, calls, tests, output) charges the meter for what it
produces, checks the deadline, and refuses an operation whose result would be too large *before* computing it.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field

from jinja2.sandbox import SecurityError

__all__ = [
    "RenderBudget",
    "RenderState",
    "active_state",
    "current_state",
    "deep_chars",
    "render_state",
    "reset_render_state",
]


@dataclass(frozen=True)
class RenderBudget:
    """Upper bounds on one render (and on loading a template). Exceeding one raises PromptSecurityError.

    ``max_work`` caps everything a render produces in total (characters of strings and items of lists, summed
    over every operator, filter, call and output), which bounds its memory in process; ``max_memory_mb`` is the
    address-space headroom, and ``max_seconds`` the CPU time, that the OS enforces on the isolated worker
    rendering drafts and anything ``prompts check`` or a server receives.
    """

    max_output_chars: int = 200_000
    max_seconds: float = 2.0
    max_loop_items: int = 100_000
    max_work: int = 10_000_000
    max_int_bits: int = 4096
    max_memory_mb: int = 256
    max_source_chars: int = 1_000_000
    max_block_depth: int = 10
    max_expression_depth: int = 100


@dataclass(slots=True)
class RenderState:
    """Per-render meter: the budget, its deadline, loop items and work done so far, and the messages rendered."""

    budget: RenderBudget
    deadline: float
    loop_items: int = 0
    work: int = 0
    messages: list[tuple[str, str]] = field(default_factory=list)

    def check_time(self) -> None:
        """Raise once the render has run past its time budget."""
        if time.perf_counter() > self.deadline:
            raise SecurityError(f"render took longer than {self.budget.max_seconds} s")

    def charge(self, amount: int) -> None:
        """Count ``amount`` characters or items produced; raise past the work budget or the deadline."""
        self.work += amount
        if self.work > self.budget.max_work:
            raise SecurityError(
                f"the render produced more than {self.budget.max_work:,} characters or items in total "
                f"(strings built, lists made, output); simplify the template"
            )
        if time.perf_counter() > self.deadline:
            raise SecurityError(f"render took longer than {self.budget.max_seconds} s")

    def count_loop(self, items: int) -> None:
        """Count loop iterations against the loop budget."""
        self.loop_items += items
        if self.loop_items > self.budget.max_loop_items:
            raise SecurityError(f"loops ran more than {self.budget.max_loop_items:,} iterations")


_STATE: contextvars.ContextVar[RenderState | None] = contextvars.ContextVar("aigc_render_state", default=None)


active_state = _STATE.get  # the meter of the render in progress, or None (compile time, stray renders)


def render_state(budget: RenderBudget) -> tuple[RenderState, contextvars.Token[RenderState | None]]:
    """Start a render: a fresh meter bound to this context. Pass the token to :func:`reset_render_state`."""
    state = RenderState(budget, time.perf_counter() + budget.max_seconds)
    return state, _STATE.set(state)


def reset_render_state(token: contextvars.Token[RenderState | None]) -> None:
    """End a render started with :func:`render_state`."""
    _STATE.reset(token)


def current_state() -> RenderState:
    """The meter of the render in progress; a stray render outside Prompt gets a fresh default budget each call."""
    state = _STATE.get()
    if state is None:
        budget = RenderBudget()
        state = RenderState(budget, time.perf_counter() + budget.max_seconds)
    return state


_SCALAR_CHARS = {bool: 5, type(None): 4, float: 24}


def deep_chars(value: object, limit: int) -> int:
    """An upper estimate of ``len(str(value))``, walking containers; stops as soon as it passes ``limit``.

    Shared references are counted every time they appear, as ``str()`` would print them.
    """
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            total += len(item) + 2
        elif kind is int:
            total += item.bit_length() // 3 + 2
        elif kind in (list, tuple, set, frozenset):
            total += 2 * len(item) + 2
            stack.extend(item)
        elif kind is dict:
            total += 4 * len(item) + 2
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += _SCALAR_CHARS.get(kind, 64)
        if total > limit:
            return total
    return total
