"""Retrieval-augmented chain overhead: the same chain with and without a Chroma retriever at 10,000 chunks.

Both sides run ``chains.chain.chain("education/quiz", ...)`` against the scripted OpenAI-compatible server (in
this process, answering at once; text output on both sides); the retrieval side adds ``kb.as_retriever(k=4)`` over an
embedded Chroma collection of 10,000 chunks (500 embedded with MiniLM, the rest noisy copies of those vectors, as
in bench_kb.py). Calls alternate between the sides; the figure is the median per-call difference, which is the
query's MiniLM embedding, the Chroma search and joining the passages into the prompt's ``context``.

python benchmarks/bench_rag.py        # prints a table, writes benchmarks/results/rag.json
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CHUNKS = 10_000
CALLS = 60
INPUTS = {"topic": "photosynthesis", "grade_level": 6, "num_questions": 3}


def _kb(folder: Path):
    from bench_kb import EMBEDDED, corpus, vectors

    from chains.kb import KnowledgeBase, connect
    from chains.kb.embeddings import embed_texts
    from chains.kb.ingest import Chunk, chunk_id

    texts = corpus(CHUNKS)
    vecs = vectors(embed_texts(texts[:EMBEDDED]), CHUNKS, seed=3)
    kb = KnowledgeBase.open(connect(folder), "bench")
    chunks = [
        Chunk(chunk_id("bench.md", i, t), t, {"source": "bench.md", "title": "bench", "chunk": i, "file_hash": "x"})
        for i, t in enumerate(texts)
    ]
    for start in range(0, CHUNKS, 5_000):
        kb.add_chunks(chunks[start : start + 5_000], vecs[start : start + 5_000])
    return kb


def run() -> list[tuple[str, float, str, str]]:
    from chains import ModelsConfig
    from chains.chain import chain
    from chains.testing import OpenAIServer

    with tempfile.TemporaryDirectory(prefix="aigc-bench-rag-") as tmp, OpenAIServer(models=("gpt-test",)) as server:
        kb = _kb(Path(tmp))
        config = ModelsConfig.model_validate({"openai": {"base_url": server.base_url, "api_key": "sk-bench"}})
        # text output on both sides: the scripted server's schema instance cannot satisfy the quiz's if/then rules
        plain = chain("education/quiz", "openai:gpt-test", config=config, output="text")
        grounded = chain("education/quiz", "openai:gpt-test", config=config, output="text", retriever=kb.as_retriever())
        for side in (plain, grounded):  # warm up: the model client, MiniLM, the HNSW index
            for _ in range(3):
                side.invoke(INPUTS)
        times: dict[str, list[float]] = {"plain": [], "rag": []}
        for _ in range(CALLS):
            for name, side in (("plain", plain), ("rag", grounded)):
                start = time.perf_counter()
                side.invoke(INPUTS)
                times[name].append(time.perf_counter() - start)
        diffs = [r - p for p, r in zip(times["plain"], times["rag"], strict=True)]
    plain_ms, rag_ms = (statistics.median(times[k]) * 1000 for k in ("plain", "rag"))
    return [
        ("chain, no retriever: median per call", plain_ms, "ms", ""),
        (f"chain + retriever (k=4, {CHUNKS:,} chunks): median per call", rag_ms, "ms", ""),
        ("retrieval overhead per call (median of paired differences)", statistics.median(diffs) * 1000, "ms", "< 20"),
    ]


if __name__ == "__main__":
    from rich.console import Console
    from rich.table import Table

    rows = run()
    table = Table("metric", "value", "unit", "goal", title="retrieval-augmented chain overhead")
    for metric, value, unit, goal in rows:
        table.add_row(metric, f"{value:,.2f}", unit, goal)
    Console().print(table)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    keys = ("metric", "value", "unit", "goal")
    (out / "rag.json").write_text(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
