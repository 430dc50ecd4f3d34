"""A knowledge base as a LangChain ``BaseRetriever``: similarity or MMR search with a metadata filter.

Each returned ``Document`` carries ``id``, ``source`` and ``score`` (cosine similarity) in its metadata, with the
chunk's own metadata (title, chunk index, file hash, page or line).
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

__all__ = ["KBRetriever"]


class KBRetriever(BaseRetriever):
    """Retrieve the ``k`` passages of a :class:`~chains.kb.store.KnowledgeBase` nearest a query."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    kb: Any = Field(description="The KnowledgeBase to search.")
    k: int = Field(4, ge=1)
    mmr: bool = Field(False, description="Maximal marginal relevance: relevant and mutually diverse passages.")
    fetch_k: int | None = Field(None, ge=1, description="Candidates MMR chooses from (default 4 x k).")
    lambda_mult: float = Field(0.5, ge=0, le=1, description="MMR: 1 is pure relevance, 0 pure diversity.")
    filter: dict[str, Any] | None = Field(None, description="Chroma `where` filter on chunk metadata.")

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        passages = self.kb.search(
            query, k=self.k, mmr=self.mmr, fetch_k=self.fetch_k, lambda_mult=self.lambda_mult, where=self.filter
        )
        return [
            Document(
                page_content=p.text,
                id=p.id,
                metadata={**p.metadata, "id": p.id, "source": p.source, "score": round(p.score, 6)},
            )
            for p in passages
        ]
