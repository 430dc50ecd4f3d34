"""LangChain chat models and chains: a local transformers backend, the OpenAI route, and a router over both.

from chains import ModelsConfig, Router, build_chain
router = Router.from_config(ModelsConfig.model_validate({"local": {"model": "hf:./tiny"}}))
chain = build_chain(load_prompt("marketing/ad_copy"), router)
"""

import importlib
from typing import Any

from chains.chain import build_chain
from chains.config import ModelsConfig, RouterConfig, load_config
from chains.errors import (
    AllBackendsFailed,
    AuthenticationFailed,
    BackendError,
    BackendTimeout,
    ContextWindowExceeded,
    InvalidConfig,
    ModelError,
    ModelUnavailable,
    RateLimited,
    StreamInterrupted,
    StructuredOutputError,
    UnknownModel,
)
from chains.local import ChatTransformers, loaded_models, unload_all, unload_model
from chains.registry import ModelRegistry
from chains.router import Router

__all__ = [
    "AllBackendsFailed",
    "AuthenticationFailed",
    "BackendError",
    "BackendTimeout",
    "ChatTransformers",
    "ContextWindowExceeded",
    "InvalidConfig",
    "ModelError",
    "ModelRegistry",
    "ModelUnavailable",
    "ModelsConfig",
    "RateLimited",
    "Router",
    "RouterConfig",
    "StreamInterrupted",
    "StructuredOutputError",
    "UnknownModel",
    "build_chain",
    "compose",
    "education",
    "load_config",
    "loaded_models",
    "marketing",
    "unload_all",
    "unload_model",
    "writing",
]

_TASK_MODULES = {
    "writing": "chains.tasks.writing",
    "marketing": "chains.tasks.marketing",
    "education": "chains.tasks.education",
    "compose": "chains.compose",
}


def __getattr__(name: str) -> Any:
    """``from chains import writing, marketing, education, compose``: the task chains, imported on first use."""
    if name in _TASK_MODULES:
        return importlib.import_module(_TASK_MODULES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
