"""Constrained decoding: what the grammar costs in decode speed, and what it buys in valid JSON.

``run()`` (the benchmark group): decode tokens/s with and without a JSON-schema grammar at batch 1 and 8, on
SmolLM2-135M-Instruct when it is in the model cache (``aigc models pull smollm2``), else on the tiny random model.
Every row decodes exactly ``NEW_TOKENS`` tokens (the schema needs more than that to complete; free rows ignore
end-of-sequence), so both sides do the same work but the mask. Best of ``ROUNDS`` interleaved rounds; wall time
and process CPU time are both reported, since the machine may be shared. On a busy machine the ratios carry a few
percent of noise, so the grammar's own cost is also measured directly: the constrained answers' tokens replayed
through a fresh row constraint (mask over a logits row of the model's width, then advance), per row and token.

``python benchmarks/bench_constrained.py validity [N_SEEDS]``: every built-in JSON prompt with its example inputs
on SmolLM2, greedy plus ``N_SEEDS`` seeds at temperature 0.7, decoded free and under the prompt's schema, with the
messages ``build_chain`` sends first (schema instruction + prompt); prints how many first answers validate
(``extract_json`` + the schema), as JSON. Grammar rows get the prompt's own token budget (they end when the value
is complete); free rows get at most ``FREE_CAP`` tokens, to keep the run affordable on a CPU: a free answer whose
first JSON value is not closed by then is, on this model, prose or a loop that the full budget would not mend.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

NEW_TOKENS = 96
FREE_CAP = 1024
ROUNDS = 3
LONG_RECORD = {  # a realistic mix (fixed keys, bounded strings, integers) that cannot finish in NEW_TOKENS
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "minItems": 40,
            "items": {
                "type": "object",
                "required": ["name", "score"],
                "properties": {"name": {"type": "string", "maxLength": 24}, "score": {"type": "integer"}},
            },
        }
    },
}


def _engine() -> tuple[Any, str]:
    from chains.hf_engine import HFEngine
    from chains.model_store import cached_path

    path = cached_path("smollm2-135m-instruct")
    if path is not None:
        return HFEngine.load(str(path), device="cpu", dtype="bfloat16"), "smollm2-135m bf16"
    from chains.testing.tiny_model import build_tiny_model

    tiny = build_tiny_model(Path(tempfile.mkdtemp()) / "tiny-llm")
    return HFEngine.load(str(tiny), device="cpu", dtype="float32"), "tiny random model"


def decode_speed() -> tuple[str, dict[tuple[int, bool], tuple[float, float]], float]:
    """{(batch, constrained): (tokens per wall second, tokens per CPU second)}, best of ROUNDS, and the grammar's
    cost per row and token in seconds."""
    from chains.constrained import GrammarCompiler
    from chains.hf_engine import GenRequest

    engine, label = _engine()
    grammar = GrammarCompiler(engine.tokenizer, eos_ids=engine.eos_ids).compile(LONG_RECORD)
    engine.eos_ids = set()  # free rows decode NEW_TOKENS too (grammar rows cannot end before)
    prompt = engine.encode_chat([{"role": "user", "content": "List forty products with a score each, as JSON."}])
    best: dict[tuple[int, bool], tuple[float, float]] = {}
    for _ in range(ROUNDS):
        for batch in (1, 8):
            for constrained in (False, True):
                requests = [
                    GenRequest(prompt, max_tokens=NEW_TOKENS, grammar=grammar if constrained else None)
                    for _ in range(batch)
                ]
                wall, cpu = time.perf_counter(), time.process_time()
                results = engine.generate(requests)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                tokens = sum(r.completion_tokens for r in results)
                assert tokens == batch * NEW_TOKENS, tokens
                old = best.get((batch, constrained), (0.0, 0.0))
                best[(batch, constrained)] = (max(old[0], tokens / wall), max(old[1], tokens / cpu))
    answer = engine.tokenizer.encode(results[0].text, add_special_tokens=False)
    width = engine.model.get_output_embeddings().weight.shape[0]
    return label, best, min(_grammar_cost(grammar, answer, width) for _ in range(ROUNDS))


def _grammar_cost(grammar: Any, tokens: list[int], width: int) -> float:
    """Seconds of mask + advance per token, replaying ``tokens`` through a fresh row constraint."""
    import torch

    row, logits = grammar.start(), torch.zeros(width)
    start = time.perf_counter()
    for token in tokens:
        row.mask(logits)
        row.advance(token)
    return (time.perf_counter() - start) / len(tokens)


def run() -> list[tuple[str, float, str, str]]:
    """All figures as (metric, value, unit, goal)."""
    label, best, cost = decode_speed()
    rows = []
    for batch in (1, 8):
        free, constrained = best[(batch, False)], best[(batch, True)]
        step = batch / free[0]  # seconds per decode step of the whole batch, free
        rows += [
            (f"decode {label}, batch {batch}: free", free[0], "tokens/s", ""),
            (f"decode {label}, batch {batch}: JSON-schema grammar", constrained[0], "tokens/s", ""),
            (f"decode {label}, batch {batch}: grammar / free (wall)", constrained[0] / free[0], "x", ">= 0.9"),
            (f"decode {label}, batch {batch}: grammar / free (CPU time)", constrained[1] / free[1], "x", ">= 0.9"),
            (f"decode {label}, batch {batch}: grammar share of a step", 100 * batch * cost / step, "%", "<= 5"),
        ]
    return [(f"grammar {label}: mask + advance per row and token", cost * 1e6, "us", "<= 500"), *rows]


def validity(seeds: int = 3) -> dict[str, Any]:
    """First-answer validity of every built-in JSON prompt on SmolLM2, free and under its schema."""
    import jsonschema
    from langchain_core.messages import SystemMessage

    from chains.constrained import GrammarCompiler
    from chains.hf_engine import GenRequest, HFEngine
    from chains.local import _to_chat
    from chains.model_store import cached_path
    from chains.structured import _INSTRUCTION, extract_json
    from prompts import PromptRegistry

    path = cached_path("smollm2-135m-instruct")
    if path is None:
        raise SystemExit("SmolLM2 is not in the model cache: run `aigc models pull smollm2`")
    engine = HFEngine.load(str(path), device="cpu", dtype="bfloat16")
    compiler = GrammarCompiler(engine.tokenizer, eos_ids=engine.eos_ids)
    registry = PromptRegistry([])
    refs = [f"{e.id}@{v}" for e in registry for v in e.versions]
    report: dict[str, Any] = {}
    for ref in [r for r in refs if registry.get(r).meta.output.format == "json"]:
        prompt = registry.get(ref)
        schema = prompt.meta.output.schema_
        values = {k: s.example for k, s in prompt.meta.inputs.items() if s.example is not None}
        # The messages build_chain sends on its first attempt: the schema instruction, then the prompt.
        messages = [SystemMessage(_INSTRUCTION.format(schema=json.dumps(schema))), *prompt.to_langchain(**values)]
        ids = engine.encode_chat(_to_chat(messages))
        budget = prompt.meta.model.max_tokens or 256
        settings = [(0.0, None)] + [(0.7, seed) for seed in range(seeds)]
        for mode, grammar in (("free", None), ("constrained", compiler.compile(schema))):
            start = time.perf_counter()
            limit = budget if grammar else min(budget, FREE_CAP)
            requests = [GenRequest(ids, max_tokens=limit, temperature=t, seed=s, grammar=grammar) for t, s in settings]
            rows = []
            for (temperature, seed), result in zip(settings, engine.generate(requests), strict=True):
                try:
                    jsonschema.validate(extract_json(result.text), schema)
                    error = ""
                except (ValueError, jsonschema.ValidationError) as exc:
                    error = str(getattr(exc, "message", exc)).splitlines()[0][:160]
                rows.append(
                    {
                        "temperature": temperature,
                        "seed": seed,
                        "valid": not error,
                        "error": error,
                        "finish": result.finish_reason,
                        "tokens": result.completion_tokens,
                        "head": result.text[:160],
                    }
                )
            report[f"{ref} {mode}"] = {
                "valid": sum(r["valid"] for r in rows),
                "n": len(rows),
                "seconds": round(time.perf_counter() - start, 1),
                "rows": rows,
            }
            print(ref, mode, f"{report[f'{ref} {mode}']['valid']}/{len(rows)} valid", file=sys.stderr, flush=True)
    return report


if __name__ == "__main__":
    if sys.argv[1:2] == ["validity"]:
        print(json.dumps(validity(int(sys.argv[2]) if len(sys.argv) > 2 else 3), indent=2))
    else:
        for metric, value, unit, goal in run():
            print(f"{metric:60} {value:12.3f} {unit:10} {goal}")
