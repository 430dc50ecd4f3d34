"""Errors of the eval runner (the ``RunError`` branch of the tree drawn in ``prompts/errors.py``)::

RunError                            (a model failing every case is not an error: the run's status is failed)
├── SuiteError        (ValueError)   the suite file, its cases or its references cannot be used
├── CostLimitExceeded               the estimated cost is over --max-cost: the run did not start
└── RunInterrupted                  Ctrl-C: the run is marked interrupted and can be resumed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prompts.errors import AigcError

if TYPE_CHECKING:
    from aigc_app.results import RunInfo

__all__ = ["CostLimitExceeded", "RunError", "RunInterrupted", "SuiteError"]


class RunError(AigcError):
    """A problem with an eval run."""


class SuiteError(RunError, ValueError):
    """The suite cannot be run; the message names the file, the line and the field."""


class CostLimitExceeded(RunError):
    """The estimated cost of the plan is over the limit given with --max-cost."""


class RunInterrupted(RunError):
    """The run was stopped by Ctrl-C; ``info.resume_command`` completes it."""

    def __init__(self, message: str, info: RunInfo) -> None:
        self.info = info
        super().__init__(message)
