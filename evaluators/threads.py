"""A cap on the native thread pools (BLAS/OpenMP through threadpoolctl, and torch) while a suite scores.

Evaluators multiply small matrices; on a busy machine a BLAS pool of one thread per core spends its time
waiting for cores (the offline suite ran at 20-260 samples/s with the default pools on a shared 2-core machine,
280-370 with one thread). Suites therefore score with one thread per pool unless told otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

__all__ = ["DEFAULT_THREADS", "limit_threads"]

DEFAULT_THREADS = 1
"""Threads per native pool while a suite scores; None leaves the libraries' own defaults."""


@contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """Cap BLAS/OpenMP pools and torch's intra-op threads at ``threads`` inside the block, restoring them after.

    The caps are process-wide (that is how these libraries work); libraries loaded inside the block are capped
    from the next block on. torch is capped only when something already imported it: this never imports torch.
    """
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be at least 1 (or None for the libraries' defaults), got {threads}")
    with ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # a core install without numpy's companions: nothing native to cap
            pass
        else:
            stack.enter_context(threadpool_limits(limits=threads))
        torch = sys.modules.get("torch")
        if torch is not None and hasattr(torch, "set_num_threads"):
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            stack.callback(torch.set_num_threads, before)
        yield
