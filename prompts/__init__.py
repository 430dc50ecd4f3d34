"""Versioned, immutable Jinja prompt templates and their registry.

from prompts import load_prompt
prompt = load_prompt("marketing/ad_copy@^1.0")
messages = prompt.render(product_name="Aurora", audience="runners", variants=3)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prompts.budget import RenderBudget
from prompts.errors import (
    AigcError,
    InvalidInputs,
    InvalidTemplate,
    LibraryError,
    MissingVariables,
    PromptError,
    PromptNotFound,
    PromptSecurityError,
)
from prompts.registry import BUILTIN_LIBRARY, PromptRegistry
from prompts.schema import PromptMeta
from prompts.template import Message, Prompt

__all__ = [
    "BUILTIN_LIBRARY",
    "AigcError",
    "InvalidInputs",
    "InvalidTemplate",
    "LibraryError",
    "Message",
    "MissingVariables",
    "Prompt",
    "PromptError",
    "PromptMeta",
    "PromptNotFound",
    "PromptRegistry",
    "PromptSecurityError",
    "RenderBudget",
    "load_prompt",
]


def load_prompt(ref: str, *, dirs: Sequence[str | Path] = ()) -> Prompt:
    """Load one prompt version by reference from the built-in library plus ``dirs``.

    For many loads, build one :class:`PromptRegistry` and call ``registry.get(ref)``: it caches compiled prompts.
    """
    return PromptRegistry(dirs).get(ref)
