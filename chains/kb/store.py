"""Knowledge bases: Chroma collections of chunked local files, embedded with our MiniLM (never Chroma's default).

client = connect(".aigc/kb")                         # embedded PersistentClient; connect(url=...) for a server
kb = KnowledgeBase.open(client, "brand")             # creates it, recording the embedding model and dimension
summary = kb.ingest([Path("guides/")])              # re-ingesting updates changed files, never duplicates
passages = kb.search("tone of voice", k=4, mmr=True, where={"title": "Brand guide"})
chain = build_chain(prompt, model, retriever=kb.as_retriever(k=4), examples=kb.example_selector(k=3))
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from chains.embeddings import MODEL_DIMENSION, MODEL_NAME
from chains.kb.embeddings import MiniLMFunction, embed_texts
from chains.kb.errors import EmbeddingMismatch, InvalidKBRequest, KBUnavailable, UnknownCollection
from chains.kb.ingest import CHUNK_SIZE, Chunk, LoadedFile, Skipped, iter_files, load_file, source_key

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from chains.kb.examples import KBExampleSelector
    from chains.kb.retriever import KBRetriever

__all__ = [
    "CollectionInfo",
    "IngestSummary",
    "KnowledgeBase",
    "Passage",
    "SourceInfo",
    "connect",
    "delete_collection",
    "list_collections",
]

MODEL_KEY = "aigc:embedding_model"
DIMENSION_KEY = "aigc:embedding_dim"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_EMBED_BATCH = 256


def connect(path: str | Path | None = None, *, url: str | None = None, timeout: float = 5.0) -> ClientAPI:
    """A Chroma client: the server at ``url`` (it must answer within ``timeout`` s), else embedded at ``path``."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if url is None:
        folder = Path(path if path is not None else ".aigc/kb").expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(folder), settings=settings)
    host, port, ssl = _parse_url(url)
    _heartbeat(url, timeout)
    try:
        client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
    except Exception as exc:  # chromadb raises ValueError/ConnectionError/httpx errors here
        raise KBUnavailable(f"Chroma server {url}: {exc}") from None
    _bound_requests(client, timeout)
    return client


def _parse_url(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidKBRequest(f"Chroma server URL {url!r}: expected http://HOST:PORT or https://HOST:PORT")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 8000)
    except ValueError:
        raise InvalidKBRequest(f"Chroma server URL {url!r}: the port is not a number") from None
    return parts.hostname, port, parts.scheme == "https"


def _heartbeat(url: str, timeout: float) -> None:
    import httpx

    try:
        httpx.get(f"{url.rstrip('/')}/api/v2/heartbeat", timeout=timeout).raise_for_status()
    except httpx.TimeoutException:
        raise KBUnavailable(f"Chroma server {url} did not answer within {timeout:g} s; is `chroma run` up?") from None
    except httpx.HTTPError as exc:
        raise KBUnavailable(f"Chroma server {url} is not reachable ({exc}); start it with `chroma run`") from None


def _bound_requests(client: ClientAPI, timeout: float) -> None:
    # chromadb's HTTP client waits forever (httpx timeout=None); bound connecting so a dead server fails fast.
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(max(timeout, 120.0), connect=timeout)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk: id, text, source file, cosine similarity to the query and the stored metadata."""

    id: str
    text: str
    source: str
    score: float
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceInfo:
    """One ingested file of a collection."""

    source: str
    title: str
    chunks: int
    file_hash: str


@dataclass
class IngestSummary:
    """What an ingest did: files added, updated or unchanged, chunks written and removed, files skipped and why."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks_written: int = 0
    chunks_removed: int = 0
    chunks_kept: int = 0

    @property
    def files(self) -> int:
        """Files looked at, skipped ones included."""
        return len(self.added) + len(self.updated) + len(self.unchanged) + len(self.skipped)


@dataclass(frozen=True)
class CollectionInfo:
    """A collection in the store, with its size and recorded embedding model."""

    name: str
    chunks: int
    model: str | None
    dimension: int | None


