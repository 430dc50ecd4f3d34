"""The exception tree of aigc.

The root lives here, in the lowest layer, so that every layer can raise a subclass without importing
an upper one. Each layer adds its own branch in its own ``errors`` module::

    AigcError
    ├── PromptError                         prompts/errors.py
    │   ├── PromptNotFound      (LookupError)   unknown prompt, version, range or label
    │   ├── InvalidTemplate     (ValueError)    malformed front matter or Jinja, undeclared variable
    │   ├── PromptSecurityError                 sandbox violation or render budget exceeded
    │   ├── InvalidInputs       (ValueError)    wrong type, enum value or length of an input
    │   │   └── MissingVariables                a required input was not given
    │   └── LibraryError                        lock, label or library layout problems
    ├── ModelError                          chains/errors.py
    ├── EvaluatorError                      evaluators/errors.py
    └── RunError                            aigc_app

Exit codes and HTTP statuses are chosen only in ``aigc_app``.
"""

from __future__ import annotations

__all__ = [
    "AigcError",
    "InvalidInputs",
    "InvalidTemplate",
    "LibraryError",
    "MissingVariables",
    "PromptError",
    "PromptNotFound",
    "PromptSecurityError",
]


class AigcError(Exception):
    """Root of every error aigc raises on purpose."""


class PromptError(AigcError):
    """A problem with a prompt template, its library or its inputs."""


class PromptNotFound(PromptError, LookupError):
    """A reference names no known prompt, version, range match or label."""

    def __init__(self, message: str, *, ref: str, suggestions: list[str] | None = None) -> None:
        self.ref = ref
        self.suggestions = suggestions or []
        if self.suggestions:
            message += " Did you mean: " + ", ".join(self.suggestions) + "?"
        super().__init__(message)


class InvalidTemplate(PromptError, ValueError):
    """A template file cannot be loaded; ``path`` and ``line`` say where."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.detail = message
        where = f"{path}:{line}" if path and line else (path or "")
        super().__init__(f"{where}: {message}" if where else message)


class PromptSecurityError(InvalidTemplate):
    """A template tried something the sandbox forbids, or ran past its render budget."""


class InvalidInputs(PromptError, ValueError):
    """Input values do not match the prompt's declared inputs."""

    def __init__(self, message: str, *, prompt: str, problems: list[str] | None = None) -> None:
        self.prompt = prompt
        self.problems = problems or []
        super().__init__(message)


class MissingVariables(InvalidInputs):
    """One or more required inputs were not given."""

    def __init__(
        self, message: str, *, prompt: str, missing: list[str], declared: list[str], problems: list[str] | None = None
    ) -> None:
        self.missing = missing
        self.declared = declared
        super().__init__(message, prompt=prompt, problems=[f"missing: {m}" for m in missing] + (problems or []))


class LibraryError(PromptError):
    """The prompt library is inconsistent: name collisions, bad lock or label files."""
