"""``vllm:<hub id or folder>``: a model run by vLLM's engine in this process (a CUDA GPU and the ``vllm`` extra).

    ModelRegistry().create("vllm:Qwen/Qwen2.5-0.5B-Instruct", config)     # on a GPU machine with aigc[vllm]

Concurrent calls are gathered by :class:`chains.batching.DynamicBatcher` into one ``LLM.chat`` call, which vLLM
schedules with continuous batching. Without vLLM or without a GPU the factory raises :class:`ModelUnavailable`
saying what to install, or how to reach a vLLM server through ``openai:`` instead (:data:`SERVER_HINT`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from chains.config import ModelsConfig
from chains.errors import ModelUnavailable

__all__ = ["SERVER_HINT", "VLLM_EXTRA", "ChatVLLM", "create_vllm"]

VLLM_EXTRA = "pip install 'aigc[vllm]'"
SERVER_HINT = (
    "or serve it on a GPU machine with `vllm serve {name} --port 8000` and call it as openai:{name} with "
    "models: {{openai: {{base_url: http://GPU-HOST:8000/v1, api_key: EMPTY}}}} in aigc.yaml"
)
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def create_vllm(name: str, config: ModelsConfig, **params: Any) -> BaseChatModel:
    """Factory for ``vllm:<model>``; fails at once, with what to do, where vLLM or a GPU is missing."""
    model = f"vllm:{name}"
    hint = SERVER_HINT.format(name=name)
    if importlib.util.find_spec("vllm") is None:
        raise ModelUnavailable(
            f"{model} runs vLLM in this process, and vllm is not installed: install the vllm extra on a machine "
            f"with a CUDA GPU ({VLLM_EXTRA}), {hint}",
            model=model,
        )
    import torch

    if not torch.cuda.is_available():
        raise ModelUnavailable(f"{model} needs a CUDA GPU and this machine has none; {hint}", model=model)
    return ChatVLLM(model=name, **{"max_batch_size": config.local.max_batch_size, **params})


class ChatVLLM(BaseChatModel):
    """A chat model over ``vllm.LLM``: one engine per instance, concurrent calls batched into one ``chat``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    model: str
    max_tokens: int = 512
    temperature: float = 0.0
    max_batch_size: int = 64
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    _llm: Any = PrivateAttr(default=None)
    _batcher: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "vllm"

    def _engine(self) -> Any:
        """The batcher in front of the engine; the engine loads at the first call, once."""
        with self._lock:
            if self._batcher is None:
                from vllm import LLM

                from chains.batching import DynamicBatcher

                self._llm = LLM(model=self.model, **self.engine_kwargs)
                self._batcher = DynamicBatcher(self._run_batch, max_batch_size=self.max_batch_size, name="aigc-vllm")
        return self._batcher

    def _run_batch(self, requests: Sequence[tuple[list[dict[str, str]], Any]]) -> list[Any]:
        outputs = self._llm.chat([m for m, _ in requests], [p for _, p in requests], use_tqdm=False)
        return list(outputs)

    def _sampling(self, stop: list[str] | None, kwargs: dict[str, Any]) -> Any:
        from vllm import SamplingParams

        return SamplingParams(
            temperature=kwargs.get("temperature", self.temperature),
            top_p=kwargs.get("top_p", 1.0),
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            stop=stop or kwargs.get("stop"),
            seed=kwargs.get("seed"),
            **{k: kwargs[k] for k in ("min_tokens", "ignore_eos") if k in kwargs},
        )

    def _submit(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> Any:
        chat = [{"role": _ROLES.get(m.type, m.type), "content": m.text} for m in messages]
        return self._engine().submit((chat, self._sampling(stop, kwargs)))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _result(self.model, self._submit(messages, stop, kwargs).result())

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Awaits the batcher's future: concurrent calls need no thread each to be gathered into one batch."""
        return _result(self.model, await asyncio.wrap_future(self._submit(messages, stop, kwargs)))


def _result(model: str, result: Any) -> ChatResult:
    """A ChatResult from one vLLM ``RequestOutput``."""
    completion = result.outputs[0]
    usage = {
        "input_tokens": len(result.prompt_token_ids or ()),
        "output_tokens": len(completion.token_ids),
        "total_tokens": len(result.prompt_token_ids or ()) + len(completion.token_ids),
    }
    message = AIMessage(
        content=completion.text,
        usage_metadata=usage,
        response_metadata={"model_name": model, "finish_reason": completion.finish_reason},
    )
    return ChatResult(generations=[ChatGeneration(message=message)])
