"""Model layer speed: dynamic batching on the tiny local model, and the router's overhead per call.

(a) 32 concurrent calls with dynamic batching versus the same 32 calls one after another (throughput ratio).
(b) Median milliseconds per call against the local OpenAI-compatible server: the raw ``openai`` client, LangChain's
    ChatOpenAI, and the Router over that ChatOpenAI (the router's own cost is the last minus the middle).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

CALLS = 32
NEW_TOKENS = 64


def batching(model_dir: Path) -> dict[str, float]:
    """Tokens per second for 32 calls: sequential versus concurrent (coalesced by the dynamic batcher)."""
    from langchain_core.messages import HumanMessage

    from chains import ChatTransformers

    model = ChatTransformers(model=str(model_dir), max_tokens=NEW_TOKENS, max_batch_size=CALLS, max_wait_ms=10)
    prompts = [[HumanMessage(f"Write {i} facts about coffee and rivers.")] for i in range(CALLS)]
    model.engine.eos_ids = set()  # random weights may stop early; every call must decode NEW_TOKENS tokens
    model.invoke(prompts[0])  # warm up: load weights, first kernels
    start = time.perf_counter()
    for prompt in prompts:
        model.invoke(prompt)
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    with ThreadPoolExecutor(CALLS) as pool:
        answers = list(pool.map(model.invoke, prompts))
    concurrent = time.perf_counter() - start
    assert all(a.usage_metadata["output_tokens"] == NEW_TOKENS for a in answers)
    tokens = CALLS * NEW_TOKENS
    return {
        "sequential_tok_s": tokens / sequential,
        "concurrent_tok_s": tokens / concurrent,
        "ratio": sequential / concurrent,
    }


def _median_ms(call, n: int) -> float:
    for _ in range(20):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def router_overhead(n: int = 300) -> dict[str, float]:
    """Median ms per call for the raw client, ChatOpenAI and the Router, interleaved to share any drift."""
    import openai
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI

    from chains import Router
    from chains.testing import OpenAIServer

    with OpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-bench", max_retries=0)
        chat = ChatOpenAI(model="gpt-test", base_url=server.base_url, api_key="sk-bench", max_retries=0)
        router = Router(backends={"openai:gpt-test": chat}, auto="openai:gpt-test")
        messages = [HumanMessage("Write a tagline.")]
        raw = [{"role": "user", "content": "Write a tagline."}]
        results: dict[str, list[float]] = {"client": [], "chatopenai": [], "router": []}
        calls = {
            "client": lambda: client.chat.completions.create(model="gpt-test", messages=raw),
            "chatopenai": lambda: chat.invoke(messages),
            "router": lambda: router.invoke(messages),
        }
        for _ in range(5):  # rounds, so that each path sees the same machine state
            for name, call in calls.items():
                results[name].append(_median_ms(call, n // 5))
    medians = {name: statistics.median(values) for name, values in results.items()}
    return {
        **medians,
        "router_minus_client": medians["router"] - medians["client"],
        "router_minus_chatopenai": medians["router"] - medians["chatopenai"],
    }


def run() -> list[tuple[str, float, str, str]]:
    """All figures as (metric, value, unit, goal)."""
    from chains.testing import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        speed = batching(build_tiny_model(Path(tmp) / "tiny"))
    overhead = router_overhead()
    return [
        (f"local: {CALLS} calls one after another", speed["sequential_tok_s"], "tokens/s", ""),
        (f"local: {CALLS} concurrent calls, dynamic batching", speed["concurrent_tok_s"], "tokens/s", ""),
        ("local: batching throughput ratio", speed["ratio"], "x", ">= 4"),
        ("openai client direct, median per call", overhead["client"], "ms", ""),
        ("ChatOpenAI, median per call", overhead["chatopenai"], "ms", ""),
        ("Router over ChatOpenAI, median per call", overhead["router"], "ms", ""),
        ("router overhead vs openai client", overhead["router_minus_client"], "ms", "< 1"),
        ("router overhead vs ChatOpenAI (router's own)", overhead["router_minus_chatopenai"], "ms", ""),
    ]
