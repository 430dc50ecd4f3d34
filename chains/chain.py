"""Chains from versioned prompts: ``build_chain`` (prompt -> model -> text or JSON) and the ``chain`` factory.

``chain`` adds what an app needs around one prompt: a model named by id (through the router), a typed output
(text, the prompt's JSON schema, or a pydantic class) validated with one repair attempt, passages from a
LangChain ``BaseRetriever`` for a prompt that declares a ``context`` input, and few-shot examples from a
``BaseExampleSelector``. Each step is a named runnable, so callbacks see ``retrieve``, ``examples``, ``render``,
``model`` and ``parse``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jsonschema
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel, RunnablePassthrough
from pydantic import BaseModel

from chains.errors import StructuredOutputError
from chains.router import Router
from chains.structured import _INSTRUCTION, _REPAIR, _error_text, _schema_name, json_schema_of, structured_runnable
from prompts import Prompt, PromptRegistry
from prompts.errors import AigcError

if TYPE_CHECKING:
    from langchain_core.example_selectors import BaseExampleSelector
    from langchain_core.retrievers import BaseRetriever

    from chains.config import ModelsConfig

__all__ = [
    "ChainError",
    "Grounded",
    "ModelLike",
    "Source",
    "TextOutput",
    "build_chain",
    "call_options",
    "chain",
    "resolve_model",
    "validate_output",
]

_REPAIR_TEXT = "Your previous answer was not acceptable: {error}\nReply again with only the corrected text."

ModelLike = str | BaseChatModel | None
Output = type[BaseModel] | dict[str, Any] | str | None


class ChainError(AigcError, ValueError):
    """A chain cannot be built as asked (an output type it cannot produce, an example without input/output)."""


class TextOutput(BaseModel):
    """Base of output classes for text prompts: the whole answer is ``text``; validators add the rules."""

    text: str


@dataclass(frozen=True)
class Source:
    """One retrieved passage a result was grounded on."""

    id: str | None
    source: str | None
    text: str


@dataclass(frozen=True)
class Grounded:
    """A chain's output together with the passages its prompt's ``context`` was filled with."""

    output: Any
    sources: list[Source] = field(default_factory=list)

    @property
    def metadata(self) -> dict[str, Any]:
        """``{"sources": [{"id", "source"}, ...]}``: what to store or show next to the output."""
        return {"sources": [{"id": s.id, "source": s.source} for s in self.sources]}


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


def resolve_model(model: ModelLike, config: ModelsConfig | None = None) -> BaseChatModel:
    """A chat model from an id (``"openai:gpt-4o-mini"``, routed), a chat model as is, or None (the config's)."""
    if isinstance(model, BaseChatModel):
        return model
    from chains.config import ModelsConfig

    config = (config or ModelsConfig()).model_copy(deep=True)
    if model is not None:
        config.router.default = model
        config.router.fallbacks = [m for m in config.router.fallbacks if m != model]
    return Router.from_config(config)


def _model_options(prompt: Prompt, model: BaseChatModel, model_id: str | None) -> dict[str, Any]:
    options = call_options(prompt, model)
    if model_id and isinstance(model, Router) and model_id in model.backends:
        options["model"] = model_id
    return options


def chain(
    ref_or_prompt: str | Prompt,
    model: ModelLike = None,
    *,
    output: Output = None,
    retriever: BaseRetriever | None = None,
    examples: BaseExampleSelector | None = None,
    registry: PromptRegistry | None = None,
    config: ModelsConfig | None = None,
    query: Callable[[dict[str, Any]], str] | None = None,
    route: str | None = None,
    **model_kwargs: Any,
) -> Runnable[Any, Any]:
    """A Runnable from a prompt reference (or a Prompt), a model and an output type.

    ``output``: ``"text"``, a JSON Schema dict, or a pydantic class (validated with the prompt's inputs as
    validation context, so a validator can check, say, a platform's character limit). Default: the prompt's
    schema when its output format is json, else text. A validation failure gets one repair attempt showing
    the model the error, then :class:`StructuredOutputError` with the raw output (``.raw``).

    With ``retriever``, a prompt that declares a ``context`` input gets the top passages for ``query(inputs)``
    (default: the string inputs given, joined) and the chain returns :class:`Grounded`. With ``examples``, the selected
    examples (dicts with ``input`` and ``output``, chosen by similarity to the final user message, passed to the
    selector as ``input`` beside the prompt's inputs) go in as user/assistant turns before the final user message.
    ``route`` names the router backend to call (default: the router's choice, or the id given as ``model``);
    ``model_kwargs`` (``max_tokens``, ``temperature``, ...) override the prompt's generation defaults.
    """
    prompt = ref_or_prompt if isinstance(ref_or_prompt, Prompt) else (registry or PromptRegistry()).get(ref_or_prompt)
    if retriever is not None and "context" not in prompt.meta.inputs:
        raise ChainError(
            f"{prompt.ref} declares no 'context' input, so a retriever has nowhere to put its passages; "
            f"use a prompt with a context input (e.g. education/quiz) or drop the retriever"
        )
    chat = resolve_model(model, config)
    model_id = route or (model if isinstance(model, str) else None)
    options = {**_model_options(prompt, chat, model_id), **model_kwargs}
    schema = _output_schema(prompt, output)
    steps: Runnable[Any, Any] = RunnableLambda(lambda value: _as_dict(prompt, value), name="inputs")
    if retriever is not None:
        steps = steps | _retrieve_step(prompt, retriever, query or _default_query)
    if examples is not None:
        steps = steps | _examples_step(prompt, examples)
    render = RunnableLambda(lambda state: _render(prompt, state, schema), name="render")
    if schema is None:
        bound = chat.bind(**options).with_config(run_name="model")
        body = render | bound | StrOutputParser().with_config(run_name="parse")
        return _with_sources(steps, body) if retriever is not None else steps | body
    return steps | _structured_body(prompt, render, chat, options, schema, grounded=retriever is not None)


def _output_schema(prompt: Prompt, output: Output) -> type[BaseModel] | dict[str, Any] | None:
    if output == "text":
        return None
    if output is None:
        if prompt.meta.output.format == "json":
            return prompt.meta.output.schema_ or {"type": ["object", "array"]}
        return None
    if isinstance(output, dict) or (isinstance(output, type) and issubclass(output, BaseModel)):
        return output
    raise ChainError(f"output must be 'text', a JSON Schema dict or a pydantic class, not {output!r}")


def _as_dict(prompt: Prompt, value: Any) -> dict[str, Any]:
    """The chain's state: the input values checked against the prompt, its defaults filled in."""
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, Mapping):
        return {"inputs": prompt.validate_inputs(value), "given": dict(value)}
    raise ChainError(f"a chain takes a mapping of input values or a pydantic input model, not {type(value).__name__}")


