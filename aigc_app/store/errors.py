"""The store's branch of the exception tree::

AigcError
└── StoreError                      a results store cannot be used
    ├── RunNotFound  (LookupError)  no run matches a reference (carries near ids)
    ├── StoreSchemaTooNew           the file was written by a newer aigc
    └── StoreUnwritable  (OSError)  the path cannot be created or written
"""

from __future__ import annotations

from pathlib import Path

from prompts.errors import AigcError

__all__ = ["RunNotFound", "StoreError", "StoreSchemaTooNew", "StoreUnwritable"]


class StoreError(AigcError):
    """A results store cannot be opened, read or written as asked."""


class RunNotFound(StoreError, LookupError):
    """A run reference (id, prefix or ``latest``) matches no run, or more than one."""

    def __init__(self, message: str, *, ref: str, near: list[str] | None = None) -> None:
        self.ref = ref
        self.near = near or []
        if self.near:
            message += " Did you mean: " + ", ".join(self.near) + "?"
        super().__init__(message + " (`aigc runs list` shows the runs)")


class StoreSchemaTooNew(StoreError):
    """The store's schema is newer than this code knows: it was written by a newer aigc."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        self.path, self.found, self.known = path, found, known
        super().__init__(f"{path}: created by a newer aigc (schema {found}, this one knows {known}): upgrade aigc")


class StoreUnwritable(StoreError, OSError):
    """The store's path cannot be created or written (missing folder permissions, a directory, a read-only disk)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        super().__init__(
            f"cannot write the results store {path}: {reason}. Pass --store PATH (or set AIGC_STORE) to a file "
            f"in a folder you can write"
        )
