"""The ASGI app: mounts the OpenAI-compatible API, the prompt and run APIs and the pages on one FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from aigc_app.server.services import Services
from aigc_app.server.settings import ServeSettings

__all__ = ["create_app"]


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """A FastAPI app serving ``settings`` (defaults: 127.0.0.1, ./aigc.yaml, the default store)."""
    from importlib.metadata import version

    settings = settings or ServeSettings()
    app = FastAPI(title="aigc", version=version("aigc"), description="OpenAI-compatible API, prompts and runs.")
    app.state.settings = settings
    app.state.services = Services(settings)

    from aigc_app.server.errors import install_error_handlers
    from aigc_app.server.security import install_security

    install_error_handlers(app)
    install_security(app, settings)  # the API key on every route but /health and /login; the body size limit

    from aigc_app.server import cases, openai_api, pages, prompts_api, runs_api, scoring_api

    app.include_router(openai_api.router)
    app.include_router(prompts_api.router)
    app.include_router(runs_api.router)
    app.include_router(scoring_api.router)
    app.include_router(cases.router)
    app.include_router(pages.router)

    @app.get("/health", tags=["server"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    from aigc_app.server.errors import openapi_without_422

    app.openapi = lambda: openapi_without_422(app)  # type: ignore[method-assign]
    return app