def _default_query(inputs: dict[str, Any]) -> str:
    return "\n".join(str(v) for k, v in inputs.items() if k != "context" and isinstance(v, str) and v)


def _retrieve_step(prompt: Prompt, retriever: BaseRetriever, query: Callable[[dict[str, Any]], str]) -> Runnable:
    def sources_of(docs: list[Any]) -> list[Source]:
        return [
            Source(id=d.id or d.metadata.get("id"), source=d.metadata.get("source"), text=d.page_content) for d in docs
        ]

    def fill(state: dict[str, Any], docs: list[Any]) -> dict[str, Any]:
        sources = sources_of(docs)
        passages = "\n\n".join(f"[{i}] {s.text}" for i, s in enumerate(sources, 1))
        given = state["inputs"].get("context") or ""
        context = f"{given}\n\n{passages}".strip() if given else passages
        return {**state, "inputs": {**state["inputs"], "context": context}, "sources": sources}

    def run(state: dict[str, Any], config: Any) -> dict[str, Any]:
        return fill(state, retriever.invoke(query(state["given"]), config))

    async def arun(state: dict[str, Any], config: Any) -> dict[str, Any]:
        return fill(state, await retriever.ainvoke(query(state["given"]), config))

    return RunnableLambda(run, afunc=arun, name="retrieve")


