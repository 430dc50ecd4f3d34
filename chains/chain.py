"""``build_chain``: a versioned prompt piped into a chat model, with the prompt's own generation defaults."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable

from chains.router import Router
from chains.structured import structured_runnable
from prompts import Prompt

__all__ = ["build_chain", "call_options"]


def call_options(prompt: Prompt, model: BaseChatModel) -> dict[str, Any]:
    """Per-call kwargs from the prompt's ``model`` defaults (and, for a Router, its task and preferred model)."""
    defaults = prompt.meta.model
    options: dict[str, Any] = {k: v for k, v in defaults.model_dump(exclude={"id"}).items() if v is not None}
    if isinstance(model, Router):
        options["task"] = prompt.meta.task
        if defaults.id and defaults.id in model.backends:
            options["model"] = defaults.id
    return options


def build_chain(prompt: Prompt, model: BaseChatModel) -> Runnable[dict[str, Any], Any]:
    """``inputs -> messages -> model -> text`` (or a validated JSON value when the prompt's output is JSON)."""
    bound = model.bind(**call_options(prompt, model))
    schema = prompt.meta.output.schema_
    if prompt.meta.output.format == "json":
        return prompt.as_runnable() | structured_runnable(bound, schema or {"type": ["object", "array"]})
    return prompt.as_runnable() | bound | StrOutputParser()
