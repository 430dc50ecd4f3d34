"""Errors of the evaluator layer (a branch of the tree drawn in ``prompts/errors.py``)::

EvaluatorError
├── UnknownEvaluator   (LookupError)   no evaluator or instruction id of that name (lists the valid ones)
├── InvalidArguments   (ValueError)    wrong kwargs for an evaluator or instruction (names the expected ones)
├── InvalidSuite       (ValueError)    a suite file that cannot be read or does not validate (names file and line)
└── MissingDependency  (ImportError)   an optional package an evaluator needs is not installed (names the extra)
"""

from __future__ import annotations

from prompts.errors import AigcError

__all__ = [
    "EvaluatorError",
    "InvalidArguments",
    "InvalidSuite",
    "MissingDependency",
    "UnknownEvaluator",
    "missing_dependency",
]


class EvaluatorError(AigcError):
    """A problem with an evaluator, its configuration or a suite."""


class UnknownEvaluator(EvaluatorError, LookupError):
    """No evaluator (or instruction id) of that name is registered."""


class InvalidArguments(EvaluatorError, ValueError):
    """An evaluator or instruction got arguments it does not take, or lacks ones it needs."""


class InvalidSuite(EvaluatorError, ValueError):
    """A suite file is missing, unreadable, not YAML, or not a valid suite definition."""


class MissingDependency(EvaluatorError, ImportError):
    """An evaluator needs an optional package that is not installed."""


def missing_dependency(evaluator: str, exc: ImportError) -> MissingDependency:
    """The error for ``evaluator`` failing on ``exc``: it names the package and the extra that installs it."""
    return MissingDependency(
        f"evaluator {evaluator!r} needs the package {exc.name!r}, which is not installed: "
        f"pip install -c constraints.txt 'aigc[eval]'",
        name=exc.name,
    )