def _examples_step(prompt: Prompt, selector: BaseExampleSelector) -> Runnable:
    """Examples chosen by similarity to the final user message (``input``) and the prompt's input values."""

    def turns(example: Mapping[str, Any]) -> list[BaseMessage]:
        if "input" not in example or "output" not in example:
            raise ChainError(
                f"a few-shot example needs 'input' and 'output' keys; this one has {sorted(example)}: "
                f"store examples as {{'input': ..., 'output': ...}}"
            )
        answer = example["output"]
        text = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
        return [HumanMessage(str(example["input"])), AIMessage(text)]

    def variables(state: dict[str, Any]) -> dict[str, str]:
        values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in state["given"].items()}
        last = [m for m in prompt.to_messages(state["inputs"]) if m.role == "user"][-1]
        return {**values, "input": last.content}

    def run(state: dict[str, Any]) -> dict[str, Any]:
        chosen = selector.select_examples(variables(state))
        return {**state, "examples": [m for example in chosen for m in turns(example)]}

    async def arun(state: dict[str, Any]) -> dict[str, Any]:
        chosen = await selector.aselect_examples(variables(state))
        return {**state, "examples": [m for example in chosen for m in turns(example)]}

    return RunnableLambda(run, afunc=arun, name="examples")


def _render(prompt: Prompt, state: dict[str, Any], schema: Any) -> list[BaseMessage]:
    messages = prompt.to_langchain(**state["inputs"])
    shots = state.get("examples") or []
    if shots:
        last = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
        messages = [*messages[:last], *shots, *messages[last:]]
    if isinstance(schema, dict) or (isinstance(schema, type) and _is_json_class(schema)):
        narrowed = _json_schema(schema, state["inputs"])
        instruction = _INSTRUCTION.format(schema=json.dumps(narrowed, ensure_ascii=False))
        messages = [SystemMessage(instruction), *messages]
    return messages


def _is_json_class(schema: type[BaseModel]) -> bool:
    """A pydantic class parsed from JSON (not wrapped around a text answer: see :class:`TextOutput`)."""
    return not issubclass(schema, TextOutput)


def _with_sources(steps: Runnable, body: Runnable) -> Runnable:
    both = RunnableParallel(output=body, sources=RunnableLambda(lambda s: s.get("sources", []), name="sources"))
    return steps | both | RunnableLambda(lambda r: Grounded(r["output"], r["sources"]), name="grounded")


