"""A real local HTTP server that speaks OpenAI's API, with scripted answers and injectable faults.

Tests point the real ``openai`` client or LangChain's ``ChatOpenAI`` at it; people run it by hand:

    with OpenAIServer() as server:
        server.script("Hello!", Fault.rate_limit(retry_after=1.5), Answer.tool("get_weather", {"city": "Paris"}))
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")

    python -m chains.testing.openai_server --port 8000 --script answers.yaml

Each chat request takes the next scripted item (per model first, then shared); an empty queue falls back to a
responder, by default an echo that also fills a requested JSON schema or a forced tool call. Only the standard
library speaks HTTP here; pydantic validates script items and pyyaml reads script files.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import logging
import re
import socket
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_FLAG_WORDS",
    "MODERATION_CATEGORIES",
    "Answer",
    "Fault",
    "ModerationResult",
    "OpenAIServer",
    "RecordedRequest",
    "Responder",
    "ToolCall",
    "count_tokens",
    "default_responder",
    "load_script",
    "main",
    "schema_instance",
    "tokenize",
]

_LOG = logging.getLogger(__name__)
_TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "openai-api-key", "cookie"}
)
_FINGERPRINT = "fp_aigc_testing"

MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
DEFAULT_FLAG_WORDS: Mapping[str, str] = MappingProxyType(
    {"kill": "violence", "murder": "violence", "bomb": "illicit/violent", "hate": "hate", "idiot": "harassment"}
)


# ---------------------------------------------------------------------------------------------- script items


class ToolCall(BaseModel):
    """A function call the fake model makes; ``arguments`` is a dict or an already-encoded JSON string."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = None


