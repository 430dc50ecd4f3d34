"""The long-lived objects one server shares across requests: models config, prompt registries, the store path."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from fastapi import Request

from aigc_app.server.settings import ServeSettings

if TYPE_CHECKING:
    from aigc_app.server.hub import ModelHub
    from aigc_app.store import ResultsStore
    from chains import ModelsConfig
    from evaluators.suite import Suite
    from prompts import PromptRegistry
    from prompts.isolation import IsolatedWorker

__all__ = ["Services", "services"]


class Services:
    """Built lazily, once per app; a results store is opened per use (SQLite connections stay in one thread)."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()

    @cached_property
    def models_config(self) -> ModelsConfig:
        from aigc_app.settings import models_config

        return models_config(self.settings.config)

    @cached_property
    def registry(self) -> PromptRegistry:
        """The served prompt libraries (published versions in process, drafts in the isolated worker)."""
        from prompts import PromptRegistry

        return PromptRegistry(self.settings.prompts_dirs)

    @cached_property
    def untrusted_registry(self) -> PromptRegistry:
        """For templates received over HTTP: everything compiles and renders in the isolated worker."""
        from prompts import PromptRegistry

        return PromptRegistry(self.settings.prompts_dirs, isolate="all")

    @cached_property
    def draft_worker(self) -> IsolatedWorker:
        """The isolated worker that compiles and renders playground drafts (templates received over HTTP)."""
        from prompts.isolation import IsolatedWorker

        return IsolatedWorker(self.untrusted_registry.budget)

    @cached_property
    def evaluator_suites(self) -> dict[str, Suite]:
        """Evaluator suites built for /v1/score, by name (their models load once per server)."""
        return {}

    @cached_property
    def hub(self) -> ModelHub:
        """The served models (one loaded copy per hf: model, shared by every request) and ``aigc:router``."""
        from aigc_app.server.hub import ModelHub

        with self.lock:
            return ModelHub(self.models_config, max_queue=self.settings.max_queue)

    def open_store(self) -> ResultsStore:
        """A new connection to the results store; use it as a context manager."""
        from aigc_app.store import ResultsStore

        return ResultsStore(self.settings.store)


def services(request: Request) -> Services:
    """FastAPI dependency: the app's shared services."""
    return request.app.state.services