def _json_schema(schema: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The schema for this call: a pydantic class may narrow it to the inputs with ``response_schema(inputs)``
    (say, exactly the number of items asked for), which grammar-constrained local decoding then enforces."""
    narrow = getattr(schema, "response_schema", None)
    return narrow(inputs) if callable(narrow) else json_schema_of(schema)


def _hint(schema: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(schema, type) and not _is_json_class(schema):
        return {}
    json_schema = _json_schema(schema, inputs)
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": _schema_name(json_schema), "schema": json_schema, "strict": False},
        }
    }


class _Call:
    """The model step of a structured chain: the call options plus the per-call schema hint."""

    def __init__(self, chat: BaseChatModel, options: dict[str, Any], schema: Any) -> None:
        self.chat, self.options, self.schema = chat, options, schema

    def invoke(self, messages: list[BaseMessage], inputs: dict[str, Any], config: Any) -> BaseMessage:
        return self.chat.invoke(messages, config, **self.options, **_hint(self.schema, inputs))

    async def ainvoke(self, messages: list[BaseMessage], inputs: dict[str, Any], config: Any) -> BaseMessage:
        return await self.chat.ainvoke(messages, config, **self.options, **_hint(self.schema, inputs))

    def runnable(self) -> Runnable:
        def run(state: dict[str, Any], config: Any) -> BaseMessage:
            return self.invoke(state["messages"], state["inputs"], config)

        async def arun(state: dict[str, Any], config: Any) -> BaseMessage:
            return await self.ainvoke(state["messages"], state["inputs"], config)

        return RunnableLambda(run, afunc=arun, name="model")


def _structured_body(
    prompt: Prompt,
    render: Runnable,
    chat: BaseChatModel,
    options: dict[str, Any],
    schema: Any,
    *,
    grounded: bool,
) -> Runnable:
    call = _Call(chat, options, schema)
    parse = _parser(prompt, call, schema)
    generate = RunnablePassthrough.assign(messages=render) | RunnablePassthrough.assign(raw=call.runnable())
    if grounded:
        return generate | parse | RunnableLambda(lambda r: Grounded(r[0], r[1]), name="grounded")
    return generate | parse | RunnableLambda(lambda r: r[0], name="output")


def _parser(prompt: Prompt, model: _Call, schema: Any) -> Runnable:
    checker = _json_validator(schema) if isinstance(schema, dict) else schema

    def check(raw: BaseMessage, inputs: dict[str, Any]) -> tuple[Any, Exception | None]:
        try:
            return validate_output(checker, raw.text, inputs), None
        except (ValueError, TypeError, jsonschema.ValidationError) as exc:  # JSON syntax, pydantic, JSON Schema
            return None, exc

    def fail(raw: BaseMessage, error: Exception) -> StructuredOutputError:
        title = json_schema_of(schema).get("title", "the schema") if _is_json_class_or_dict(schema) else schema
        exc = StructuredOutputError(
            f"{prompt.ref}: the model's output did not validate against {getattr(title, '__name__', title)} after "
            f"one repair attempt: {_error_text(error)}; output was {raw.text[:200]!r}"
        )
        exc.raw = raw.text
        return exc

    template = _REPAIR if _is_json_class_or_dict(schema) else _REPAIR_TEXT

    def repair(state: dict[str, Any], error: Exception) -> list[BaseMessage]:
        return [*state["messages"], state["raw"], HumanMessage(template.format(error=_error_text(error)))]

    def run(state: dict[str, Any], config: Any) -> tuple[Any, list[Source]]:
        parsed, error = check(state["raw"], state["inputs"])
        if error is not None:
            raw = model.invoke(repair(state, error), state["inputs"], config)
            parsed, error = check(raw, state["inputs"])
            if error is not None:
                raise fail(raw, error) from error
        return parsed, state.get("sources", [])

    async def arun(state: dict[str, Any], config: Any) -> tuple[Any, list[Source]]:
        parsed, error = check(state["raw"], state["inputs"])
        if error is not None:
            raw = await model.ainvoke(repair(state, error), state["inputs"], config)
            parsed, error = check(raw, state["inputs"])
            if error is not None:
                raise fail(raw, error) from error
        return parsed, state.get("sources", [])

    return RunnableLambda(run, afunc=arun, name="parse")


def _is_json_class_or_dict(schema: Any) -> bool:
    return isinstance(schema, dict) or _is_json_class(schema)


def validate_output(schema: Any, text: str, inputs: Mapping[str, Any] | None = None) -> Any:
    """``text`` checked against ``schema``: JSON for a JSON Schema (dict or validator) or a pydantic class, the
    whole text for a :class:`TextOutput` class.

    Pydantic classes get ``{"inputs": inputs}`` as validation context.
    """
    from chains.structured import extract_json

    context = {"inputs": dict(inputs or {})}
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        if not _is_json_class(schema):
            return schema.model_validate({"text": text.strip()}, context=context)
        return schema.model_validate(extract_json(text), context=context)
    validator = _json_validator(schema) if isinstance(schema, dict) else schema
    value = extract_json(text)
    validator.validate(value)
    return value


def _json_validator(schema: dict[str, Any]) -> Any:
    """A JSON Schema validator, the schema itself checked once (``jsonschema.validate`` re-checks it per call)."""
    kind = jsonschema.validators.validator_for(schema)
    kind.check_schema(schema)
    return kind(schema)
