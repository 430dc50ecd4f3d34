"""Evaluators are found by name through a registry of factories.

Built-in areas each expose ``EVALUATORS: dict[name, factory]`` (adherence, safety, fluency, semantic, diversity,
judge, grounded). Third parties add evaluators through the ``aigc.evaluators`` entry-point group; each entry point
names a factory ``(**params) -> Evaluator``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from evaluators.base import Evaluator
from evaluators.errors import InvalidArguments, UnknownEvaluator, missing_dependency

__all__ = ["AREAS", "ENTRY_POINT_GROUP", "EvaluatorRegistry"]

ENTRY_POINT_GROUP = "aigc.evaluators"
AREAS = (
    "evaluators.adherence",
    "evaluators.safety",
    "evaluators.fluency",
    "evaluators.semantic",
    "evaluators.diversity",
    "evaluators.judge",
    "evaluators.grounded",
)
Factory = Callable[..., Evaluator]


class EvaluatorRegistry:
    """Evaluator name -> factory."""

    def __init__(
        self, factories: dict[str, Factory] | None = None, *, load_entry_points: bool = True, models_config: Any = None
    ) -> None:
        self.models_config = models_config  # handed to factories that take ``config`` (the judge tier)
        self._factories: dict[str, Factory] = {}
        for module in AREAS:
            self._factories.update(importlib.import_module(module).EVALUATORS)
        if load_entry_points:
            for point in entry_points(group=ENTRY_POINT_GROUP):
                self._factories.setdefault(point.name, _lazy(point))
        self._factories.update(factories or {})

    @property
    def names(self) -> list[str]:
        """Every registered evaluator name."""
        return sorted(self._factories)

    def register(self, name: str, factory: Factory) -> None:
        """Add or replace an evaluator."""
        self._factories[name] = factory

    def create(self, name: str, **params: Any) -> Evaluator:
        """Build the evaluator ``name`` with ``params``."""
        factory = self._factories.get(name)
        if factory is None:
            close = difflib.get_close_matches(name, self.names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownEvaluator(f"unknown evaluator {name!r}{hint}; registered: {', '.join(self.names)}")
        if self.models_config is not None and "config" not in params and _takes(factory, "config"):
            params = {**params, "config": self.models_config}
        try:
            return factory(**params)
        except TypeError as exc:
            raise InvalidArguments(f"evaluator {name!r} does not take these arguments: {exc}") from None
        except ImportError as exc:
            raise missing_dependency(name, exc) from None


def _takes(factory: Factory, name: str) -> bool:
    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def _lazy(point: Any) -> Factory:
    def factory(**params: Any) -> Evaluator:
        return point.load()(**params)

    return factory
