"""The application edge: the one place that reads environment variables and the project config file.

Order (later wins): defaults, ``aigc.yaml`` (or ``--config``), environment variables, command-line flags.

| variable | sets |
|---|---|
| ``OPENAI_API_KEY`` | ``models.openai.api_key`` |
| ``OPENAI_BASE_URL`` | ``models.openai.base_url`` (any OpenAI-compatible server) |
| ``AIGC_OPENAI_MODEL`` | ``models.openai.model`` |
| ``AIGC_LOCAL_MODEL`` | ``models.local.model``, e.g. ``hf:./models/qwen2.5-0.5b-instruct`` |
| ``AIGC_MODEL`` | ``models.router.default`` (a model id or ``auto``) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chains import ModelsConfig

__all__ = ["DEFAULT_CONFIG_FILE", "models_config"]

DEFAULT_CONFIG_FILE = "aigc.yaml"
_ENV = {
    "OPENAI_API_KEY": ("openai", "api_key"),
    "OPENAI_BASE_URL": ("openai", "base_url"),
    "AIGC_OPENAI_MODEL": ("openai", "model"),
    "AIGC_LOCAL_MODEL": ("local", "model"),
    "AIGC_MODEL": ("router", "default"),
}


def models_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> ModelsConfig:
    """The models configuration for this process: file, then environment on top."""
    import yaml

    from chains import ModelsConfig

    env = os.environ if env is None else env
    data: dict = {}
    file = Path(path) if path else Path(DEFAULT_CONFIG_FILE)
    if path or file.exists():
        loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        data = loaded.get("models", loaded) if isinstance(loaded, dict) else {}
    for variable, (section, key) in _ENV.items():
        if env.get(variable):
            data.setdefault(section, {})[key] = env[variable]
    return ModelsConfig.model_validate(data)
