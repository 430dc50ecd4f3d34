"""The OpenAI-compatible API: /v1/chat/completions (JSON and SSE), /v1/models and /v1/moderations.

Requests are validated against OpenAI's shapes; a parameter we do not know is a 400 naming it (a silently
ignored parameter is how a client gets answers it did not ask for). Models come from :class:`ModelHub`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from aigc_app.server.errors import ERROR_DOC, ApiError, error_body, from_exception, validation_error
from aigc_app.server.hub import ROUTER_ID, Delta, Done, GenParams, ModelHub
from aigc_app.server.services import Services, services

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = ["ChatRequest", "router"]

router = APIRouter(tags=["openai"])
_STARTED = int(time.time())


class TextPart(BaseModel):
    """A text part of a message's content."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message; text content only (a string or text parts). Another field (tool_calls, audio, a typo) is a
    400 naming it rather than a part of the conversation silently dropped."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_call_id: str | None = Field(None, description="Of a tool message.")
    refusal: str | None = Field(None, description="Of an earlier assistant message; not shown to the model.")
    # What the openai client's own answer message holds, so `message.model_dump()` can go back into the history:
    # accepted empty, refused with content (they would be dropped from the conversation).
    tool_calls: list[Any] | None = Field(None, description="Accepted empty only (no tool calling).")
    function_call: Any = Field(None, description="Accepted null only.")
    audio: Any = Field(None, description="Accepted null only.")
    annotations: list[Any] | None = Field(None, description="Accepted and not shown to the model.")

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, content: Any) -> Any:
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind != "text":
                    raise ValueError(f"content part of type {kind!r} is not supported by aigc serve (text parts only)")
        elif content is not None and not isinstance(content, str):
            raise ValueError("content must be a string or a list of text parts")
        return content

    @field_validator("tool_calls", "function_call", "audio")
    @classmethod
    def _empty_only(cls, value: Any, info: ValidationInfo) -> Any:
        if value:
            raise ValueError(f"{info.field_name} in a message is not supported by aigc serve (no tool calling)")
        return value

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = Field(
        None, description='With type json_schema: {"name": ..., "schema": {a JSON Schema}, "strict": ...}.'
    )

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema":
            schema = (self.json_schema or {}).get("schema")
            if not isinstance(schema, dict):
                raise ValueError(
                    'type json_schema needs json_schema: {"name": "...", "schema": {...}}, the JSON Schema the '
                    "answer must match (or use type json_object for any JSON object)"
                )
        elif self.json_schema is not None:
            raise ValueError(f"json_schema is only read with type json_schema, not {self.type}")
        return self


class ChatRequest(BaseModel):
    """OpenAI's chat completion request, the parameters this server honours."""

    model_config = ConfigDict(extra="forbid")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=64)
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(None, ge=1, description="Omitted: 256 (or the server's max_tokens_limit if lower).")
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1, description="A 64-bit integer.")
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    frequency_penalty: float | None = Field(None, description="Accepted at 0 only.")
    presence_penalty: float | None = Field(None, description="Accepted at 0 only.")
    user: str | None = Field(None, description="Accepted and not used.")

    @field_validator("stop")
    @classmethod
    def _stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > 4:
            raise ValueError(f"at most 4 stop sequences, got {len(stop)}")
        return stop

    @field_validator("frequency_penalty", "presence_penalty")
    @classmethod
    def _no_penalty(cls, value: float | None) -> float | None:
        if value:
            raise ValueError("penalties are not supported by aigc serve; send 0 or leave it out")
        return value

    def params(self, limit: int) -> GenParams:
        """The generation parameters, ``max_tokens`` checked against the server's ``limit``."""
        max_tokens = self.max_completion_tokens or self.max_tokens
        if max_tokens is not None and max_tokens > limit:
            name = "max_completion_tokens" if self.max_completion_tokens else "max_tokens"
            raise ApiError(400, f"{name} is {max_tokens}, over this server's limit of {limit}", param=name)
        if self.top_logprobs and not self.logprobs:
            raise ApiError(400, "top_logprobs needs logprobs: true", param="top_logprobs")
        if self.stream_options is not None and not self.stream:
            raise ApiError(400, "stream_options is only allowed with stream: true", param="stream_options")
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        response_format = self.response_format.model_dump(exclude_none=True) if self.response_format else None
        if response_format and response_format["type"] == "text":
            response_format = None
        return GenParams(
            max_tokens=max_tokens if max_tokens is not None else min(limit, 256),
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stop=stop,
            logprobs=bool(self.logprobs),
            top_logprobs=self.top_logprobs or 0,
            response_format=response_format,
        )

    def to_messages(self) -> list[BaseMessage]:
        """LangChain messages (``developer`` is a system message, as OpenAI treats it)."""
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

        out: list[BaseMessage] = []
        for m in self.messages:
            name = {"name": m.name} if m.name else {}
            if m.role in ("system", "developer"):
                out.append(SystemMessage(m.text(), **name))
            elif m.role == "user":
                out.append(HumanMessage(m.text(), **name))
            elif m.role == "assistant":
                out.append(AIMessage(m.text(), **name))
            else:
                out.append(ToolMessage(m.text(), tool_call_id=m.tool_call_id or ""))
        return out


