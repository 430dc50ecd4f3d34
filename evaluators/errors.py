"""Errors of the evaluator layer (a branch of the tree drawn in ``prompts/errors.py``)::

EvaluatorError
├── UnknownEvaluator  (LookupError)   no evaluator or instruction id of that name (lists the valid ones)
└── InvalidArguments  (ValueError)    wrong kwargs for an evaluator or instruction (names the expected ones)
"""

from __future__ import annotations

from prompts.errors import AigcError

__all__ = ["EvaluatorError", "InvalidArguments", "UnknownEvaluator"]


class EvaluatorError(AigcError):
    """A problem with an evaluator, its configuration or a suite."""


class UnknownEvaluator(EvaluatorError, LookupError):
    """No evaluator (or instruction id) of that name is registered."""


class InvalidArguments(EvaluatorError, ValueError):
    """An evaluator or instruction got arguments it does not take, or lacks ones it needs."""
