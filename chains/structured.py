"""Structured output for any chat model: the schema in the prompt and as ``response_format``, parse, and one repair
retry.

Every model gets the schema twice: in a system message, and as OpenAI's ``response_format``, which servers with a
native JSON mode (OpenAI, vLLM, TGI) and the local ``ChatTransformers`` (grammar-constrained decoding, see
:mod:`chains.constrained`) enforce while decoding. Backends that ignore it rely on the instruction. When an answer
does not parse or validate (a model without a JSON mode, an answer cut at ``max_tokens``, or a rule no grammar can
check, such as ``uniqueItems``), the model sees its answer and the validation error once and may correct it.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ValidationError
from pydantic.v1 import BaseModel as BaseModelV1

from chains.errors import StructuredOutputError

__all__ = ["extract_json", "json_schema_of", "structured_runnable"]

_INSTRUCTION = (
    "Answer with one JSON value and nothing else: no prose, no code fences. It must validate against this "
    "JSON Schema:\n{schema}"
)
_REPAIR = (
    "Your previous answer did not validate against the JSON Schema: {error}\n"
    "Reply again with only the corrected JSON value."
)


def json_schema_of(schema: type | dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of a pydantic class, a TypedDict, an OpenAI function dict or a JSON Schema dict."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    if isinstance(schema, dict):
        if "function" in schema and isinstance(schema["function"], dict):
            schema = schema["function"]
        if "parameters" in schema and "properties" not in schema:
            return {"title": schema.get("name", "output"), **schema["parameters"]}
        return schema
    from langchain_core.utils.function_calling import convert_to_json_schema

    return convert_to_json_schema(schema)


def extract_json(text: str) -> Any:
    """The first JSON object or array in ``text`` (code fences and surrounding prose are ignored)."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError("the answer contains no JSON object or array")
    value, _ = json.JSONDecoder().raw_decode(text[min(starts) :])
    return value


def _validate(schema: type | dict[str, Any], text: str) -> Any:
    value = extract_json(text)
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_validate(value)
    if isinstance(schema, type) and issubclass(schema, BaseModelV1):
        return schema.parse_obj(value)
    jsonschema.validate(value, json_schema_of(schema))
    return value


def _traced_schema(schema: type | dict[str, Any]) -> dict[str, Any]:
    """The schema as LangChain's tracing reports it (``convert_to_json_schema``)."""
    from langchain_core.utils.function_calling import convert_to_json_schema

    try:
        return convert_to_json_schema(schema)
    except (ValueError, TypeError):
        return json_schema_of(schema)


def _schema_name(json_schema: dict[str, Any]) -> str:
    title = str(json_schema.get("title") or "output")
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in title)[:64]


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()[:5])
    return str(getattr(exc, "message", exc)).splitlines()[0]


def structured_runnable(
    model: BaseChatModel,
    schema: type | dict[str, Any],
    *,
    include_raw: bool = False,
) -> Runnable[LanguageModelInput, Any]:
    """A Runnable returning a validated instance of ``schema`` (or ``{raw, parsed, parsing_error}``)."""
    json_schema = json_schema_of(schema)
    instruction = SystemMessage(_INSTRUCTION.format(schema=json.dumps(json_schema, ensure_ascii=False)))
    # Servers with a native JSON mode (OpenAI, vLLM, TGI) and local models decode under response_format; the
    # instruction above tells the model what the fields mean, and carries the schema to backends without one.
    hint = {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": _schema_name(json_schema), "schema": json_schema, "strict": False},
        },
        "ls_structured_output_format": {"kwargs": {"method": "json_schema"}, "schema": _traced_schema(schema)},
    }

    def messages_of(value: LanguageModelInput) -> list[BaseMessage]:
        return [instruction, *model._convert_input(value).to_messages()]

    def finish(raw: AIMessage, parsed: Any, error: Exception | None) -> Any:
        if include_raw:
            return {"raw": raw, "parsed": parsed, "parsing_error": error}
        if error is not None:
            raise StructuredOutputError(
                f"the model's output did not validate against {json_schema_of(schema).get('title', 'the schema')} "
                f"after one repair attempt: {_error_text(error)}; output was {raw.text[:200]!r}"
            ) from error
        return parsed

    def attempt(raw: AIMessage) -> tuple[Any, Exception | None]:
        try:
            return _validate(schema, raw.text), None
        except (ValueError, jsonschema.ValidationError) as exc:  # JSON syntax, pydantic or JSON Schema errors
            return None, exc

    def run(value: LanguageModelInput, config: Any = None) -> Any:
        messages = messages_of(value)
        raw = model.invoke(messages, config, **hint)
        parsed, error = attempt(raw)
        if error is not None:
            repair = [*messages, raw, HumanMessage(_REPAIR.format(error=_error_text(error)))]
            raw = model.invoke(repair, config, **hint)
            parsed, error = attempt(raw)
        return finish(raw, parsed, error)

    async def arun(value: LanguageModelInput, config: Any = None) -> Any:
        messages = messages_of(value)
        raw = await model.ainvoke(messages, config, **hint)
        parsed, error = attempt(raw)
        if error is not None:
            repair = [*messages, raw, HumanMessage(_REPAIR.format(error=_error_text(error)))]
            raw = await model.ainvoke(repair, config, **hint)
            parsed, error = attempt(raw)
        return finish(raw, parsed, error)

    return RunnableLambda(run, afunc=arun, name="structured_output")
