"""Real small things for tests: a local OpenAI-compatible HTTP server with scripted answers and faults, and a
tiny transformers model built offline (``build_tiny_model``).

Names load lazily, on first use, so that importing this package (or running one of its modules with
``python -m``) pulls in nothing heavy. To export a name, add it to ``_EXPORTS`` and ``__all__``.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chains.testing.openai_server import (
        Answer,
        Fault,
        ModerationResult,
        OpenAIServer,
        RecordedRequest,
        ToolCall,
        default_responder,
        load_script,
    )
    from chains.testing.tiny_model import build_tiny_model

__all__ = [
    "Answer",
    "Fault",
    "ModerationResult",
    "OpenAIServer",
    "RecordedRequest",
    "ToolCall",
    "build_tiny_model",
    "default_responder",
    "load_script",
]

_EXPORTS = MappingProxyType(
    {
        "Answer": "chains.testing.openai_server",
        "Fault": "chains.testing.openai_server",
        "ModerationResult": "chains.testing.openai_server",
        "OpenAIServer": "chains.testing.openai_server",
        "RecordedRequest": "chains.testing.openai_server",
        "ToolCall": "chains.testing.openai_server",
        "build_tiny_model": "chains.testing.tiny_model",
        "default_responder": "chains.testing.openai_server",
        "load_script": "chains.testing.openai_server",
    }
)


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first access."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """List exported names alongside the module's own."""
    return sorted({*globals(), *__all__})
