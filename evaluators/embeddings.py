"""The shipped sentence-embedding model, re-exported from :mod:`chains.embeddings` (knowledge bases use it too)."""

from chains.embeddings import MAX_CHARS, embed, minilm

__all__ = ["MAX_CHARS", "embed", "minilm"]