class Answer(BaseModel):
    """One scripted assistant reply: text, tool calls, or both, with optional delay, logprobs and usage."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    delay_s: float = Field(default=0.0, ge=0)
    top_logprobs: dict[str, float] | None = None  # alternatives for the first token, e.g. {"1": -3.0, "5": -0.1}
    usage: dict[str, int] | None = None  # overrides prompt_tokens / completion_tokens / total_tokens

    @classmethod
    def tool(cls, name: str, arguments: dict[str, Any] | str | None = None, *, call_id: str | None = None) -> Answer:
        """An answer that calls one tool."""
        return cls(tool_calls=(ToolCall(name=name, arguments=arguments or {}, id=call_id),))

    def text(self) -> str:
        """The content to send: the scripted text, else the most likely scripted first token, else empty."""
        if self.content is not None:
            return self.content
        if self.top_logprobs:
            return max(self.top_logprobs, key=self.top_logprobs.__getitem__)
        return ""


FaultKind = Literal[
    "rate_limit", "server_error", "bad_request", "unauthorized", "reset", "timeout", "malformed_json",
    "truncated_stream", "slow_first_token",
]  # fmt: skip


class Fault(BaseModel):
    """A scripted failure, consumed from the queue like an answer. Build one with the class methods."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: FaultKind
    status: int = Field(default=500, ge=400, le=599)
    retry_after: float | None = None
    seconds: float = Field(default=0.0, ge=0)
    after_chunks: int = Field(default=2, ge=0)
    then: Answer | None = None  # what a delayed fault finally answers; None: the responder decides
    code: str | None = None

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1.0) -> Fault:
        """429 rate_limit_error, with a ``Retry-After`` header when ``retry_after`` is set."""
        return cls(kind="rate_limit", status=429, retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """A 5xx server_error."""
        return cls(kind="server_error", status=status)

    @classmethod
    def bad_request(cls, status: int = 400, code: str = "invalid_value") -> Fault:
        """A 4xx invalid_request_error with ``code`` (e.g. context_length_exceeded, model_not_found with 404)."""
        return cls(kind="bad_request", status=status, code=code)

    @classmethod
    def unauthorized(cls) -> Fault:
        """401 invalid_api_key."""
        return cls(kind="unauthorized", status=401)

    @classmethod
    def reset(cls) -> Fault:
        """Close the TCP connection with a RST and no response at all."""
        return cls(kind="reset")

    @classmethod
    def timeout(cls, seconds: float, then: Answer | None = None) -> Fault:
        """Wait ``seconds`` before answering, so that a client with a shorter timeout gives up."""
        return cls(kind="timeout", seconds=seconds, then=then)

    @classmethod
    def malformed_json(cls) -> Fault:
        """200 with a body (or stream event) that is not valid JSON."""
        return cls(kind="malformed_json")

    @classmethod
    def truncated_stream(cls, after_chunks: int = 2) -> Fault:
        """Send ``after_chunks`` stream events, then drop the connection with no ``[DONE]`` and no final chunk."""
        return cls(kind="truncated_stream", after_chunks=after_chunks)

    @classmethod
    def slow_first_token(cls, seconds: float, then: Answer | None = None) -> Fault:
        """Send the stream's headers at once but its first event only after ``seconds``."""
        return cls(kind="slow_first_token", seconds=seconds, then=then)


class ModerationResult(BaseModel):
    """A scripted moderation verdict for one input: scores by category; flagged defaults to any score >= 0.5."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    flagged: bool | None = None
    categories: dict[str, float] = Field(default_factory=dict)

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(MODERATION_CATEGORIES))
        if unknown:
            raise ValueError(f"unknown moderation categories {unknown}; known: {list(MODERATION_CATEGORIES)}")
        return value


Responder = Callable[[dict[str, Any]], Answer]
ScriptItem = Answer | Fault


def load_script(path: str | Path) -> list[ScriptItem]:
    """Read a YAML list of items: a string (answer text), ``{fault: kind, ...}``, or answer fields."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    if not isinstance(data, list):
        raise ValueError(f"{path}: a script is a YAML list of answers and faults, not {type(data).__name__}")
    return [_script_item(item) for item in data]


def _script_item(item: Any) -> ScriptItem:
    if isinstance(item, Answer | Fault):
        return item
    if isinstance(item, str):
        return Answer(content=item)
    if isinstance(item, dict) and "fault" in item:
        kind, fields = item["fault"], {k: v for k, v in item.items() if k != "fault"}
        if kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault {kind!r}; known: {list(get_args(FaultKind))}")
        return getattr(Fault, kind)(**fields)  # the factory sets the kind's defaults (429 for rate_limit, ...)
    return Answer.model_validate(item)


# ---------------------------------------------------------------------------------------------- tokens


def tokenize(text: str) -> list[str]:
    """Split text into word-ish tokens (leading whitespace kept) that join back to the exact text."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer's count."""
    return len(tokenize(text))


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    calls = message.get("tool_calls") or []
    arguments = " ".join(str(call.get("function", {}).get("arguments", "")) for call in calls)
    return f"{content or ''} {arguments}".strip()


def _prompt_tokens(request: Mapping[str, Any]) -> int:
    return 3 + sum(3 + count_tokens(_message_text(m)) for m in request.get("messages") or [])


# ---------------------------------------------------------------------------------------------- default responder


def _resolve_ref(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _object_instance(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties", {})
    return {name: schema_instance(properties.get(name, {}), root) for name in schema.get("required", [])}


def _array_instance(schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[Any]:
    return [schema_instance(schema.get("items", {}), root) for _ in range(schema.get("minItems", 0))]


_TYPE_INSTANCES: Mapping[str, Callable[[Mapping[str, Any], Mapping[str, Any]], Any]] = MappingProxyType(
    {
        "object": _object_instance,
        "array": _array_instance,
        "string": lambda s, _: "x" * s.get("minLength", 0),
        "integer": lambda s, _: int(s.get("minimum", 0)),
        "number": lambda s, _: float(s.get("minimum", 0.0)),
        "boolean": lambda s, _: False,
        "null": lambda s, _: None,
    }
)


def schema_instance(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """A minimal value that validates against a JSON schema: required properties filled with type defaults."""
    root = schema if root is None else root
    if "$ref" in schema:
        return schema_instance(_resolve_ref(root, schema["$ref"]), root)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return schema_instance(schema[key][0], root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return _TYPE_INSTANCES[kind](schema, root)


def _last_user_text(request: Mapping[str, Any]) -> str:
    users = [m for m in request.get("messages") or [] if m.get("role") == "user"]
    return _message_text(users[-1]) if users else ""


def _forced_tool(request: Mapping[str, Any]) -> Mapping[str, Any] | None:
    tools = [t.get("function", {}) for t in request.get("tools") or []]
    choice = request.get("tool_choice")
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name")
        return next((t for t in tools if t.get("name") == wanted), None)
    return tools[0] if choice == "required" and tools else None


def _response_schema(request: Mapping[str, Any]) -> Mapping[str, Any] | None:
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format.get("json_schema", {}).get("schema", {"type": "object"})
    return {"type": "object"} if response_format.get("type") == "json_object" else None


def default_responder(request: dict[str, Any]) -> Answer:
    """Answer an unscripted request: call a forced tool, fill a requested JSON schema, or echo the user."""
    tool = _forced_tool(request)
    if tool is not None:
        return Answer.tool(tool.get("name", ""), schema_instance(tool.get("parameters") or {"type": "object"}))
    schema = _response_schema(request)
    if schema is not None:
        return Answer(content=json.dumps(schema_instance(schema)))
    return Answer(content=f"You said: {_last_user_text(request)}")


# ---------------------------------------------------------------------------------------------- completions


@dataclass(frozen=True)
class _Choice:
    """One choice of a completion, already cut by stop strings and token limits."""

    index: int
    tokens: tuple[str, ...]
    content: str | None
    tool_calls: tuple[dict[str, Any], ...]
    finish_reason: str
    logprobs: tuple[dict[str, Any], ...] | None


def _token_logprob(token: str, k: int, scripted: Mapping[str, float] | None) -> dict[str, Any]:
    own = -(zlib.crc32(token.encode()) % 1000) / 10000
    ranked = dict(scripted or {})
    ranked.setdefault(token, own)
    alternatives = sorted(ranked.items(), key=lambda kv: -kv[1])
    floor = alternatives[-1][1]
    alternatives += [(f"<alt{j}>", floor - 2.0 * j) for j in range(1, k + 1)]
    top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alternatives[:k]]
    return {"token": token, "logprob": ranked[token], "bytes": list(token.encode()), "top_logprobs": top}


def _tool_call_dict(index: int, call: ToolCall) -> dict[str, Any]:
    arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
    call_id = call.id or "call_" + hashlib.sha1(f"{index}:{call.name}:{arguments}".encode()).hexdigest()[:24]
    return {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": arguments}}


def _cut(request: Mapping[str, Any], text: str) -> tuple[str, str | None]:
    stops = request.get("stop") or []
    stops = [stops] if isinstance(stops, str) else stops
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[: min(cuts)], "stop") if cuts else (text, None)


def _choice(request: Mapping[str, Any], answer: Answer, index: int) -> _Choice:
    content, reason = _cut(request, answer.text())
    tokens = tokenize(content)
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    if limit is not None and len(tokens) > limit:
        tokens, reason = tokens[:limit], "length"
        content = "".join(tokens)
    calls = tuple(_tool_call_dict(i, call) for i, call in enumerate(answer.tool_calls))
    if reason != "length":
        reason = answer.finish_reason or ("tool_calls" if calls else "stop")
    k = int(request.get("top_logprobs") or 0)
    logprobs = None
    if request.get("logprobs"):
        logprobs = tuple(_token_logprob(t, k, answer.top_logprobs if i == 0 else None) for i, t in enumerate(tokens))
    text = None if calls and not content else content
    return _Choice(index, tuple(tokens), text, calls, reason, logprobs)


def _choices(request: Mapping[str, Any], answer: Answer) -> list[_Choice]:
    return [_choice(request, answer, i) for i in range(max(1, int(request.get("n") or 1)))]


def _usage(request: Mapping[str, Any], answer: Answer, choices: Sequence[_Choice]) -> dict[str, Any]:
    arguments = "".join(c["function"]["name"] + c["function"]["arguments"] for ch in choices for c in ch.tool_calls)
    usage = {"prompt_tokens": _prompt_tokens(request)}
    usage["completion_tokens"] = sum(len(ch.tokens) for ch in choices) + count_tokens(arguments)
    override = answer.usage or {}
    usage |= {k: v for k, v in override.items() if k != "total_tokens"}
    usage["total_tokens"] = override.get("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
    details = {"prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
    return usage | details


def _envelope(request: Mapping[str, Any], object_: str, completion_id: str) -> dict[str, Any]:
    created, model = int(time.time()), request.get("model") or "gpt-test"
    return {"id": completion_id, "object": object_, "created": created, "model": model}


def _completion(request: Mapping[str, Any], answer: Answer) -> dict[str, Any]:
    choices = _choices(request, answer)
    body = _envelope(request, "chat.completion", f"chatcmpl-{uuid.uuid4().hex[:24]}")
    body["choices"] = [_choice_dict(c) for c in choices]
    return body | {"usage": _usage(request, answer, choices), "system_fingerprint": _FINGERPRINT}


def _choice_dict(choice: _Choice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.content, "refusal": None, "annotations": []}
    if choice.tool_calls:
        message["tool_calls"] = list(choice.tool_calls)
    logprobs = None if choice.logprobs is None else {"content": list(choice.logprobs), "refusal": None}
    return {"index": choice.index, "message": message, "logprobs": logprobs, "finish_reason": choice.finish_reason}


def _deltas(choice: _Choice) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = []
    for i, token in enumerate(choice.tokens or ([""] if not choice.tool_calls else [])):
        logprobs = None if not choice.logprobs else {"content": [choice.logprobs[i]], "refusal": None}
        deltas.append({"delta": {"content": token}, "logprobs": logprobs})
    for j, call in enumerate(choice.tool_calls):
        function = {"name": call["function"]["name"], "arguments": ""}
        deltas.append(
            {"delta": {"tool_calls": [{"index": j, "id": call["id"], "type": "function", "function": function}]}}
        )
        for piece in tokenize(call["function"]["arguments"]):
            deltas.append({"delta": {"tool_calls": [{"index": j, "function": {"arguments": piece}}]}})
    deltas[0]["delta"] = {"role": "assistant", "content": None} | deltas[0]["delta"]
    deltas[-1]["finish_reason"] = choice.finish_reason
    return [{"index": choice.index, "logprobs": None, "finish_reason": None} | d for d in deltas]


def _chunks(request: Mapping[str, Any], answer: Answer) -> list[dict[str, Any]]:
    choices = _choices(request, answer)
    base = _envelope(request, "chat.completion.chunk", f"chatcmpl-{uuid.uuid4().hex[:24]}")
    base["system_fingerprint"] = _FINGERPRINT
    with_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    tail = {"usage": None} if with_usage else {}
    chunks = [base | {"choices": [d]} | tail for c in choices for d in _deltas(c)]
    if with_usage:
        chunks.append(base | {"choices": [], "usage": _usage(request, answer, choices)})
    return chunks


# ---------------------------------------------------------------------------------------------- moderation


def _moderation_inputs(request: Mapping[str, Any]) -> list[str]:
    raw = request.get("input", "")
    items = raw if isinstance(raw, list) else [raw]
    return [item.get("text", "") if isinstance(item, dict) else str(item) for item in items]


def _word_verdict(text: str, flag_words: Mapping[str, str]) -> ModerationResult:
    words = set(re.findall(r"\w+", text.lower()))
    return ModerationResult(categories={cat: 0.99 for word, cat in flag_words.items() if word.lower() in words})


def _moderation_result(result: ModerationResult) -> dict[str, Any]:
    scores = {cat: float(result.categories.get(cat, 0.0001)) for cat in MODERATION_CATEGORIES}
    flags = {cat: score >= 0.5 for cat, score in scores.items()}
    flagged = any(flags.values()) if result.flagged is None else result.flagged
    applied = {cat: ["text"] for cat in MODERATION_CATEGORIES}
    return {"flagged": flagged, "categories": flags, "category_scores": scores, "category_applied_input_types": applied}


# ---------------------------------------------------------------------------------------------- HTTP plumbing


def _error(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _redact(headers: Message) -> dict[str, str]:
    def clean(name: str, value: str) -> str:
        if name not in _SECRET_HEADERS:
            return value
        scheme, _, secret = value.partition(" ")
        return f"{scheme} ***" if secret else "***"

    return {name.lower(): clean(name.lower(), value) for name, value in headers.items()}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; header names lower-cased, secrets redacted, body parsed when JSON."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any


@dataclass(frozen=True)
class _Delivery:
    """How a fault bends the delivery of an otherwise normal response."""

    delay_s: float = 0.0
    first_event_s: float = 0.0
    cut_after: int | None = None
    malformed: bool = False

    @classmethod
    def of(cls, item: Answer | Fault | ModerationResult | None) -> _Delivery:
        if isinstance(item, Answer):
            return cls(delay_s=item.delay_s)
        if not isinstance(item, Fault):
            return cls()
        return cls(
            delay_s=item.seconds if item.kind == "timeout" else 0.0,
            first_event_s=item.seconds if item.kind == "slow_first_token" else 0.0,
            cut_after=item.after_chunks if item.kind == "truncated_stream" else None,
            malformed=item.kind == "malformed_json",
        )


class _Handler(BaseHTTPRequestHandler):
    """Thin I/O for one connection; all decisions are the OpenAIServer's."""

    protocol_version = "HTTP/1.1"
    server_version = "aigc-fake-openai/1.0"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            self.server.app._handle(self, self._read_body())
        except OSError:  # the client went away (timeouts, resets): nothing left to answer
            self.close_connection = True
        except Exception as exc:  # a bug here: say so over HTTP rather than hang the client
            _LOG.exception("fake OpenAI server failed on %s %s", self.command, self.path)
            self.close_connection = True
            self.send_json(500, _error(f"openai_server bug: {exc!r}", "server_error"))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def log_message(self, format: str, *args: Any) -> None:
        _LOG.info("%s " + format, self.address_string(), *args)

    def send_body(self, status: int, body: bytes, headers: Mapping[str, str] = MappingProxyType({})) -> None:
        """Send a complete response with a Content-Length."""
        self._head(status, {"Content-Type": "application/json", "Content-Length": str(len(body))} | dict(headers))
        self.wfile.write(body)

    def send_partial(self, body: bytes) -> None:
        """Announce the whole body's length, send half of it, then close the connection."""
        self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        self.wfile.write(body[: len(body) // 2])
        self.abort()

    def send_json(self, status: int, obj: Any, headers: Mapping[str, str] = MappingProxyType({})) -> None:
        """Send a JSON response."""
        self.send_body(status, json.dumps(obj).encode(), headers)

    def _head(self, status: int, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in ({"x-request-id": f"req_{uuid.uuid4().hex}"} | dict(headers)).items():
            self.send_header(name, value)
        self.end_headers()

    def start_stream(self) -> None:
        """Start a chunked Server-Sent Events response."""
        sse = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        self._head(200, sse | {"Transfer-Encoding": "chunked"})

    def send_event(self, data: str) -> None:
        """Send one SSE event as one HTTP chunk."""
        payload = f"data: {data}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))

    def end_stream(self) -> None:
        """Send the terminating zero-length chunk."""
        self.wfile.write(b"0\r\n\r\n")

    def abort(self) -> None:
        """Close the connection at once (FIN), mid-response."""
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def reset(self) -> None:
        """Drop the connection with a RST (SO_LINGER 0) and no response."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()  # the descriptor really closes when the handler's files close, right after


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its OpenAIServer and its open connections (to cut them on stop).

    One daemon thread per connection, and a listen backlog for hundreds of clients connecting at once
    (socketserver's default of 5 resets connections beyond it).
    """

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: OpenAIServer) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        """Remember or forget an open connection."""
        with self.connections_lock:
            (self.connections.add if add else self.connections.discard)(connection)

    def close_connections(self) -> None:
        """Shut down every open connection so that idle keep-alive handler threads end now."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _LOG.exception("fake OpenAI server: error while serving %s", client_address)


# ---------------------------------------------------------------------------------------------- the server


@dataclass
class _State:
    """Everything requests share, guarded by one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    queues: dict[str | None, deque[ScriptItem]] = field(default_factory=dict)
    moderations: deque[ModerationResult | Fault] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)


class OpenAIServer:
    """A local OpenAI-compatible HTTP server on a background thread; a context manager.

    ``script(...)`` queues answers and faults; ``requests`` records what arrived (secrets redacted).
    Header names in recorded requests are lower-cased.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] = ("gpt-test",),
        api_key: str | None = None,
        responder: Responder = default_responder,
        flag_words: Mapping[str, str] = DEFAULT_FLAG_WORDS,
    ) -> None:
        self._address = (host, port)
        self.models = tuple(models)
        self._api_key = api_key
        self.responder = responder
        self.flag_words = MappingProxyType(dict(flag_words))
        self._state = _State()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._httpd else "stopped"
        return f"OpenAIServer({where}, api_key={'***' if self._api_key else None})"

    # -- life cycle

    def start(self) -> OpenAIServer:
        """Bind (port 0 picks a free port) and serve on a daemon thread; return self."""
        if self._httpd is not None:
            raise RuntimeError("OpenAIServer is already running")
        self._stopping = threading.Event()
        self._httpd = _HTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping faults, cut open connections and wait for the serving thread."""
        httpd, thread, self._httpd, self._thread = self._httpd, self._thread, None, None
        if httpd is None or thread is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        if self._httpd is None:
            raise RuntimeError("OpenAIServer is not running; call start() or use it as a context manager")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, ready for ``openai.OpenAI(base_url=...)``."""
        return f"http://{self._address[0]}:{self.port}/v1"

    # -- scripting and recording

    def script(self, *items: Answer | Fault | str, model: str | None = None) -> None:
        """Queue answers and faults, first in first out; with ``model``, only requests for that model take them."""
        with self._state.lock:
            self._state.queues.setdefault(model, deque()).extend(_script_item(item) for item in items)

    def script_moderation(self, *items: ModerationResult | Fault) -> None:
        """Queue moderation verdicts (one per input) or faults (one per request)."""
        with self._state.lock:
            self._state.moderations.extend(items)

    def pending(self, model: str | None = None) -> int:
        """How many scripted items are still queued for ``model`` (None: the shared queue)."""
        with self._state.lock:
            return len(self._state.queues.get(model, ()))

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._state.lock:
            return list(self._state.requests)

    def clear(self) -> None:
        """Forget recorded requests and every queued item."""
        with self._state.lock:
            self._state.requests.clear()
            self._state.queues.clear()
            self._state.moderations.clear()

    def _next(self, model: str | None) -> ScriptItem | None:
        with self._state.lock:
            for key in (model, None):
                queue = self._state.queues.get(key)
                if queue:
                    return queue.popleft()
        return None

    def _next_moderation(self) -> ModerationResult | Fault | None:
        with self._state.lock:
            return self._state.moderations.popleft() if self._state.moderations else None

    # -- request handling

    def _handle(self, http: _Handler, raw: bytes) -> None:
        path = http.path.split("?", 1)[0].rstrip("/")
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._state.lock:
            self._state.requests.append(RecordedRequest(http.command, path, _redact(http.headers), body))
        if not self._authorized(http.headers):
            http.send_json(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        elif body is not None and not isinstance(body, dict):
            http.send_json(400, _error("We could not parse the JSON body of your request.", "invalid_request_error"))
        else:
            self._route(http, path.removeprefix("/v1"), body or {})

    def _authorized(self, headers: Message) -> bool:
        if self._api_key is None:
            return True
        return hmac.compare_digest(headers.get("Authorization", "").encode(), f"Bearer {self._api_key}".encode())

    def _route(self, http: _Handler, path: str, body: dict[str, Any]) -> None:
        routes: dict[tuple[str, str], Callable[[_Handler, Any], None]] = {
            ("POST", "/chat/completions"): self._chat,
            ("POST", "/moderations"): self._moderate,
            ("GET", "/models"): lambda h, _: h.send_json(200, {"object": "list", "data": self._model_cards()}),
        }
        handler = routes.get((http.command, path))
        if handler is not None:
            handler(http, body)
        elif http.command == "GET" and path.startswith("/models/"):
            self._model(http, path.removeprefix("/models/"))
        else:
            message = f"Invalid URL ({http.command} {http.path})"
            http.send_json(404, _error(message, "invalid_request_error", "unknown_url"))

    def _model_cards(self) -> list[dict[str, Any]]:
        return [{"id": m, "object": "model", "created": 0, "owned_by": "aigc-testing"} for m in self.models]

    def _model(self, http: _Handler, model_id: str) -> None:
        card = next((c for c in self._model_cards() if c["id"] == model_id), None)
        if card is None:
            message = f"The model '{model_id}' does not exist"
            http.send_json(404, _error(message, "invalid_request_error", "model_not_found"))
        else:
            http.send_json(200, card)

    def _chat(self, http: _Handler, body: dict[str, Any]) -> None:
        if not isinstance(body.get("messages"), list):
            http.send_json(400, _error("'messages' is a required property", "invalid_request_error"))
            return
        item = self._next(body.get("model"))
        if isinstance(item, Fault) and self._refuse(http, item):
            return
        answer = item if isinstance(item, Answer) else (item.then if item else None) or self.responder(body)
        delivery = _Delivery.of(item or answer)
        if body.get("stream"):
            self._send_stream(http, _chunks(body, answer), delivery)
        else:
            self._send_json(http, _completion(body, answer), delivery)

    def _moderate(self, http: _Handler, body: dict[str, Any]) -> None:
        results, delivery = [], _Delivery()
        for text in _moderation_inputs(body):
            item = self._next_moderation()
            if isinstance(item, Fault):
                if self._refuse(http, item):
                    return
                delivery, item = _Delivery.of(item), None
            results.append(_moderation_result(item or _word_verdict(text, self.flag_words)))
        reply = {"id": f"modr-{uuid.uuid4().hex[:24]}", "model": body.get("model") or "omni-moderation-latest"}
        self._send_json(http, reply | {"results": results}, delivery)

    def _refuse(self, http: _Handler, fault: Fault) -> bool:
        """Answer faults that replace the response (errors, resets); False for faults that bend delivery."""
        if fault.kind == "rate_limit":
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            error = _error("Rate limit reached (scripted fault).", "rate_limit_error", "rate_limit_exceeded")
            http.send_json(fault.status, error, headers)
        elif fault.kind == "server_error":
            http.send_json(fault.status, _error("The server had an error (scripted fault).", "server_error"))
        elif fault.kind == "bad_request":
            message = f"Invalid request (scripted fault: {fault.code})."
            http.send_json(fault.status, _error(message, "invalid_request_error", fault.code))
        elif fault.kind == "unauthorized":
            http.send_json(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        elif fault.kind == "reset":
            http.reset()
        else:
            return False
        return True

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _send_json(self, http: _Handler, obj: Any, delivery: _Delivery) -> None:
        self._sleep(delivery.delay_s + delivery.first_event_s)
        body = b'{"id": "chatcmpl-broken", "choices": [{"ind' if delivery.malformed else json.dumps(obj).encode()
        if delivery.cut_after is None:
            http.send_body(200, body)
        else:
            http.send_partial(body)

    def _send_stream(self, http: _Handler, chunks: Iterable[dict[str, Any]], delivery: _Delivery) -> None:
        self._sleep(delivery.delay_s)
        http.start_stream()
        self._sleep(delivery.first_event_s)
        for i, chunk in enumerate(chunks):
            if delivery.cut_after is not None and i >= delivery.cut_after:
                http.abort()
                return
            http.send_event('{"id": "chatcmpl-broken", "choices": [' if delivery.malformed else json.dumps(chunk))
        http.send_event("[DONE]")
        http.end_stream()


# ---------------------------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m chains.testing.openai_server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--script", type=Path, help="YAML list of answers and faults, used in order")
    parser.add_argument("--model", action="append", dest="models", help="model id to list (repeatable)")
    parser.add_argument("--api-key", help="require 'Authorization: Bearer KEY'")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    server = OpenAIServer(host=args.host, port=args.port, models=args.models or ("gpt-test",), api_key=args.api_key)
    if args.script:
        server.script(*load_script(args.script))
    with server:
        print(f"OpenAI-compatible test server on {server.base_url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
