"""What can go wrong in a comparison: runs or variants that cannot be put side by side."""

from __future__ import annotations

from prompts.errors import AigcError

__all__ = ["CompareError"]


class CompareError(AigcError):
    """Two runs or variants cannot be compared (unknown or ambiguous variant, nothing to pair)."""
