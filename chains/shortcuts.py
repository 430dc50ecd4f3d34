"""When a chat model may skip LangChain's run machinery, and what the skipped steps would have added.

``BaseChatModel.invoke`` sets up a callback manager and a run, reads LangChain's cache, and merges generation
metadata into the answer. For a call nobody observes (no callback handler, no tracing, no cache) that is pure cost:
at eval concurrency it cost the router more than its whole own bookkeeping, and twice per call (its own run and
its backend's). The router uses these helpers to take the short way only when the long way would add nothing.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.globals import get_llm_cache
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import RunnableConfig

__all__ = ["calls_directly", "first_message", "unobserved_messages", "untraced", "with_run_id"]

_TRACING_KWARGS = ("ls_structured_output_format", "structured_output_format")  # read by callbacks only
_RUN_PREFIX = "lc_run-"  # LangChain's prefix for the message ids it derives from run ids
M = TypeVar("M", bound=BaseMessage)


def _plain(model: BaseChatModel, kwargs: dict[str, Any]) -> bool:
    """No LangChain cache, rate limiter, content-block output or streaming on this call."""
    cache = model.cache
    return (
        model.rate_limiter is None
        and (cache is False or (cache is None and get_llm_cache() is None))
        and model.output_version in (None, "v0")
        and not getattr(model, "streaming", False)
        and "stream" not in kwargs
    )


def unobserved_messages(
    model: BaseChatModel,
    input: LanguageModelInput,
    config: RunnableConfig,
    kwargs: dict[str, Any],
    manager: type[CallbackManager] | type[AsyncCallbackManager],
) -> list[BaseMessage] | None:
    """The input's messages when a LangChain run of ``model`` would add nothing: no handler (callbacks, tracing,
    debug, verbose: LangChain's own ``configure`` decides), nothing :func:`_plain` rules out, plain text content;
    else None."""
    if not _plain(model, kwargs):
        return None
    # tags and metadata only label handlers' runs: without them LangChain finds the same handlers, for less
    if manager.configure(config.get("callbacks"), model.callbacks, model.verbose).handlers:
        return None
    if isinstance(input, list) and all(isinstance(m, BaseMessage) for m in input):
        messages = input
    else:
        messages = model._convert_input(input).to_messages()
    # LangChain normalises content blocks (audio, files) before _generate; plain text needs nothing
    return messages if all(isinstance(m.content, str) for m in messages) else None


def calls_directly(backend: BaseChatModel, params: dict[str, Any]) -> bool:
    """Whether ``backend._generate`` is the same as ``backend.invoke`` with no callbacks (nothing it would add:
    no callbacks of the backend's own, nothing :func:`_plain` rules out)."""
    return not backend.callbacks and _plain(backend, params)


def first_message(result: ChatResult) -> BaseMessage:
    """The first generation's message with the metadata ``invoke`` gives it (generation info, llm output)."""
    generation = result.generations[0]
    message = generation.message
    metadata = {**(generation.generation_info or {}), **message.response_metadata}
    if len(result.generations) == 1 and result.llm_output is not None:
        metadata = {**result.llm_output, **metadata}
    message.response_metadata = metadata
    return message


def with_run_id(message: M) -> M:
    """An id where the model gave none, in the form LangChain derives from its run."""
    if message.id is None:
        message.id = f"{_RUN_PREFIX}-{uuid.uuid4()}-0"
    return message


def untraced(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call kwargs without those only callbacks read (LangChain pops them before ``_generate``)."""
    return {k: v for k, v in kwargs.items() if k not in _TRACING_KWARGS}
