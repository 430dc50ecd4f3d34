"""Local generation speed on the real SmolLM2-135M-Instruct (bf16, greedy).

At 1, 8 and 32 concurrent calls, side by side in one run, on the same chat prompts (of different lengths):

- ours: ``ChatTransformers`` with dynamic batching, one thread per call;
- ``model.generate``: the same prompts as one left-padded batch (the ceiling for a static batch);
- a ``pipeline("text-generation")`` loop: one call per prompt, one after another.

Every path decodes exactly ``NEW_TOKENS`` tokens per prompt (EOS ignored: ``min_new_tokens`` for transformers, no
end-of-sequence ids for ours), so tokens per second compare like for like. Each figure is the best of ``ROUNDS``
runs by wall time, so run it on a quiet machine (torch uses every core unless OMP_NUM_THREADS says otherwise); the
ratios are also given by process CPU time (all threads), which a busy machine disturbs less.

    python benchmarks/run.py local
    python benchmarks/bench_local.py
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

NEW_TOKENS = 64
CALLS = (1, 8, 32)
ROUNDS = 2
TOPICS = ["rivers", "coffee", "the moon", "volcanoes", "chess", "bees", "trains", "jazz"]
ASKS = [
    "Tell me about {t}.",
    "Give three facts about {t}.",
    "Write a short poem about {t}, with a title, in four lines that rhyme.",
    "Explain {t} to a child of seven who likes dinosaurs, trains and drawing, in simple words and no more than "
    "five sentences. Then ask one question back, to check what the child understood.",
]
PROMPTS = [[{"role": "user", "content": ASKS[i % 4].format(t=TOPICS[i % 8])}] for i in range(max(CALLS))]


def ours(path: str, n: int) -> dict[str, Any]:
    """n concurrent ``invoke`` calls through ChatTransformers: times, and the batches the batcher formed."""
    from chains.local import _POOL

    model = _chat(path)
    stats = _POOL.get(model).batcher.stats
    messages = [_messages(p) for p in PROMPTS[:n]]
    best: dict[str, Any] = {}
    for _ in range(ROUNDS):
        sizes, steps, row_steps = len(stats.sizes), stats.steps, stats.row_steps
        with _Clock() as clock, ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(model.invoke, messages))
        tokens = sum(a.usage_metadata["output_tokens"] for a in answers)
        assert tokens == n * NEW_TOKENS, tokens
        if not best or clock.wall < best["wall"]:
            rows_per_step = (stats.row_steps - row_steps) / (stats.steps - steps)
            best = {"wall": clock.wall, "cpu": clock.cpu, "sizes": stats.sizes[sizes:], "rows_per_step": rows_per_step}
    return best


def plain_generate(model: Any, tokenizer: Any, n: int, new_tokens: int = NEW_TOKENS) -> dict[str, float]:
    """One ``model.generate`` batch of the n prompts, left padded: wall and CPU seconds of the best round."""
    import torch

    inputs = tokenizer.apply_chat_template(
        PROMPTS[:n], add_generation_prompt=True, return_tensors="pt", padding=True, return_dict=True
    )
    options = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False}
    best: dict[str, float] = {}
    for _ in range(ROUNDS):
        with _Clock() as clock, torch.inference_mode():
            out = model.generate(**inputs, **options, top_p=None, top_k=None)
        assert out.shape[1] - inputs["input_ids"].shape[1] == new_tokens
        if not best or clock.wall < best["wall"]:
            best = {"wall": clock.wall, "cpu": clock.cpu}
    return best


def pipeline_loop(model: Any, tokenizer: Any) -> list[_Clock]:
    """A text-generation pipeline called once per prompt, in order: the time of each call."""
    from transformers import pipeline

    generate = pipeline("text-generation", model=model, tokenizer=tokenizer)
    options = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False}
    options |= {"return_full_text": False, "top_p": None, "top_k": None}
    clocks = []
    for prompt in PROMPTS:
        with _Clock() as clock:
            generate(prompt, **options)
        clocks.append(clock)
    return clocks


def measure(path: str) -> dict[int, dict[str, Any]]:
    """Every figure; the transformers paths run on their own copy of the weights (default SDPA attention)."""
    import torch
    from langchain_core.messages import HumanMessage
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    _chat(path).invoke([HumanMessage("Hi")], max_tokens=8)  # warm up
    plain_generate(model, tokenizer, 1, new_tokens=8)
    loop = pipeline_loop(model, tokenizer)
    figures = {}
    for n in CALLS:  # ours and model.generate back to back, so that both see the same machine
        pipeline_n = {"wall": sum(c.wall for c in loop[:n]), "cpu": sum(c.cpu for c in loop[:n])}
        figures[n] = {"ours": ours(path, n), "generate": plain_generate(model, tokenizer, n), "pipeline": pipeline_n}
    return figures


def run() -> list[tuple[str, float, str, str]]:
    """All figures as (metric, value, unit, goal)."""
    from chains.model_store import cached_path

    path = cached_path("smollm2-135m-instruct")
    if path is None:
        return [("SKIPPED: SmolLM2 is not in the model cache (aigc models pull smollm2)", 0.0, "", "")]
    rows: list[tuple[str, float, str, str]] = []
    for n, f in measure(str(path)).items():
        mine, generate, loop, tokens = f["ours"], f["generate"], f["pipeline"], n * NEW_TOKENS
        goals = (">= 4", ">= 0.98") if n == max(CALLS) else ("", "")
        rows += [
            (f"{n} calls: ChatTransformers, dynamic batching", tokens / mine["wall"], "tokens/s", ""),
            (f"{n} calls: model.generate, one left-padded batch", tokens / generate["wall"], "tokens/s", ""),
            (f"{n} calls: pipeline loop, one call per prompt", tokens / loop["wall"], "tokens/s", ""),
            (f"{n} calls: ours / pipeline loop", loop["wall"] / mine["wall"], "x", goals[0]),
            (f"{n} calls: ours / model.generate", generate["wall"] / mine["wall"], "x", goals[1]),
            (f"{n} calls: ours / pipeline loop, by process CPU time", loop["cpu"] / mine["cpu"], "x", ""),
            (f"{n} calls: ours / model.generate, by process CPU time", generate["cpu"] / mine["cpu"], "x", ""),
            (f"{n} calls: rows per step; admissions {mine['sizes']}", mine["rows_per_step"], "rows", ""),
        ]
    return rows


class _Clock:
    """Wall and process CPU seconds of a ``with`` block (CPU time counts every thread of the process)."""

    wall = cpu = 0.0

    def __enter__(self) -> _Clock:
        self._start = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._start[0]
        self.cpu = time.process_time() - self._start[1]


def _chat(path: str) -> Any:
    """The model under test (loaded once: the first call's settings make the shared batcher)."""
    from chains import ChatTransformers

    model = ChatTransformers(model=path, dtype="bfloat16", max_tokens=NEW_TOKENS, max_batch_size=max(CALLS))
    model.engine.eos_ids = set()  # decode exactly NEW_TOKENS tokens, as the transformers paths do
    return model


def _messages(chat: list[dict[str, str]]) -> list[Any]:
    from langchain_core.messages import HumanMessage

    return [HumanMessage(m["content"]) for m in chat]


if __name__ == "__main__":
    for metric, value, unit, goal in run():
        print(f"{metric:70} {value:10.3f} {unit:9} {goal}")
