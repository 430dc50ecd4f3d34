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

from pydantic import ValidationError

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
    from chains import ModelsConfig

    env = os.environ if env is None else env
    data: dict = {}
    file = Path(path) if path else Path(DEFAULT_CONFIG_FILE)
    if path or file.exists():
        data = _read(file)
    for variable, (section, key) in _ENV.items():
        if env.get(variable):
            data.setdefault(section, {})[key] = env[variable]
    try:
        return ModelsConfig.model_validate(data)
    except ValidationError as exc:
        # Never echo input values: this file holds API keys.
        problems = "; ".join(f"models.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{file}: {problems} (environment variables count too: {', '.join(_ENV)})") from None


def _read(file: Path) -> dict:
    import yaml

    try:
        loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError(f"{file}:{line}: malformed YAML: {exc.problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read it: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{file}: expected a mapping with a 'models:' section")
    models = loaded.get("models", loaded)
    return models if isinstance(models, dict) else {}


class ConfigError(AigcError, ValueError):
    """The project configuration cannot be used; the message names the file and key, never a value."""
