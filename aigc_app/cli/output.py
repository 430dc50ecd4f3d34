"""Terminal output helpers shared by the command groups (rich is imported on first use)."""

from __future__ import annotations

import sys
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["console", "err_console", "print_error", "print_warning"]


@cache
def console() -> Console:
    """Console for results (stdout)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


@cache
def err_console() -> Console:
    """Console for errors, warnings and progress (stderr)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """Print ``error: message`` in red on stderr."""
    from rich.markup import escape

    err_console().print(f"[bold red]error:[/] {escape(message)}")


def print_warning(message: str) -> None:
    """Print ``warning: message`` in yellow on stderr."""
    from rich.markup import escape

    err_console().print(f"[yellow]warning:[/] {escape(message)}")


def is_tty() -> bool:
    """Whether stdout is a terminal."""
    return sys.stdout.isatty()
