"""Configuration of models and routing: explicit pydantic objects (a typo is an error), loadable from a file.

Environment variables are not read here; ``aigc_app`` reads them once and builds a :class:`ModelsConfig`.

    # aigc.yaml
    models:
      openai: {base_url: http://127.0.0.1:8000/v1, api_key: sk-..., timeout: 30}
      local: {model: hf:./models/qwen2.5-0.5b-instruct, device: auto}
      router:
        default: auto
        fallbacks: [hf:./models/qwen2.5-0.5b-instruct]
        retry: {max_attempts: 3}
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from chains.errors import InvalidConfig
from prompts.schema import TASKS

__all__ = [
    "CachePolicy",
    "CooldownPolicy",
    "LocalSettings",
    "ModelsConfig",
    "OpenAISettings",
    "Price",
    "RateLimit",
    "RetryPolicy",
    "RouterConfig",
    "RoutingRule",
    "load_config",
    "read_config_file",
    "validate_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenAISettings(_Strict):
    """Where and how to reach the OpenAI API or any server that speaks it (vLLM, TGI, Azure, LM Studio)."""

    base_url: str | None = Field(None, description="None means api.openai.com.")
    api_key: SecretStr | None = None
    organization: str | None = None
    model: str = Field("gpt-4o-mini", description="Model used when the router picks OpenAI by itself (auto).")
    timeout: float = Field(60.0, gt=0, description="Seconds per request.")

    @property
    def configured(self) -> bool:
        """Whether credentials (or a custom server) are set: what ``auto`` routing looks at."""
        return self.api_key is not None or self.base_url is not None


class LocalSettings(_Strict):
    """Defaults for ``hf:`` models."""

    model: str | None = Field(None, description="Model id used when the router picks a local model (auto).")
    device: str = "auto"
    dtype: str | None = "auto"
    device_map: str | None = None
    max_batch_size: int = Field(16, ge=1)
    max_wait_ms: float = Field(4.0, ge=0)
    timeout: float | None = None
    context_overflow: Literal["error", "truncate_left"] = "error"
    show_progress: bool = Field(False, description="Show transformers' progress bars and warnings while loading.")


class RetryPolicy(_Strict):
    """Retries of one backend within one call: exponential backoff with jitter, Retry-After honoured."""

    max_attempts: int = Field(3, ge=1)
    base_delay_s: float = Field(0.5, ge=0)
    max_delay_s: float = Field(20.0, ge=0)
    jitter: float = Field(0.25, ge=0, le=1, description="Random fraction added to or removed from each delay.")
    max_retry_after_s: float = Field(60.0, ge=0, description="A longer Retry-After moves on to the next backend.")


class CooldownPolicy(_Strict):
    """Circuit breaker: after ``failures`` consecutive failed calls a backend rests for ``cooldown_s``."""

    failures: int = Field(3, ge=1)
    cooldown_s: float = Field(30.0, ge=0)


class CachePolicy(_Strict):
    """Optional SQLite response cache; answers are stored under the backend that gave them."""

    path: str | None = None
    enabled_by_default: bool = False
    ttl_s: float | None = Field(None, gt=0, description="Rows older than this many seconds are misses; None: none.")
    busy_timeout_s: float = Field(
        2.0, ge=0, description="How long a locked cache is waited for before the read or write is skipped."
    )


class Price(_Strict):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class RateLimit(_Strict):
    """A backend's rate limit, shared by every worker of a run (the Ray executor keeps it in one actor)."""

    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0, description="Prompt plus max_tokens, estimated per call.")
    burst: float | None = Field(None, ge=1, description="Requests that may start at once; default: one second's.")


class RoutingRule(_Strict):
    """When every given condition holds, route to ``use`` (first matching rule wins)."""

    use: str
    task: list[str] | None = Field(None, description="Match the prompt's task (writing, marketing, ...).")
    prompt_tokens_over: int | None = Field(None, ge=0, description="Match prompts longer than this (estimated).")
    budget_exceeded: bool | None = Field(None, description="Match once the router's spend passed budget_usd.")

    @field_validator("task")
    @classmethod
    def _known_tasks(cls, tasks: list[str] | None) -> list[str] | None:
        for task in tasks or []:
            if task not in TASKS:
                raise ValueError(f"unknown task {task!r}{_did_you_mean(task, TASKS)} (tasks: {', '.join(TASKS)})")
        return tasks


