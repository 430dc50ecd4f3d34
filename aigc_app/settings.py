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

from prompts.errors import AigcError

if TYPE_CHECKING:
    from chains import ModelsConfig

__all__ = ["DEFAULT_CONFIG_FILE", "ConfigError", "models_config"]

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
    from chains import InvalidConfig
    from chains.config import read_config_file, validate_config

    env = os.environ if env is None else env
    data: dict = {}
    file = Path(path) if path else Path(DEFAULT_CONFIG_FILE)
    origins: dict[tuple[str, ...], str] = {}
    try:
        if path or file.exists():
            data = read_config_file(file)
        for variable, (section, key) in _ENV.items():
            if env.get(variable):
                section_data = data.get(section) or {}
                if isinstance(section_data, dict):  # anything else is reported as it is by the validation
                    data[section] = {**section_data, key: env[variable]}
                    origins[(section, key)] = variable
        # Never echo input values: this file holds API keys.
        return validate_config(data, source=str(file), origins=origins)
    except InvalidConfig as exc:
        raise ConfigError(str(exc)) from None


class ConfigError(AigcError, ValueError):
    """The project configuration cannot be used; the message names the file and key, never a value."""
