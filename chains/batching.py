"""Dynamic batching: calls from many threads or asyncio tasks are coalesced into one batched decode.

A worker thread takes the first waiting job, gathers more for at most ``max_wait_s`` (or until ``max_batch_size``),
and runs them together. Each job gets a ``concurrent.futures.Future``; async callers await it with
``asyncio.wrap_future``, so the event loop is never blocked by decoding.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["BatchStats", "DynamicBatcher"]

Req = TypeVar("Req")
Res = TypeVar("Res")
_CLOSE = object()


@dataclass
class BatchStats:
    """Counters a benchmark or a dashboard can read."""

    batches: int = 0
    jobs: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)

    @property
    def mean_size(self) -> float:
        """Average jobs per batch."""
        return self.jobs / self.batches if self.batches else 0.0


class DynamicBatcher(Generic[Req, Res]):
    """Runs ``run_batch(requests) -> results`` on a worker thread over coalesced submissions."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[Req]], list[Res]],
        *,
        max_batch_size: int = 16,
        max_wait_s: float = 0.004,
        name: str = "aigc-batcher",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.stats = BatchStats()
        self._queue: queue.Queue[tuple[Req, Future[Res]] | object] = queue.Queue()
        self._closed = False
        self._worker = threading.Thread(target=self._loop, name=name, daemon=True)
        self._worker.start()

    def submit(self, request: Req) -> Future[Res]:
        """Queue one request; the future resolves with its result or its exception."""
        if self._closed:
            raise RuntimeError("this model was unloaded; load it again to use it")
        future: Future[Res] = Future()
        self._queue.put((request, future))
        return future

    def close(self) -> None:
        """Finish queued work, then stop the worker."""
        if not self._closed:
            self._closed = True
            self._queue.put(_CLOSE)
            self._worker.join(timeout=30)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _CLOSE:
                return
            jobs = [first]
            closing = self._gather(jobs)
            self._run([j for j in jobs if isinstance(j, tuple)])
            if closing:
                return

    def _gather(self, jobs: list) -> bool:
        deadline = time.perf_counter() + self.max_wait_s
        while len(jobs) < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            try:
                job = self._queue.get_nowait() if remaining <= 0 else self._queue.get(timeout=remaining)
            except queue.Empty:
                return False
            if job is _CLOSE:
                return True
            jobs.append(job)
        return False

    def _run(self, jobs: list[tuple[Req, Future[Res]]]) -> None:
        live = [(req, fut) for req, fut in jobs if fut.set_running_or_notify_cancel()]
        if not live:
            return
        self.stats.batches += 1
        self.stats.jobs += len(live)
        self.stats.largest = max(self.stats.largest, len(live))
        self.stats.sizes.append(len(live))
        try:
            results = self.run_batch([req for req, _ in live])
        except BaseException as exc:  # the batch failed: every caller gets the error, the worker lives on
            for _, fut in live:
                fut.set_exception(exc)
            return
        for (_, fut), result in zip(live, results, strict=True):
            fut.set_result(result)
