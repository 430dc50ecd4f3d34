"""Dynamic batching: calls from many threads or asyncio tasks are decoded together on one worker thread.

Gathering: the worker takes the first waiting call, then keeps taking calls while they keep coming. It stops when
no call has arrived for ``max_wait_s`` (counted from the latest arrival, so callers still encoding their prompts
are not cut off), after ``max_gather_s`` in all, or at ``max_batch_size`` calls.

Joining: a :class:`Stepper` that is ``joinable`` (the local engine's slot decoder) decodes step by step, and calls
that arrive meanwhile join at the next step, up to ``max_batch_size`` rows in flight. A plain
``run_batch(requests) -> results`` function decodes whole batches instead.

Each call gets a ``concurrent.futures.Future``; async callers await it with ``asyncio.wrap_future``, so the event
loop is never blocked by decoding.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["BatchStats", "DynamicBatcher", "Stepper"]

Req = TypeVar("Req")
Res = TypeVar("Res")
_CLOSE = object()


class Stepper(Protocol[Req]):
    """A decoding loop driven one step at a time (``chains.hf_engine.SlotDecoder`` is one)."""

    joinable: bool  # rows may be added while others are decoding

    def pending(self) -> int:
        """Rows added and not finished."""
        ...

    def add(self, request: Req, done: Callable[[Any], None]) -> None:
        """Queue a row; ``done`` is called once with its result, or with the exception that ended it."""
        ...

    def step(self) -> None:
        """Advance every row (one token, or for a whole-batch runner, to the end)."""
        ...

    def abort(self, error: BaseException) -> None:
        """Call every pending row's ``done`` with ``error`` and drop them (``step`` raised)."""
        ...


@dataclass
class BatchStats:
    """Counters a benchmark or a dashboard can read. A *batch* is one admission: the rows decoding together just
    after a gathering (joiners included)."""

    batches: int = 0
    jobs: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)
    steps: int = 0
    row_steps: int = 0  # rows in flight, summed over steps

    @property
    def mean_size(self) -> float:
        """Average calls per admission."""
        return self.jobs / self.batches if self.batches else 0.0

    @property
    def mean_rows_per_step(self) -> float:
        """Average rows in flight per step: how full the decoding batches were."""
        return self.row_steps / self.steps if self.steps else 0.0


class DynamicBatcher(Generic[Req, Res]):
    """Runs submissions on a worker thread, coalesced: through ``runner`` (a :class:`Stepper`), or through a
    ``run_batch(requests) -> results`` function over whole batches."""

    def __init__(
        self,
        runner: Callable[[Sequence[Req]], list[Res]] | Stepper[Req],
        *,
        max_batch_size: int = 16,
        max_wait_s: float = 0.004,
        max_gather_s: float = 0.05,
        name: str = "aigc-batcher",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.stepper: Stepper[Req] = runner if hasattr(runner, "step") else _WholeBatches(runner)  # type: ignore[arg-type]
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_gather_s = max(max_gather_s, max_wait_s)
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
        closing = False
        while not closing or self.stepper.pending():
            jobs: list[Any] = []
            if not closing and not self.stepper.pending():
                first = self._queue.get()
                if first is _CLOSE:
                    break
                jobs.append(first)
                closing = self._gather(jobs, time.perf_counter())
            elif not closing and self.stepper.joinable:
                closing = self._take_waiting(jobs)
            self._admit([j for j in jobs if isinstance(j, tuple)])
            self._step()
        self._refuse_late()

    def _refuse_late(self) -> None:
        """Fail calls that slipped in beside close() (after its marker in the queue)."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, tuple) and job[1].set_running_or_notify_cancel():
                job[1].set_exception(RuntimeError("this model was unloaded; load it again to use it"))

    def _room(self, jobs: list[Any]) -> int:
        return self.max_batch_size - self.stepper.pending() - len(jobs)

    def _gather(self, jobs: list[Any], start: float) -> bool:
        """Take calls until none has come for ``max_wait_s`` (or the caps); True when close() was called."""
        last = start
        while self._room(jobs) > 0:
            timeout = min(last + self.max_wait_s, start + self.max_gather_s) - time.perf_counter()
            try:
                job = self._queue.get_nowait() if timeout <= 0 else self._queue.get(timeout=timeout)
            except queue.Empty:
                return False
            if job is _CLOSE:
                return True
            jobs.append(job)
            last = time.perf_counter()
        return False

    def _take_waiting(self, jobs: list[Any]) -> bool:
        """Take the calls already queued (rows are decoding: joiners do not wait for more)."""
        while self._room(jobs) > 0:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return False
            if job is _CLOSE:
                return True
            jobs.append(job)
        return False

    def _admit(self, jobs: list[tuple[Req, Future[Res]]]) -> None:
        live = [(req, fut) for req, fut in jobs if fut.set_running_or_notify_cancel()]
        for request, future in live:
            try:
                self.stepper.add(request, _resolver(future))
            except BaseException as exc:  # a request the runner refuses fails alone
                future.set_exception(exc)
        if live:
            in_flight = self.stepper.pending()
            self.stats.batches += 1
            self.stats.jobs += len(live)
            self.stats.largest = max(self.stats.largest, in_flight)
            self.stats.sizes.append(in_flight)

    def _step(self) -> None:
        if not self.stepper.pending():
            return
        self.stats.steps += 1
        self.stats.row_steps += self.stepper.pending()
        try:
            self.stepper.step()
        except BaseException as exc:  # the step failed: every row in flight gets the error, the worker lives on
            self.stepper.abort(exc)


def _resolver(future: Future[Any]) -> Callable[[Any], None]:
    def done(outcome: Any) -> None:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    return done


class _WholeBatches(Generic[Req, Res]):
    """A ``run_batch`` function as a :class:`Stepper`: each step decodes every queued request to its end."""

    joinable = False

    def __init__(self, run_batch: Callable[[Sequence[Req]], list[Res]]) -> None:
        self.run_batch = run_batch
        self.jobs: list[tuple[Req, Callable[[Any], None]]] = []

    def pending(self) -> int:
        return len(self.jobs)

    def add(self, request: Req, done: Callable[[Any], None]) -> None:
        self.jobs.append((request, done))

    def step(self) -> None:
        results = self.run_batch([request for request, _ in self.jobs])
        if len(results) != len(self.jobs):
            raise RuntimeError(f"run_batch returned {len(results)} results for {len(self.jobs)} requests")
        jobs, self.jobs = self.jobs, []
        for (_, done), result in zip(jobs, results, strict=True):
            done(result)

    def abort(self, error: BaseException) -> None:
        jobs, self.jobs = self.jobs, []
        for _, done in jobs:
            done(error)
