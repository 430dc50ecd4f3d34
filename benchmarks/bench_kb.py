"""Knowledge-base costs: ingest rate and query latency of ``chains.kb`` beside LangChain's ``langchain_chroma.Chroma``
doing the same work, embedded (PersistentClient) and through a ``chroma run`` server, at 10,000 and 100,000 chunks.

Embedding dominates ingest, so it is measured once on its own (MiniLM texts/s); the store comparison then feeds both
sides the same precomputed vectors: ours through ``KnowledgeBase.add_chunks(chunks, vectors)`` and
``search_vector``, LangChain's through an ``Embeddings`` that returns the precomputed vector of each text (a dict
look-up, paid outside the timed region where possible). Vectors beyond the first ``EMBEDDED`` are real MiniLM vectors
of distinct chunks with small Gaussian noise added and renormalised (embedding 100,000 texts on 2 cores would take
many minutes and measure MiniLM again, not the store). Writes (batches of 5,000) and queries alternate between the
two sides, so that load from other processes on a shared machine falls on both alike.

python benchmarks/bench_kb.py                    # prints a table, writes benchmarks/results/kb.json
python benchmarks/bench_kb.py --sizes 10000      # a quicker run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

EMBEDDED = 500  # chunks really embedded with MiniLM (the embedding-throughput figure)
QUERIES = 300
K = 4
BATCH = 5_000  # both sides write in batches of this many (langchain_chroma upserts a whole add_texts call at once)
_VOCABULARY = "brand tone voice product fact shoe jacket grip weight colour teal sand price euro grade fraction"
WORDS = _VOCABULARY.split()


def corpus(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct chunk texts of about 400 characters."""
    rng = np.random.default_rng(seed)
    return [f"Chunk {i}: " + " ".join(rng.choice(WORDS, 60)) for i in range(n)]


def vectors(base: np.ndarray, n: int, seed: int, noise: float = 0.05) -> np.ndarray:
    """``n`` unit vectors: the real ones first, then noisy copies of them."""
    rng = np.random.default_rng(seed)
    out = base[np.arange(n) % len(base)].astype(np.float32)
    if n > len(base):
        out[len(base) :] += rng.normal(0, noise, (n - len(base), out.shape[1])).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def embed_throughput(texts: list[str]) -> tuple[np.ndarray, float]:
    from chains.kb.embeddings import embed_texts

    embed_texts(texts[:32])  # load the model first
    start = time.perf_counter()
    out = embed_texts(texts)
    return out, len(texts) / (time.perf_counter() - start)


