"""Task chains: typed factories over the prompt library, grouped by task (``writing``, ``marketing``, ``education``).

from chains import marketing
variants = marketing.ad_copy(model="openai:gpt-4o-mini").invoke({"product_name": "Aurora", "audience": "runners"})

Each factory is pinned to a prompt reference range (``ref=`` overrides it), takes its pydantic input model or a
mapping, and returns its pydantic output (validated, with one repair attempt; see :func:`chains.chain.chain`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from chains.chain import ChainError, chain
from prompts.template import _split_list

__all__ = ["TaskInput", "exact_items", "sections", "task_chain"]


class TaskInput(BaseModel):
    """Base of task input models: unknown fields are errors; fields left as None take the prompt's defaults."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _lists_from_strings(cls, data: Any) -> Any:
        """``--var key_benefits=a,b`` or ``'["a", "b"]'``: strings fill list fields, as for prompt inputs."""
        if not isinstance(data, dict):
            return data
        lists = {n for n, f in cls.model_fields.items() if "list[" in str(f.annotation)}
        return {k: _split_list(v) if k in lists else v for k, v in data.items()}


def task_chain(
    ref: str,
    input_model: type[TaskInput],
    output: type[BaseModel],
    *,
    name: str,
    pick: Callable[[Any], Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    **chain_kwargs: Any,
) -> Runnable[Any, Any]:
    """``input_model -> chain(ref, output=output) [-> pick]``, named ``name`` for callbacks."""

    def inputs(value: Any) -> dict[str, Any]:
        data = value.model_dump() if isinstance(value, BaseModel) else {**(defaults or {}), **dict(value)}
        try:
            checked = input_model.model_validate(data)
        except ValidationError as exc:
            raise ChainError(f"{name}: invalid input for {input_model.__name__}: {exc}") from None
        return checked.model_dump(exclude_none=True)

    body = RunnableLambda(inputs, name="validate_input") | chain(ref, output=output, **chain_kwargs)
    if pick is not None:
        body = body | RunnableLambda(pick, name="pick")
    return body.with_types(input_type=input_model).with_config(run_name=name)


def sections(text: str, level: str = "## ") -> dict[str, str]:
    """Markdown ``## Heading`` sections of ``text`` as ``{heading: body}`` (heading text before any ``:``)."""
    found: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(level):
            if current is not None:
                found[current] = "\n".join(lines).strip()
            current, lines = line[len(level) :].split(":", 1)[0].strip(), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        found[current] = "\n".join(lines).strip()
    return found


def exact_items(model: type[BaseModel], field: str, count: Any, *, low: int = 1, high: int = 20) -> dict[str, Any]:
    """``model``'s JSON Schema with list ``field`` held to ``count`` items (clamped to low..high), when known.

    Output classes return this from ``response_schema(inputs)``, so a grammar-constrained local model writes
    exactly the number of items asked for instead of being told so after the fact.
    """
    schema = model.model_json_schema()
    if isinstance(count, int) and not isinstance(count, bool):
        n = min(max(count, low), high)
        schema["properties"][field] = {**schema["properties"][field], "minItems": n, "maxItems": n}
    return schema