class Usage(BaseModel):
    """Tokens of one request (the prompt counted once however many choices)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AnswerMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int
    message: AnswerMessage
    logprobs: dict[str, Any] | None = Field(None, description='{"content": [OpenAI token logprobs], "refusal": null}')
    finish_reason: str = Field(description="stop or length")


class ChatCompletion(BaseModel):
    """The answer to a request without ``stream`` (OpenAI's ``chat.completion``)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[Choice]
    usage: Usage


class ModelCard(BaseModel):
    """One served model (OpenAI's ``model`` object)."""

    id: str = Field(examples=["hf:smollm2-135m-instruct", "aigc:router"])
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ModerationResult(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    category_applied_input_types: dict[str, list[str]]


class ModerationResponse(BaseModel):
    """OpenAI's moderation answer, one result per input text."""

    id: str
    model: str
    results: list[ModerationResult]


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``model`` as the documented JSON request body of a route that parses its body itself (to name unknown
    parameters), its ``$defs`` inlined so the schema stands alone in /openapi.json."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}


_CHAT_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ChatCompletion,
        "description": "JSON, or with stream: true server-sent events of chat.completion.chunk ending data: [DONE]",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **{status: ERROR_DOC for status in (400, 401, 404, 413, 429, 502)},
}


_UNSUPPORTED = {
    "tools": "tool calling is not supported by aigc serve",
    "tool_choice": "tool calling is not supported by aigc serve",
    "parallel_tool_calls": "tool calling is not supported by aigc serve",
    "functions": "function calling is not supported by aigc serve",
    "function_call": "function calling is not supported by aigc serve",
}


def _parse(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    accepted = list(ChatRequest.model_fields)
    for key in body:
        if key not in ChatRequest.model_fields:
            why = _UNSUPPORTED.get(key, "unknown parameter")
            raise ApiError(
                400, f"{why}: {key!r}; accepted parameters: {', '.join(accepted)}", param=key, code="unknown_parameter"
            )
    try:
        return ChatRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None


@router.post(
    "/v1/chat/completions",
    summary="Chat completion (OpenAI's API; stream: true for SSE)",
    openapi_extra=_body_doc(ChatRequest),
    responses=_CHAT_DOC,
)
async def chat_completions(request: Request, svc: Services = Depends(services)) -> Any:  # noqa: B008
    chat = _parse(await _json_body(request))
    params = chat.params(svc.settings.max_tokens_limit)
    hub = svc.hub
    events = hub.generate(chat.model, chat.to_messages(), params, chat.n, stream=chat.stream)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    if not chat.stream:
        with _backend_refusals():
            return JSONResponse(await _unless_gone(request, _collect(events, chat, completion_id)))
    with _backend_refusals():
        first = await anext(events)  # errors before the first token get their own status, not a broken stream
    include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
    secret = svc.settings.api_key.get_secret_value() if svc.settings.api_key else None
    body = _sse(first, events, chat, completion_id, include_usage, secret)
    return StreamingResponse(body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@contextlib.contextmanager
def _backend_refusals() -> Iterator[None]:
    """A ValueError from a backend is its refusal of the request's values (a 400 with its message), not a crash."""
    try:
        yield
    except ValueError as exc:  # our model errors among them (a context window exceeded is a ValueError too)
        raise from_exception(exc) from None


async def _unless_gone(request: Request, work: Any) -> Any:
    """Await ``work``; cancel it (and so its rows in the engine) if the client disconnects meanwhile."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.5)
        if done:
            return task.result()
        if await request.is_disconnected():
            task.cancel()
            raise ApiError(499, "the client closed the connection", type="client_closed_request")


async def _collect(events: AsyncIterator[Delta | Done], chat: ChatRequest, completion_id: str) -> dict[str, Any]:
    texts = [""] * chat.n
    logprobs: list[list[dict[str, Any]]] = [[] for _ in range(chat.n)]
    done: dict[int, Done] = {}
    async for event in events:
        if isinstance(event, Delta):
            texts[event.index] += event.text
            logprobs[event.index] += event.logprobs or []
        else:
            done[event.index] = event
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": texts[i], "refusal": None},
            "logprobs": {"content": logprobs[i], "refusal": None} if chat.logprobs else None,
            "finish_reason": done[i].finish_reason,
        }
        for i in range(chat.n)
    ]
    return {**_envelope(completion_id, chat.model, "chat.completion"), "choices": choices, "usage": _usage(done)}


def _envelope(completion_id: str, model: str, kind: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "aigc-serve",
    }


def _usage(done: dict[int, Done]) -> dict[str, int]:
    prompt = max((d.prompt_tokens for d in done.values()), default=0)  # one prompt, counted once
    completion = sum(d.completion_tokens for d in done.values())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def _sse(
    first: Delta | Done,
    events: AsyncIterator[Delta | Done],
    chat: ChatRequest,
    completion_id: str,
    include_usage: bool,
    secret: str | None,
) -> AsyncIterator[str]:
    envelope = _envelope(completion_id, chat.model, "chat.completion.chunk")
    done: dict[int, Done] = {}
    started: set[int] = set()

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> str:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        usage = {"usage": None} if include_usage else {}
        return f"data: {json.dumps({**envelope, 'choices': [choice], **usage})}\n\n"

    def render(event: Delta | Done) -> str:
        out = ""
        if event.index not in started:  # OpenAI's first chunk of a choice carries the role
            started.add(event.index)
            out += chunk(event.index, {"role": "assistant", "content": ""})
        if isinstance(event, Delta):
            lp = {"content": event.logprobs, "refusal": None} if chat.logprobs and event.logprobs else None
            return out + chunk(event.index, {"content": event.text}, logprobs=lp)
        done[event.index] = event
        return out + chunk(event.index, {}, finish=event.finish_reason)

    try:
        yield render(first)
        async for event in events:
            yield render(event)
    except Exception as exc:  # headers are sent: the error goes in the stream, as OpenAI does
        yield f"data: {json.dumps(error_body(from_exception(exc), secret))}\n\n"
        return
    finally:
        await events.aclose()  # a client that left: rows not yet decoding are cancelled
    if include_usage:
        final = {**envelope, "choices": [], "usage": _usage(done)}
        yield f"data: {json.dumps(final)}\n\n"
    yield "data: [DONE]\n\n"


# -- models -----------------------------------------------------------------------------------------------


def _model_card(model_id: str) -> dict[str, Any]:
    owner = "aigc" if model_id == ROUTER_ID else model_id.split(":", 1)[0]
    return {"id": model_id, "object": "model", "created": _STARTED, "owned_by": owner}


@router.get(
    "/v1/models", summary="The served models (OpenAI's list shape), aigc:router included", response_model=ModelList
)
def list_models(svc: Services = Depends(services)) -> dict[str, Any]:  # noqa: B008
    return {"object": "list", "data": [_model_card(m) for m in svc.hub.ids()]}


@router.get(
    "/v1/models/{model_id:path}", summary="One served model", response_model=ModelCard, responses={404: ERROR_DOC}
)
def get_model(model_id: str, svc: Services = Depends(services)) -> dict[str, Any]:  # noqa: B008
    hub: ModelHub = svc.hub
    if model_id not in hub.ids():
        hub.resolve(model_id)  # raises the 404 with the served ids and near names
    return _model_card(model_id)


# -- moderations ------------------------------------------------------------------------------------------


class ModerationRequest(BaseModel):
    """OpenAI's moderation request (text input only)."""

    model_config = ConfigDict(extra="forbid")

    input: str | list[str] = Field(description="A text or a list of texts (at least one).")

    @field_validator("input")
    @classmethod
    def _some(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("give a text or a non-empty list of texts")
        return value

    model: str | None = Field(None, description="Accepted; every request is scored by aigc's safety evaluators.")


@router.post(
    "/v1/moderations",
    summary="Moderation (OpenAI's shape) by aigc's safety evaluators",
    openapi_extra=_body_doc(ModerationRequest),
    response_model=ModerationResponse,
    responses={400: ERROR_DOC},
)
async def moderations(request: Request) -> dict[str, Any]:
    from fastapi.concurrency import run_in_threadpool

    from aigc_app.server.moderation import MODERATION_MODEL, moderate

    body = await _json_body(request)
    if isinstance(body, dict):
        unknown = [k for k in body if k not in ModerationRequest.model_fields]
        if unknown:
            accepted = ", ".join(ModerationRequest.model_fields)
            raise ApiError(400, f"unknown parameter: {unknown[0]!r}; accepted parameters: {accepted}", param=unknown[0])
    try:
        parsed = ModerationRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc.errors()) from None
    texts = [parsed.input] if isinstance(parsed.input, str) else parsed.input
    results = await run_in_threadpool(moderate, texts)
    return {"id": f"modr-{uuid.uuid4().hex[:24]}", "model": MODERATION_MODEL, "results": results}
