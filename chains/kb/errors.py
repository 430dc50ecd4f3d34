"""Errors of the knowledge-base layer (a branch of the tree drawn in ``prompts/errors.py``)::

KnowledgeBaseError
├── KBUnavailable        (ConnectionError)  the Chroma server at a URL did not answer within the timeout
├── UnknownCollection    (LookupError)      no collection of that name (near names suggested)
├── EmbeddingMismatch    (ValueError)       the collection was built with another embedding model or dimension
└── InvalidKBRequest     (ValueError)       a bad argument: a filter, a k, a collection name
"""

from __future__ import annotations

from prompts.errors import AigcError

__all__ = ["EmbeddingMismatch", "InvalidKBRequest", "KBUnavailable", "KnowledgeBaseError", "UnknownCollection"]


class KnowledgeBaseError(AigcError):
    """A problem with a knowledge base (a Chroma collection) or the store that holds it."""


class KBUnavailable(KnowledgeBaseError, ConnectionError):
    """The Chroma server did not answer; the message names the URL."""


class UnknownCollection(KnowledgeBaseError, LookupError):
    """No collection of that name exists in the store."""


class EmbeddingMismatch(KnowledgeBaseError, ValueError):
    """The collection's recorded embedding model or dimension differs from the one it is opened with."""


class InvalidKBRequest(KnowledgeBaseError, ValueError):
    """An argument the knowledge base cannot use."""