class RouterConfig(_Strict):
    """How the router picks backends for a call."""

    default: str = Field("auto", description="A model id, or auto: OpenAI when configured, else the local model.")
    fallbacks: list[str] = Field(default_factory=list, description="Tried in order after the primary fails.")
    rules: list[RoutingRule] = Field(default_factory=list)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    cooldown: CooldownPolicy = Field(default_factory=CooldownPolicy)
    fallback_on: list[Literal["rate_limit", "timeout", "server", "connection", "context", "stream"]] = Field(
        default_factory=lambda: ["rate_limit", "timeout", "server", "connection", "context", "stream"]
    )
    budget_usd: float | None = Field(None, ge=0)
    prices: dict[str, Price] = Field(default_factory=dict)
    context_windows: dict[str, int] = Field(default_factory=dict)
    timeouts: dict[str, float] = Field(default_factory=dict, description="Seconds per call, per model id.")
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict, description="Per model id, for eval runs.")
    cache: CachePolicy = Field(default_factory=CachePolicy)


class ModelsConfig(_Strict):
    """Everything the model layer needs."""

    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    local: LocalSettings = Field(default_factory=LocalSettings)
    router: RouterConfig = Field(default_factory=RouterConfig)


def load_config(path: str | Path) -> ModelsConfig:
    """Read the ``models:`` section of a YAML project file (or the whole file if it has no such key)."""
    return validate_config(read_config_file(path), source=str(path))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The ``models:`` mapping of a YAML file; a file that cannot be read is an InvalidConfig naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidConfig(f"{path}: cannot read it: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidConfig(f"{path}:{_yaml_where(exc, text)}: malformed YAML: {_yaml_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidConfig(f"{path}: expected a mapping with a 'models:' section")
    models = data.get("models", data)
    if models is not None and not isinstance(models, dict):
        raise InvalidConfig(f"{path}: 'models:' must be a mapping (openai, local, router)")
    return models or {}


def _yaml_where(exc: yaml.YAMLError, text: str) -> int | str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return exc.problem_mark.line + 1
    position = getattr(exc, "position", None)  # a ReaderError: a character YAML does not allow
    return text.count("\n", 0, position) + 1 if isinstance(position, int) else "?"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        return (
            f"the control character U+{exc.character:04X} is not allowed; delete it, or write it as an escape "
            f"inside double quotes"
        )
    return str(getattr(exc, "problem", None) or type(exc).__name__)


def validate_config(
    data: Mapping[str, Any], *, source: str, origins: Mapping[tuple[str, ...], str] | None = None
) -> ModelsConfig:
    """Validate a ``models:`` mapping; each problem names ``source``, the key (with the nearest valid key for a
    typo) and, where ``origins`` says so, the environment variable that set it. Values are never echoed."""
    try:
        return ModelsConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(error, origins or {}) for error in exc.errors())
        raise InvalidConfig(f"{source}: {problems}") from None


def _problem(error: Any, origins: Mapping[tuple[str, ...], str]) -> str:
    loc = tuple(str(part) for part in error["loc"])
    where = "models." + ".".join(loc)
    if error["type"] == "extra_forbidden":
        allowed = _keys_at(loc[:-1])
        text = f"{where}: unknown key{_did_you_mean(loc[-1], allowed)} (keys here: {', '.join(allowed)})"
    else:
        text = f"{where}: {str(error['msg']).removeprefix('Value error, ')}"
    origin = next((variable for key, variable in origins.items() if loc[: len(key)] == key), None)
    return f"{text} (set by the environment variable {origin})" if origin else text


def _did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _keys_at(loc: tuple[str, ...]) -> list[str]:
    """The valid keys of the section at ``loc`` (list indexes and dict keys step into the item's section)."""
    model: type[BaseModel] = ModelsConfig
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            continue
        nested = _model_in(field.annotation)
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for arg in typing.get_args(annotation) if (m := _model_in(arg)) is not None), None)
