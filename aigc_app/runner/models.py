"""Which model an eval runs on when the suite says ``auto``, and checks of the model ids a suite names.

Order: OpenAI (or a compatible server) when configured; else the configured local model; else the pulled SmolLM2;
else a tiny random-weight model built offline once into the model cache, whose text is meaningless: the run says so
in the terminal and in the report, with how to point it at a real model.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from aigc_app.runner.errors import SuiteError
from chains.config import ModelsConfig

__all__ = ["TINY_MODEL_NAME", "TINY_MODEL_NOTE", "ModelChoice", "best_available_model", "check_model_id"]

TINY_MODEL_NAME = "aigc-tiny-offline"
TINY_MODEL_NOTE = (
    "No real model is available, so this run used a tiny random-weight model built offline: its text is "
    "meaningless and its scores say nothing about the prompts. Point the run at a real model with "
    "`aigc models pull smollm2` (a small local model, no API key), or set OPENAI_API_KEY (or OPENAI_BASE_URL), "
    "or pass --model."
)


@dataclass(frozen=True)
class ModelChoice:
    """The model ``auto`` resolves to, what kind it is, and a note to show when its answers mean nothing."""

    model_id: str
    kind: str  # "openai" | "local" | "tiny"
    note: str | None = None


def best_available_model(config: ModelsConfig) -> ModelChoice:
    """OpenAI when configured, else the configured or pulled local model, else the tiny offline model."""
    from chains.model_store import default_local_model

    if config.openai.configured:
        return ModelChoice(f"openai:{config.openai.model}", "openai")
    if config.router.default != "auto":
        return ModelChoice(config.router.default, "configured")
    local = config.local.model or default_local_model()
    if local:
        return ModelChoice(local, "local")
    tiny_model_path()
    return ModelChoice(f"hf:{TINY_MODEL_NAME}", "tiny", TINY_MODEL_NOTE)  # a cache name: the same id everywhere


def tiny_model_path() -> Path:
    """The tiny offline model's folder in the model cache, built on first use (a few seconds)."""
    from chains.model_store import models_dir

    folder = models_dir() / TINY_MODEL_NAME
    if (folder / "config.json").is_file():
        return folder
    try:
        from chains.testing.tiny_model import build_tiny_model
    except ImportError as exc:  # the local extra (torch, transformers) is missing
        raise SuiteError(
            f"no model is available: {exc}. Set OPENAI_API_KEY (or OPENAI_BASE_URL), or install the local extra "
            f"(pip install 'aigc[local]') and run `aigc models pull smollm2`, or pass --model"
        ) from None
    staging = folder.with_name(f".{TINY_MODEL_NAME}-{os.getpid()}")
    build_tiny_model(staging, context=8192)  # the built-in prompts and their budgets need the window
    try:
        staging.rename(folder)
    except OSError:  # another process built it first
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return folder


def check_model_id(model_id: str, providers: list[str], where: str) -> None:
    """Refuse an id with an unknown provider or an ``hf:`` name that is neither a folder nor pulled, with near names."""
    from chains.model_store import KNOWN_MODELS, cached_path, known, list_models

    provider, sep, name = model_id.partition(":")
    if not sep or not name:
        raise SuiteError(f"{where}: model {model_id!r} must look like provider:model (openai:gpt-4o-mini, hf:smollm2)")
    if provider not in providers:
        close = difflib.get_close_matches(provider, providers, n=1)
        hint = f"; did you mean {close[0]}:{name}?" if close else ""
        raise SuiteError(f"{where}: unknown model provider {provider!r}{hint} (providers: {', '.join(providers)})")
    if provider != "hf" or "/" in name or os.path.isdir(name) or cached_path(name) or known(name):
        return
    names = [m.name for m in list_models()] + [n for m in KNOWN_MODELS.values() for n in (m.name, *m.aliases)]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f"; did you mean hf:{close[0]}?" if close else ""
    raise SuiteError(
        f"{where}: model {model_id!r} is neither a folder nor in aigc's model cache{hint} "
        f"(`aigc models list` shows the cache; `aigc models pull smollm2` fetches the default)"
    )
