"""Errors of the model layer (a branch of the tree drawn in ``prompts/errors.py``)::

ModelError                       provider, model, status, retry_after
├── InvalidConfig     (ValueError)    the models configuration names an unknown key, task or value
├── UnknownModel      (LookupError)   no such provider or model id
├── ModelUnavailable                  weights not available offline, CUDA absent, the local extra missing
├── ContextWindowExceeded (ValueError) prompt plus max_tokens exceed the context window
├── BackendError                      a call failed at the backend
│   ├── RateLimited                   429; retry_after from the Retry-After header
│   ├── BackendTimeout                no answer within the timeout
│   ├── AuthenticationFailed          401/403: never retried
│   └── StreamInterrupted             a stream ended before its finish: never reported as complete
├── AllBackendsFailed                 the router tried every allowed backend
└── StructuredOutputError (ValueError) output did not parse into the schema after the repair retry
"""

from __future__ import annotations

from prompts.errors import AigcError

__all__ = [
    "AllBackendsFailed",
    "AuthenticationFailed",
    "BackendError",
    "BackendTimeout",
    "ContextWindowExceeded",
    "InvalidConfig",
    "InvalidRequest",
    "ModelError",
    "ModelUnavailable",
    "RateLimited",
    "StreamInterrupted",
    "StructuredOutputError",
    "UnknownModel",
]


class ModelError(AigcError):
    """A problem with a model, its backend or a call to it."""

    def __init__(
        self, message: str, *, model: str | None = None, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.model = model
        self.provider = model.split(":", 1)[0] if model and ":" in model else None
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class InvalidConfig(ModelError, ValueError):
    """The models configuration cannot be used; the message names the source and the key, never a value."""


class UnknownModel(ModelError, LookupError):
    """The model id names no registered provider, or the provider does not know the model."""


class ModelUnavailable(ModelError):
    """The model exists in principle but cannot be used here (not cached offline, no CUDA, ...)."""


class ContextWindowExceeded(ModelError, ValueError):
    """The prompt and the requested completion do not fit in the model's context window."""


class BackendError(ModelError):
    """A call to a backend failed."""


class RateLimited(BackendError):
    """The backend answered 429."""


class BackendTimeout(BackendError):
    """The backend did not answer in time."""


class AuthenticationFailed(BackendError):
    """The backend refused the credentials (401/403). Retrying cannot help."""


class InvalidRequest(BackendError):
    """The backend refused the request as malformed (4xx other than 401/403/404/429). Retrying cannot help."""


class StreamInterrupted(BackendError):
    """A streamed answer stopped before the backend said it was finished."""


class AllBackendsFailed(ModelError):
    """Every backend the router was allowed to try failed; ``errors`` lists them in order."""

    def __init__(self, message: str, *, errors: list[tuple[str, BaseException]]) -> None:
        self.errors = errors
        super().__init__(message)


class StructuredOutputError(ModelError, ValueError):
    """The model's output did not validate against the requested schema, even after one repair attempt."""
