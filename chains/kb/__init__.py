"""Knowledge bases: local files chunked into Chroma collections, retrieval and few-shot example selection.

from chains.kb import KnowledgeBase, connect
kb = KnowledgeBase.open(connect(".aigc/kb"), "brand")
kb.ingest(["guides/"])
retriever, examples = kb.as_retriever(k=4, mmr=True), kb.example_selector(k=3)

Needs the ``rag`` extra (chromadb, langchain-text-splitters, pypdf, sentence-transformers).
"""

from chains.kb.embeddings import MiniLMEmbeddings, MiniLMFunction
from chains.kb.errors import EmbeddingMismatch, InvalidKBRequest, KBUnavailable, KnowledgeBaseError, UnknownCollection
from chains.kb.examples import KBExampleSelector
from chains.kb.ingest import Chunk, LoadedFile, Skipped
from chains.kb.retriever import KBRetriever
from chains.kb.store import (
    CollectionInfo,
    IngestSummary,
    KnowledgeBase,
    Passage,
    SourceInfo,
    connect,
    delete_collection,
    list_collections,
)

__all__ = [
    "Chunk",
    "CollectionInfo",
    "EmbeddingMismatch",
    "IngestSummary",
    "InvalidKBRequest",
    "KBExampleSelector",
    "KBRetriever",
    "KBUnavailable",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "LoadedFile",
    "MiniLMEmbeddings",
    "MiniLMFunction",
    "Passage",
    "Skipped",
    "SourceInfo",
    "UnknownCollection",
    "connect",
    "delete_collection",
    "list_collections",
]
