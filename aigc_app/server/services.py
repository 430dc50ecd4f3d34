"""The long-lived objects one server shares across requests: models config, prompt registries, the store path."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from fastapi import Request

from aigc_app.server.settings import ServeSettings

if TYPE_CHECKING:
    from aigc_app.store import ResultsStore
    from chains import ModelsConfig
    from prompts import PromptRegistry

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

    def open_store(self) -> ResultsStore:
        """A new connection to the results store; use it as a context manager."""
        from aigc_app.store import ResultsStore

        return ResultsStore(self.settings.store)


def services(request: Request) -> Services:
    """FastAPI dependency: the app's shared services."""
    return request.app.state.services
