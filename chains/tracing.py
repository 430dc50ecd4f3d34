"""LangSmith tracing parameters shared by our chat models."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import LangSmithParams

__all__ = ["ls_params"]


def ls_params(
    provider: str, model: str, model_attrs: Any, stop: list[str] | None, kwargs: dict[str, Any]
) -> LangSmithParams:
    """The standard ``ls_*`` parameters: per-call values first, then the model's own settings."""
    params = LangSmithParams(
        ls_provider=provider,
        ls_model_name=kwargs.get("model") or model,
        ls_model_type="chat",
        ls_temperature=kwargs.get("temperature", model_attrs.temperature),
        ls_max_tokens=kwargs.get("max_tokens", model_attrs.max_tokens),
    )
    if stop or model_attrs.stop:
        params["ls_stop"] = stop or model_attrs.stop
    return params