class Precomputed:
    """A LangChain ``Embeddings`` that answers with vectors computed beforehand (text -> vector)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.table[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.table[text]


Side = tuple[Callable[[int, int], None], Callable[[Any], int], Callable[[], int]]  # write(a, b), search(q), count()


def ours(client: Any, name: str, texts: list[str], vecs: np.ndarray) -> Side:
    """chains.kb: write chunks[a:b] with their vectors, search by vector, count."""
    from chains.kb import KnowledgeBase
    from chains.kb.ingest import Chunk, chunk_id

    kb = KnowledgeBase.open(client, name)
    chunks = [
        Chunk(chunk_id("bench.md", i, t), t, {"source": "bench.md", "title": "bench", "chunk": i, "file_hash": "x"})
        for i, t in enumerate(texts)
    ]
    return (
        lambda a, b: kb.add_chunks(chunks[a:b], vecs[a:b]),
        lambda q: len(kb.search_vector(q, k=K)),
        kb.count,
    )


def langchain(client: Any, name: str, texts: list[str], vecs: np.ndarray) -> Side:
    """langchain_chroma.Chroma with the precomputed vectors: the same three operations."""
    from langchain_chroma import Chroma

    store = Chroma(
        collection_name=name,
        embedding_function=Precomputed(dict(zip(texts, vecs.tolist(), strict=True))),
        client=client,
        collection_configuration={"hnsw": {"space": "cosine"}},
    )
    ids = [f"lc-{i}" for i in range(len(texts))]
    metas = [{"source": "bench.md", "title": "bench", "chunk": i, "file_hash": "x"} for i in range(len(texts))]

    def write(a: int, b: int) -> None:
        store.add_texts(texts[a:b], metadatas=metas[a:b], ids=ids[a:b])

    return (
        write,
        lambda q: len(store.similarity_search_by_vector_with_relevance_scores(q, k=K)),
        store._collection.count,
    )


SIDES = ("aigc", "langchain")


def compare(clients: dict[str, Any], n: int, texts: list[str], vecs: np.ndarray, queries: np.ndarray) -> list[dict]:
    """Both sides on one store kind, batch by batch and query by query in alternating order."""
    setups = {"aigc": ours, "langchain": langchain}
    sides = {side: setups[side](clients[side], f"{side}-{n}", texts, vecs) for side in SIDES}
    ingest_s = dict.fromkeys(SIDES, 0.0)
    for number, at in enumerate(range(0, n, BATCH)):
        for side in SIDES if number % 2 == 0 else SIDES[::-1]:
            t0 = time.perf_counter()
            sides[side][0](at, at + BATCH)
            ingest_s[side] += time.perf_counter() - t0
    assert all(sides[side][2]() == n for side in SIDES)
    inputs = {"aigc": list(queries), "langchain": queries.tolist()}  # each side's own query type, made beforehand
    latencies: dict[str, list[float]] = {side: [] for side in SIDES}
    for i in range(len(queries)):
        for side in SIDES if i % 2 == 0 else SIDES[::-1]:
            t0 = time.perf_counter()
            assert sides[side][1](inputs[side][i]) == K
            latencies[side].append(time.perf_counter() - t0)
    return [_figures(n, ingest_s[side], latencies[side]) | {"impl": side} for side in SIDES]


def _figures(n: int, ingest: float, latencies: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies)
    return {
        "chunks": n,
        "ingest_s": round(ingest, 3),
        "chunks_per_s": round(n / ingest, 1),
        "query_p50_ms": round(statistics.median(ms), 3),
        "query_p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 3),
    }


class Server:
    """``chroma run`` on a free port in a temp folder."""

    def __init__(self, folder: Path) -> None:
        chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        args = [chroma, "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self) -> None:
        import httpx

        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"chroma run did not start on {self.url}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def run(sizes: list[int]) -> dict[str, Any]:
    from chains.kb import connect

    texts = corpus(max(sizes))
    base, embed_rate = embed_throughput(texts[:EMBEDDED])
    queries = vectors(embed_throughput(corpus(QUERIES, seed=11))[0], QUERIES, seed=3)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-kb-") as tmp:
        server = Server(Path(tmp) / "server")
        server.wait()
        try:
            for n in sizes:
                vecs = vectors(base, n, seed=n)
                for where in ("embedded", "server"):
                    clients = {
                        side: connect(Path(tmp) / f"{side}-{n}") if where == "embedded" else connect(url=server.url)
                        for side in ("aigc", "langchain")
                    }
                    for figures in compare(clients, n, texts[:n], vecs, queries):
                        rows.append({"store": where, **figures})
                        print(_line(rows[-1]), flush=True)
        finally:
            server.stop()
    return {
        "embedding": {"model": "all-MiniLM-L6-v2", "texts": EMBEDDED, "texts_per_s": round(embed_rate, 1)},
        "queries": QUERIES,
        "k": K,
        "rows": rows,
        "note": f"same precomputed vectors on both sides; past the first {EMBEDDED:,}, noisy copies of real ones",
        "cpu_count": os.cpu_count(),
    }


HEADER = f"{'store':<9} {'impl':<10} {'chunks':>8} {'ingest s':>9} {'chunks/s':>9} {'p50 ms':>8} {'p95 ms':>8}"


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['store']:<9} {r['impl']:<10} {r['chunks']:>8,} {r['ingest_s']:>9.2f} {r['chunks_per_s']:>9,.0f} "
        f"{r['query_p50_ms']:>8.2f} {r['query_p95_ms']:>8.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="Comma-separated chunk counts.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "kb.json")
    args = parser.parse_args()
    print(HEADER)
    result = run([int(s) for s in args.sizes.split(",")])
    print(f"\nMiniLM embedding: {result['embedding']['texts_per_s']:,.0f} texts/s ({EMBEDDED:,} chunks of ~400 chars)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
