"""Errors of the HTTP edge in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

``ApiError`` is what route code raises; :func:`install_error_handlers` turns it, request validation errors, our
model-layer errors and anything unexpected into that shape with the right status. The translation from our
exception tree to statuses lives here and nowhere else:

| exception | status | type |
|---|---|---|
| ``UnknownModel`` | 404 | ``invalid_request_error`` (code ``model_not_found``) |
| ``ContextWindowExceeded`` | 413 | ``invalid_request_error`` (code ``context_length_exceeded``) |
| ``RateLimited`` | 429 + Retry-After | ``rate_limit_error`` |
| ``InvalidRequest``, ``StructuredOutputError``, ``ValueError`` from a backend | 400 | ``invalid_request_error`` |
| ``BackendTimeout`` | 504 | ``timeout_error`` |
| ``AllBackendsFailed`` where every backend refused for one client-side reason | that reason's status | |
| other ``ModelError`` (a backend failed, every backend failed) | 502 | ``upstream_error`` |
| anything else | 500 | ``server_error``: a fixed message, never a traceback |

Every message passes through :func:`redact` (the served API key never leaves the process, even if some error
text contained it).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from prompts.errors import AigcError

__all__ = [
    "ERROR_DOC",
    "ApiError",
    "ErrorBody",
    "error_body",
    "error_response",
    "from_exception",
    "install_error_handlers",
    "redact",
]

_LOG = logging.getLogger("aigc.serve")
_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """Every error answer of the API (OpenAI's shape)."""

    error: ErrorDetail


ERROR_DOC: dict[str, Any] = {"model": ErrorBody, "description": "An error in OpenAI's shape; the message says why"}
"""An entry of a route's ``responses`` for /openapi.json."""


class ApiError(AigcError):
    """An error answer: HTTP status, OpenAI error type, the parameter at fault, a code, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _STATUS_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.param = param
        self.code = code
        self.headers = headers or {}


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced."""
    return text.replace(secret, "[redacted]") if secret else text


def error_body(error: ApiError, secret: str | None = None) -> dict[str, Any]:
    """The JSON body of ``error`` in OpenAI's shape."""
    return {
        "error": {
            "message": redact(error.message, secret),
            "type": error.type,
            "param": error.param,
            "code": error.code,
        }
    }


def error_response(error: ApiError, secret: str | None = None) -> JSONResponse:
    """``error`` as a JSON response with its status and headers."""
    return JSONResponse(error_body(error, secret), status_code=error.status, headers=error.headers)


def from_exception(exc: BaseException) -> ApiError:
    """The API error for any exception (our model errors by kind; anything else a 500 without details)."""
    from chains.errors import (
        AllBackendsFailed,
        BackendTimeout,
        ContextWindowExceeded,
        InvalidRequest,
        ModelError,
        RateLimited,
        StructuredOutputError,
        UnknownModel,
    )

    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, AllBackendsFailed) and exc.errors:
        kinds = {_client_status(from_exception(error)) for _, error in exc.errors}
        if len(kinds) == 1 and None not in kinds:  # each backend refused the request itself, for one reason
            first = from_exception(exc.errors[0][1])
            return ApiError(
                first.status, str(exc), type=first.type, param=first.param, code=first.code, headers=first.headers
            )
    if isinstance(exc, UnknownModel):
        return ApiError(404, str(exc), param="model", code="model_not_found")
    if isinstance(exc, ContextWindowExceeded):
        return ApiError(413, str(exc), param="messages", code="context_length_exceeded")
    if isinstance(exc, RateLimited):
        retry = max(1, round(exc.retry_after or 1))
        return ApiError(429, str(exc), code="rate_limit_exceeded", headers={"Retry-After": str(retry)})
    if isinstance(exc, InvalidRequest | StructuredOutputError):
        return ApiError(400, str(exc))
    if isinstance(exc, BackendTimeout):
        return ApiError(504, str(exc), type="timeout_error", code="timeout")
    if isinstance(exc, ModelError):
        return ApiError(502, str(exc), type="upstream_error", code="backend_failed")
    if isinstance(exc, AigcError | ValueError | TypeError):  # our messages name what to change
        return ApiError(400, str(exc))
    return ApiError(500, "internal server error: the server log has the details", type="server_error")


def _client_status(error: ApiError) -> int | None:
    """The status when it says the request itself is at fault (too long, malformed, rate limited), else None."""
    return error.status if error.status in (400, 404, 413, 429) else None


def _secret(request: Request) -> str | None:
    key = getattr(request.app.state.settings, "api_key", None)
    return key.get_secret_value() if key is not None else None


def _is_openai_route(path: str) -> bool:
    return path.startswith(("/v1/chat", "/v1/models", "/v1/moderations", "/v1/completions", "/v1/embeddings"))


def install_error_handlers(app: FastAPI) -> None:
    """Answer errors in OpenAI's shape: every ApiError and unexpected exception; under /v1 also FastAPI's own
    validation errors (a 400 naming the field, as OpenAI answers, never a 422 in another shape); on the OpenAI
    routes (and for unknown paths under /v1) its HTTP errors."""
    from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc, _secret(request))

    @app.exception_handler(AigcError)
    async def _aigc_error(request: Request, exc: AigcError) -> JSONResponse:
        return error_response(from_exception(exc), _secret(request))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Any:
        if not request.url.path.startswith("/v1/"):  # the pages' own forms keep FastAPI's 422
            return await request_validation_exception_handler(request, exc)
        return error_response(validation_error(exc.errors()), _secret(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Any:
        if not (_is_openai_route(request.url.path) or (exc.status_code == 404 and request.url.path.startswith("/v1/"))):
            return await http_exception_handler(request, exc)
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path} on this server"
        return error_response(ApiError(exc.status_code, message, headers=dict(exc.headers or {})), _secret(request))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        _LOG.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
        return error_response(from_exception(RuntimeError()), _secret(request))


def openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI schema with FastAPI's default 422 answers removed under /v1 (they are 400s there)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/v1/"):
                for operation in operations.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None and "400" not in responses:
                        responses["400"] = {
                            "description": ERROR_DOC["description"],
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                        }
        app.openapi_schema = schema
    return app.openapi_schema


def validation_error(errors: Any) -> ApiError:
    """A 400 from pydantic's errors: the first problem, with its parameter path."""
    first = next(iter(errors), None) or {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    param = ".".join(loc) or None
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    return ApiError(400, f"{param}: {message}" if param else message, param=param)