class KnowledgeBase:
    """One Chroma collection of chunks, embedded with all-MiniLM-L6-v2 in cosine space."""

    def __init__(self, client: ClientAPI, collection: Any) -> None:
        self.client = client
        self.collection = collection

    @property
    def name(self) -> str:
        """The collection's name."""
        return str(self.collection.name)

    @classmethod
    def open(
        cls,
        client: ClientAPI,
        name: str,
        *,
        create: bool = True,
        model: str = MODEL_NAME,
        dimension: int = MODEL_DIMENSION,
    ) -> KnowledgeBase:
        """Open (or create) collection ``name``; refuse it if it was built with another model or dimension."""
        _check_name(name)
        if create:
            try:
                collection = client.get_or_create_collection(
                    name,
                    metadata={MODEL_KEY: model, DIMENSION_KEY: dimension},
                    configuration={"hnsw": {"space": "cosine"}},
                    embedding_function=MiniLMFunction(),
                )
            except ValueError as exc:  # Chroma refuses an embedding function other than the one it recorded
                raise EmbeddingMismatch(f"collection {name!r}: {exc}") from None
        else:
            collection = _get(client, name)
        _check_model(collection, model, dimension)
        return cls(client, collection)

    def count(self) -> int:
        """Number of chunks."""
        return int(self.collection.count())

    def ingest(
        self,
        paths: Iterable[str | Path],
        *,
        chunk_size: int = CHUNK_SIZE,
        on_file: Callable[[str, str], None] | None = None,
    ) -> IngestSummary:
        """Add files (folders recursively): new chunks embedded and written, stale chunks of each source removed."""
        summary = IngestSummary()
        for item in iter_files(Path(p) for p in paths):
            result = item if isinstance(item, Skipped) else load_file(item, chunk_size=chunk_size)
            if isinstance(result, Skipped):
                summary.skipped.append(result)
                outcome = f"skipped: {result.reason}"
            else:
                outcome = self._sync(result, summary)
            if on_file is not None:
                on_file(str(item.path if isinstance(item, Skipped) else item), outcome)
        return summary

    def _sync(self, loaded: LoadedFile, summary: IngestSummary) -> str:
        existing = self.collection.get(where={"source": loaded.source}, include=["metadatas"])
        old_ids = set(existing["ids"])
        hashes = {m.get("file_hash") for m in existing["metadatas"] or []}
        new_ids = [c.id for c in loaded.chunks]
        if hashes == {loaded.file_hash} and old_ids == set(new_ids):
            summary.unchanged.append(loaded.source)
            summary.chunks_kept += len(new_ids)
            return "unchanged"
        fresh = [c for c in loaded.chunks if c.id not in old_ids]
        kept = [c for c in loaded.chunks if c.id in old_ids]
        stale = sorted(old_ids - set(new_ids))
        self.add_chunks(fresh)
        if kept:  # same text, same place: only the metadata (file hash, title) can have changed
            self.collection.update(ids=[c.id for c in kept], metadatas=[c.metadata for c in kept])
        if stale:
            self.collection.delete(ids=stale)
        (summary.updated if old_ids else summary.added).append(loaded.source)
        summary.chunks_written += len(fresh)
        summary.chunks_removed += len(stale)
        summary.chunks_kept += len(kept)
        return f"{len(fresh)} chunks written, {len(stale)} removed" if old_ids else f"{len(fresh)} chunks"

    def add_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray | None = None) -> None:
        """Upsert chunks, embedding them unless ``vectors`` (n x 384, normalised) are given."""
        batch = min(self.client.get_max_batch_size(), 5000)
        for start in range(0, len(chunks), batch):
            part = chunks[start : start + batch]
            vecs = vectors[start : start + batch] if vectors is not None else self._embed([c.text for c in part])
            self.collection.upsert(
                ids=[c.id for c in part],
                documents=[c.text for c in part],
                metadatas=[c.metadata for c in part],
                embeddings=vecs,
            )

    @staticmethod
    def _embed(texts: list[str]) -> np.ndarray:
        return embed_texts(texts, batch_size=_EMBED_BATCH)

    def remove(self, source: str | Path) -> int:
        """Delete every chunk of one source file (as stored, or a path to it); the number deleted (0: none)."""
        for key in dict.fromkeys([str(source), source_key(Path(source))]):
            ids = self.collection.get(where={"source": key}, include=[])["ids"]
            if ids:
                self.collection.delete(ids=ids)
                return len(ids)
        return 0

    def sources(self) -> list[SourceInfo]:
        """The files in this collection with their chunk counts."""
        metas = self.collection.get(include=["metadatas"])["metadatas"] or []
        seen: dict[str, SourceInfo] = {}
        for m in metas:
            src = str(m.get("source", "?"))
            chunks = seen[src].chunks + 1 if src in seen else 1
            seen[src] = SourceInfo(src, str(m.get("title", "")), chunks, str(m.get("file_hash")))
        return sorted(seen.values(), key=lambda s: s.source)

    def search(
        self,
        query: str,
        *,
        k: int = 4,
        mmr: bool = False,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
        where: Mapping[str, Any] | None = None,
    ) -> list[Passage]:
        """The ``k`` passages nearest ``query`` (MMR: relevant and mutually diverse) matching the metadata filter."""
        vector = self._embed([query])[0]
        return self.search_vector(vector, k=k, mmr=mmr, fetch_k=fetch_k, lambda_mult=lambda_mult, where=where)

    def search_vector(
        self,
        vector: np.ndarray,
        *,
        k: int = 4,
        mmr: bool = False,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
        where: Mapping[str, Any] | None = None,
    ) -> list[Passage]:
        """Like :meth:`search` with a query vector already computed."""
        if k < 1:
            raise InvalidKBRequest(f"collection {self.name!r}: k must be at least 1, got {k}")
        n = max(fetch_k or 4 * k, k) if mmr else k
        include = ["documents", "metadatas", "distances", *(["embeddings"] if mmr else [])]
        from chromadb.errors import InvalidArgumentError

        try:
            found = self.collection.query(
                query_embeddings=[vector], n_results=n, where=dict(where) if where else None, include=include
            )
        except (ValueError, InvalidArgumentError) as exc:
            raise InvalidKBRequest(f"collection {self.name!r}: bad filter {dict(where or {})!r}: {exc}") from None
        passages = [
            Passage(i, d or "", str((m or {}).get("source", "")), 1.0 - float(dist), dict(m or {}))
            for i, d, m, dist in zip(
                found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0], strict=True
            )
        ]
        if not mmr or len(passages) <= 1:
            return passages[:k]
        from langchain_core.vectorstores.utils import maximal_marginal_relevance

        chosen = maximal_marginal_relevance(
            np.asarray(vector, dtype=np.float32), list(found["embeddings"][0]), lambda_mult=lambda_mult, k=k
        )
        return [passages[i] for i in chosen]

    def as_retriever(
        self, k: int = 4, mmr: bool = False, filter: Mapping[str, Any] | None = None, **options: Any
    ) -> KBRetriever:
        """This collection as a LangChain ``BaseRetriever`` (``fetch_k``, ``lambda_mult`` tune MMR)."""
        from chains.kb.retriever import KBRetriever

        return KBRetriever(kb=self, k=k, mmr=mmr, filter=dict(filter) if filter else None, **options)

    def example_selector(self, k: int = 3, input_keys: Sequence[str] | None = None) -> KBExampleSelector:
        """This collection as a LangChain ``BaseExampleSelector`` over its records (JSONL/CSV rows, added examples)."""
        from chains.kb.examples import KBExampleSelector

        return KBExampleSelector(kb=self, k=k, input_keys=list(input_keys) if input_keys else None)


