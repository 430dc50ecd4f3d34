"""What one `aigc serve` process serves and its limits (the CLI builds it from flags, config and environment)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["ServeSettings"]


class ServeSettings(BaseModel):
    """Everything `create_app` needs; nothing here is read from the environment (the CLI does that)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    config: Path | None = Field(None, description="aigc.yaml with the models section; None: ./aigc.yaml if present.")
    api_key: SecretStr | None = Field(None, description="Required on every route but /health when set.")
    store: Path | None = Field(None, description="Results store; None: $AIGC_STORE or ./.aigc/results.db.")
    prompts_dirs: tuple[Path, ...] = Field((), description="Prompt libraries served beside the built-in one.")
    suites_dir: Path = Field(Path("suites"), description="Where the playground's 'save as case' writes suite files.")
    max_body_bytes: int = Field(1_000_000, gt=0, description="Larger request bodies get 413.")
    max_tokens_limit: int = Field(4096, gt=0, description="Largest max_tokens a request may ask for (400 above).")
    max_queue: int = Field(256, gt=0, description="Requests waiting per local model; beyond it 429 + Retry-After.")
