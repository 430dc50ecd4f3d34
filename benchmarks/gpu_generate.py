"""GPU generation throughput: our batched engine versus a plain ``model.generate`` loop. Needs no network.

A randomly initialised model with a real architecture (the Qwen2.5-0.5B configuration, bf16 on CUDA) and the
tiny offline tokenizer (its ids fit in Qwen's vocabulary). Every call decodes exactly ``--new-tokens`` tokens on
both paths (EOS is ignored), so tokens per second compare like for like. Results go to a JSON file.

    python benchmarks/gpu_generate.py --out gpu_generate.json            # on a CUDA machine
    python benchmarks/gpu_generate.py --small --device cpu --out x.json  # a quick check anywhere
    python benchmarks/gpu_generate.py --vllm --out gpu_generate.json     # also the vllm: provider (aigc[vllm])

With ``--vllm`` the same model folder is then served by vLLM's engine through our ``vllm:`` provider
(``chains.vllm.ChatVLLM``: concurrent ``ainvoke`` calls gathered into one ``LLM.chat``) and, as the baseline, by
that engine's own ``LLM.chat`` on the whole batch at once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

QWEN25_05B = {  # Qwen/Qwen2.5-0.5B-Instruct config.json, written out: no download
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "vocab_size": 151936,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
}
SMALL = {
    **QWEN25_05B,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1024,
    "max_position_embeddings": 2048,
}


def build(folder: Path, config: dict, dtype: str) -> Path:
    """Save a random-weight Qwen2 model plus the tiny tokenizer (with its chat template) into ``folder``."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from chains.testing import build_tiny_model

    build_tiny_model(folder / "tok")
    tokenizer = AutoTokenizer.from_pretrained(folder / "tok", padding_side="left")
    cfg = Qwen2Config(
        **config,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).to(getattr(torch, dtype))
    model.save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    return folder / "model"


def prompts(batch: int) -> list[list[dict[str, str]]]:
    return [
        [{"role": "user", "content": f"Write {i} short facts about coffee, rivers and mountain trails."}]
        for i in range(batch)
    ]


def ours(engine, batch: int, new_tokens: int) -> float:
    """Tokens per second through HFEngine.generate (one batched decode)."""
    from chains.hf_engine import GenRequest

    requests = [GenRequest(engine.encode_chat(p), max_tokens=new_tokens) for p in prompts(batch)]
    _sync()
    start = time.perf_counter()
    results = engine.generate(requests)
    _sync()
    elapsed = time.perf_counter() - start
    assert all(r.completion_tokens == new_tokens for r in results)
    return batch * new_tokens / elapsed


def plain(engine, batch: int, new_tokens: int) -> float:
    """Tokens per second of ``model.generate`` on the same left-padded batch (greedy, EOS ignored)."""
    tokenizer, model = engine.tokenizer, engine.model
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts(batch)]
    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(engine.device)
    _sync()
    start = time.perf_counter()
    out = model.generate(
        **inputs,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
    )
    _sync()
    elapsed = time.perf_counter() - start
    assert out.shape[1] - inputs["input_ids"].shape[1] == new_tokens
    return batch * new_tokens / elapsed


def vllm_rows(folder: Path, batches: list[int], new_tokens: int, repeats: int) -> list[dict[str, float]]:
    """Tokens per second through the ``vllm:`` provider (concurrent ainvoke calls) and through the same engine's
    ``LLM.chat`` on the whole batch; every call decodes exactly ``new_tokens`` (EOS ignored)."""
    import asyncio

    from vllm import SamplingParams

    from chains import ModelsConfig
    from chains.vllm import create_vllm

    engine = {"dtype": "bfloat16", "gpu_memory_utilization": 0.5, "seed": 0}
    model = create_vllm(str(folder), ModelsConfig(), engine_kwargs=engine, max_batch_size=max(batches))
    fixed = {"max_tokens": new_tokens, "min_tokens": new_tokens, "ignore_eos": True, "temperature": 0.0}

    async def provider(batch: int) -> float:
        start = time.perf_counter()
        answers = await asyncio.gather(*(model.ainvoke(p, **fixed) for p in prompts(batch)))
        elapsed = time.perf_counter() - start
        assert all(a.usage_metadata["output_tokens"] == new_tokens for a in answers)
        return batch * new_tokens / elapsed

    def raw(batch: int) -> float:
        start = time.perf_counter()
        outputs = model._llm.chat(prompts(batch), SamplingParams(**fixed), use_tqdm=False)
        elapsed = time.perf_counter() - start
        assert all(len(o.outputs[0].token_ids) == new_tokens for o in outputs)
        return batch * new_tokens / elapsed

    rows = []
    for batch in batches:
        asyncio.run(provider(batch)), raw(batch)  # warm-up (the first call also loads the engine)
        ours = max(asyncio.run(provider(batch)) for _ in range(repeats))
        theirs = max(raw(batch) for _ in range(repeats))
        rows.append({"vllm_provider_tok_s": ours, "vllm_chat_tok_s": theirs, "vllm_provider_ratio": ours / theirs})
        print(f"batch {batch:3d}: vllm: provider {ours:10.1f} tok/s   LLM.chat {theirs:10.1f} tok/s", flush=True)
    return rows


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--small", action="store_true", help="a tiny config, for a quick check on any machine")
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="gpu_generate.json")
    parser.add_argument("--vllm", action="store_true", help="also vLLM, through the vllm: provider (CUDA only)")
    args = parser.parse_args()

    import torch

    from chains.hf_engine import HFEngine, resolve_device

    device = resolve_device(args.device)
    dtype = "bfloat16" if device.startswith("cuda") else "float32"
    tmp = tempfile.TemporaryDirectory()  # kept until the end: vLLM loads the same folder
    folder = build(Path(tmp.name), SMALL if args.small else QWEN25_05B, dtype)
    engine = HFEngine.load(str(folder), device=device, dtype=dtype)
    engine.eos_ids = set()  # every call decodes exactly --new-tokens
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        ours(engine, batch, 8), plain(engine, batch, 8)  # warm-up
        best_ours = max(ours(engine, batch, args.new_tokens) for _ in range(args.repeats))
        best_plain = max(plain(engine, batch, args.new_tokens) for _ in range(args.repeats))
        rows.append(
            {"batch": batch, "ours_tok_s": best_ours, "generate_tok_s": best_plain, "ratio": best_ours / best_plain}
        )
        print(
            f"batch {batch:3d}: ours {best_ours:10.1f} tok/s   model.generate {best_plain:10.1f} tok/s   "
            f"ratio {best_ours / best_plain:.2f}",
            flush=True,
        )
    if args.vllm:
        del engine
        torch.cuda.empty_cache()
        rows_vllm = vllm_rows(folder, [int(b) for b in args.batches.split(",")], args.new_tokens, args.repeats)
        for row, extra in zip(rows, rows_vllm, strict=True):
            row.update(extra)
    tmp.cleanup()
    report = {
        "model": "random Qwen2.5-0.5B config" if not args.small else "small Qwen2 config",
        "dtype": dtype,
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor(),
        "new_tokens": args.new_tokens,
        "torch": torch.__version__,
        "results": rows,
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