def list_collections(client: ClientAPI) -> list[CollectionInfo]:
    """Every collection in the store, sorted by name."""
    infos = []
    for collection in client.list_collections():
        meta = collection.metadata or {}
        dim = int(meta[DIMENSION_KEY]) if meta.get(DIMENSION_KEY) else None
        infos.append(CollectionInfo(collection.name, collection.count(), meta.get(MODEL_KEY), dim))
    return sorted(infos, key=lambda c: c.name)


def delete_collection(client: ClientAPI, name: str) -> int:
    """Delete collection ``name``; the number of chunks it held."""
    collection = _get(client, name)
    count = collection.count()
    client.delete_collection(name)
    return int(count)


def _get(client: ClientAPI, name: str) -> Any:
    names = [c.name for c in client.list_collections()]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(sorted(names)) or "none yet; create one with `aigc kb add PATH --collection NAME`"
        raise UnknownCollection(f"no collection {name!r}{hint}; collections: {known}")
    try:
        return client.get_collection(name, embedding_function=MiniLMFunction())
    except ValueError as exc:  # Chroma refuses an embedding function other than the one it recorded
        raise EmbeddingMismatch(f"collection {name!r}: {exc}") from None


def _check_name(name: str) -> None:
    if not _NAME.match(name) or ".." in name:
        raise InvalidKBRequest(
            f"collection name {name!r}: use 3-512 letters, digits, '.', '_' or '-', starting and ending with a "
            f"letter or digit"
        )


def _check_model(collection: Any, model: str, dimension: int) -> None:
    meta = collection.metadata or {}
    recorded, dim = meta.get(MODEL_KEY), meta.get(DIMENSION_KEY)
    if recorded is None:
        raise EmbeddingMismatch(
            f"collection {collection.name!r} records no embedding model (it was not made by aigc); ingest into a new "
            f"collection instead"
        )
    if recorded != model or (dim is not None and int(dim) != dimension):
        raise EmbeddingMismatch(
            f"collection {collection.name!r} was built with {recorded} ({dim} dimensions); opening it with {model} "
            f"({dimension} dimensions) would compare incompatible vectors. Query it with {recorded}, or re-ingest "
            f"the files into a new collection"
        )
