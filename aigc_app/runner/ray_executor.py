"""Running a plan on a Ray cluster: the same generate+score code as the local executor, in worker actors.

    results = run_suite_ray(suite, config=config, store=store, options=options, address="auto", workers=4)

The slots still to do (with ``--resume``, those the run does not hold) are split into shards by a stable hash of
the case id, so a shard is the same on every run of the plan. Worker actors (one process each; their routers and
any local model are built once per actor) pull shards, run them with :func:`aigc_app.runner.execute.run_slots`
and stream the finished cases back; the driver alone writes the SQLite store (one writer; ``record_case`` is
idempotent by content key). Store lookups a worker needs (cached generations, stored scores) are made by the driver
before a shard is sent. One limiter actor per model holds its adaptive concurrency and its token buckets, so the
workers together keep ``--concurrency`` calls in flight at most, respect ``router.rate_limits`` and halve together
on a 429. A worker that dies gives its unfinished slots back to the others; if every worker dies the run is
``interrupted`` and ``--resume`` completes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import sys
import uuid
import zlib
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aigc_app.results import CaseResult, RunInfo, RunResults, ScoreRow
from aigc_app.runner.errors import RunError, RunInterrupted
from aigc_app.runner.execute import (
    RunOptions,
    _blank,
    _ModelState,
    _router,
    _Run,
    finish_run,
    note_rate_limits,
    resolve_options,
    run_slots,
    start_run,
)
from aigc_app.runner.plan import Plan, Slot, build_plan
from aigc_app.runner.progress import NullReporter, RichReporter
from aigc_app.runner.ratelimit import AdaptiveLimit, PacedLimit
from aigc_app.runner.scoring import score_keys
from aigc_app.runner.spec import EvalSuite

if TYPE_CHECKING:
    from aigc_app.store import ResultsStore
    from chains.config import ModelsConfig, RateLimit
    from prompts import Prompt

__all__ = ["RAY_EXTRA", "WorkersLost", "connect", "make_shards", "run_suite_ray"]

RAY_EXTRA = "pip install 'aigc[ray]'"
SHARD_SIZE = 64  # slots per shard, counted over the whole plan (so shards do not move when a run is resumed)
SHARDS_PER_WORKER = 2  # shards a worker holds at once: the next one starts while the last cases of one finish
_LOCAL_PROVIDERS = ("hf:", "vllm:")


class WorkersLost(RunError):
    """Every Ray worker died before the run was done (what they finished is saved)."""


# -- entry point ----------------------------------------------------------------------------------------------------


def run_suite_ray(
    suite: EvalSuite,
    *,
    config: ModelsConfig,
    store: ResultsStore,
    options: RunOptions | None = None,
    plan: Plan | None = None,
    address: str | None = None,
    workers: int | None = None,
    shard_size: int = SHARD_SIZE,
) -> RunResults:
    """:func:`aigc_app.runner.run_suite` on Ray: ``address`` ``auto`` (a running cluster), ``ray://host:10001``,
    ``host:port``, or None (a Ray started for this run; an already connected driver is reused). ``workers``:
    actors to start (default: the cluster's CPUs, at most one per shard).

    Raises :class:`RunInterrupted` on Ctrl-C or when every worker died (the run is then ``interrupted``)."""
    options = resolve_options(store, options or RunOptions())
    plan = plan or build_plan(suite, config=config, options=options)
    with connect(address):
        info = start_run(store, suite, plan, options)
        try:
            asyncio.run(_execute(plan, config, store, options, info, workers, shard_size))
        except KeyboardInterrupt:
            info = store.update_run(info.run_id, status="interrupted")
            raise RunInterrupted(f"interrupted; complete the run with: {info.resume_command}", info) from None
        except WorkersLost as exc:
            info = store.update_run(info.run_id, status="interrupted", notes=[*info.notes, str(exc)])
            raise RunInterrupted(f"{exc}; complete the run with: {info.resume_command}", info) from None
    return finish_run(store, plan, info.run_id)


def import_ray() -> Any:
    """The ``ray`` module, or a RunError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RunError(f"--executor ray needs Ray, which is not installed ({exc}): {RAY_EXTRA}") from None
    return ray


@contextlib.contextmanager
def connect(address: str | None) -> Iterator[None]:
    """Connected to a Ray cluster for the block (a driver already connected stays so, and is not shut down)."""
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    _probe(address)
    try:
        if address is None:
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RunError(_unreachable(address, exc)) from None
    try:
        yield
    finally:
        ray.shutdown()


def _probe(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast on a host:port nothing listens on (Ray itself retries a missing cluster for minutes)."""
    target = _resolved(address)
    if target is None:
        return
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RunError(f"--address {address}: expected auto, ray://HOST:PORT or HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RunError(_unreachable(address, exc)) from None


def _resolved(address: str | None) -> str | None:
    """The host:port Ray will dial for ``address``: RAY_ADDRESS first (as Ray does), ``auto`` the latest
    ``ray start`` on this machine; None when Ray starts a cluster of its own."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    if address == "auto":
        try:
            from ray._private.services import get_ray_address_from_environment  # Ray's own lookup; private

            found = get_ray_address_from_environment("auto", None)
        except Exception:  # no cluster at all: ray.init says so at once
            return None
        return found if found not in (None, "auto") else None
    return None if address in (None, "local") else address


def _unreachable(address: str | None, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if address is None:
        return f"could not start a local Ray for this run ({first}); try `ray start --head` and --address auto"
    return (
        f"cannot reach the Ray cluster at {address} ({first}). Start one with `ray start --head` on this machine "
        f"and use --address auto, or give the head node's address: --address ray://HOST:10001 "
        f"(the Ray client port) or --address HOST:6379 (on a machine of the cluster)"
    )


# -- shards ---------------------------------------------------------------------------------------------------------


def make_shards(slots: Sequence[Slot], todo: Sequence[int], shard_size: int = SHARD_SIZE) -> list[list[int]]:
    """``todo`` (indexes into ``slots``) grouped by a stable hash of the case id: every slot of a case (its prompts,
    models and repeats) in one shard; the number of shards depends on the whole plan, not on what is left."""
    count = max(1, math.ceil(len(slots) / max(1, shard_size)))
    groups: list[list[int]] = [[] for _ in range(count)]
    for index in todo:
        groups[zlib.crc32(slots[index].case.id.encode("utf-8")) % count].append(index)
    return [group for group in groups if group]


# -- the driver -----------------------------------------------------------------------------------------------------


async def _execute(
    plan: Plan,
    config: ModelsConfig,
    store: ResultsStore,
    options: RunOptions,
    info: RunInfo,
    workers: int | None,
    shard_size: int,
) -> None:
    ray = import_ray()
    done = store.done_slots(info.run_id) if options.resume else set()
    todo = [i for i, slot in enumerate(plan.slots) if slot.key not in done]
    reporter = options.reporter or (NullReporter() if options.quiet or not sys.stderr.isatty() else RichReporter())
    run = _Run(plan, config, store, options, info, reporter)
    shards = deque(make_shards(plan.slots, todo, shard_size))
    cpus = float(ray.cluster_resources().get("CPU", 1))
    count = min(workers or max(1, int(cpus)), len(shards))  # none when nothing is left to do
    limiter_class = ray.remote(_Limiter).options(num_cpus=0, max_concurrency=10_000)
    limiters = {m: limiter_class.remote(options.concurrency, config.router.rate_limits.get(m)) for m in plan.models}
    payload = ray.put(_payload(plan, config, options, info))
    worker_class = ray.remote(_Worker)
    share = min(1.0, cpus / max(1, count))  # more workers than CPUs still all start (they mostly wait on I/O)
    placement = {"num_cpus": share, "num_gpus": _gpus(ray, plan, count), "max_concurrency": 64}
    tag = f"aigc-{info.run_id}-{uuid.uuid4().hex[:6]}"  # named, so `ray list actors` says whose they are
    names = [f"worker-{i}" for i in range(count)]
    actors = {n: worker_class.options(name=f"{tag}-{n}", **placement).remote(payload, limiters, n) for n in names}
    reporter.start(len(plan.slots), len(plan.slots) - len(todo))
    try:
        alive = dict(actors)
        while shards and alive:
            holders = [(n, a) for n, a in alive.items() for _ in range(SHARDS_PER_WORKER)]
            await asyncio.gather(*(_feed(run, shards, n, a, alive, limiters) for n, a in holders))
        if shards:
            left = sum(len(s) for s in shards)
            raise WorkersLost(f"every Ray worker died ({count} started); {left} slots were not run")
        for model, limiter in limiters.items():
            stats = await limiter.stats.remote()
            note_rate_limits(run, model, stats["halvings"], stats["lowest"])
    finally:
        reporter.stop()
        for actor in [*actors.values(), *limiters.values()]:
            with contextlib.suppress(Exception):
                ray.kill(actor)


async def _feed(
    run: _Run, shards: deque[list[int]], name: str, actor: Any, alive: dict[str, Any], limiters: Mapping[str, Any]
) -> None:
    """Send shards to one worker until none is left; a dead worker's unfinished slots go back in the queue."""
    ray = import_ray()
    lost = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
    while shards and name in alive:
        shard = shards.popleft()
        generations, scores = await asyncio.to_thread(_lookups, run, shard)
        got: set[int] = set()
        try:
            async for ref in actor.run_shard.remote(shard, generations, scores):
                batch: list[tuple[int, CaseResult]] = await ref
                await asyncio.to_thread(_record, run.store, batch)
                for index, case in batch:
                    got.add(index)
                    run.reporter.case(case)
        except lost:
            shards.appendleft([i for i in shard if i not in got])
            if alive.pop(name, None) is not None:
                for limiter in limiters.values():  # the places its calls held are free again
                    limiter.forget.remote(name)
            return


def _lookups(run: _Run, shard: Sequence[int]) -> tuple[dict[str, CaseResult], dict[str, ScoreRow]]:
    """What the workers would ask the store for: cached generations and stored scores of the shard's slots."""
    plan, store = run.plan, run.store
    blanks = [(plan.slots[i], _blank(run, plan.slots[i])) for i in shard]
    generations: dict[str, CaseResult] = {}
    if not run.options.no_cache:
        generations = {b.key: hit for _, b in blanks if (hit := store.find_generation(b.key)) is not None}
    keys = [k for slot, b in blanks for per in score_keys(plan.evaluators, plan.scorings, slot, b) for k in per]
    return generations, store.find_scores(keys)


def _record(store: ResultsStore, batch: Sequence[tuple[int, CaseResult]]) -> None:
    for _, case in batch:
        store.record_case(case)


def _gpus(ray: Any, plan: Plan, workers: int) -> float:
    """A share of the cluster's GPUs per worker when the plan runs a local model, else none."""
    gpus = float(ray.cluster_resources().get("GPU", 0))
    if not gpus or not any(m.startswith(_LOCAL_PROVIDERS) for m in plan.models):
        return 0
    return min(1.0, gpus / max(1, workers))


# -- what a worker receives -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Payload:
    """A plan as a worker needs it (prompts without their compiled templates: slots carry rendered messages)."""

    suite: EvalSuite
    prompts: list[Prompt]
    models: list[str]
    repeat: int
    slots: list[Slot]
    evaluators: Any
    scorings: int
    config: ModelsConfig
    options: RunOptions
    info: RunInfo

    def plan(self) -> Plan:
        return Plan(self.suite, self.prompts, self.models, [], self.repeat, self.slots, self.evaluators, self.scorings)


def _payload(plan: Plan, config: ModelsConfig, options: RunOptions, info: RunInfo) -> _Payload:
    prompts = {id(p): _detached(p) for p in plan.prompts}
    slots = [replace(s, prompt=prompts[id(s.prompt)]) for s in plan.slots]
    options = replace(options, reporter=None, quiet=True)
    return _Payload(plan.suite, list(prompts.values()), list(plan.models), plan.repeat, slots, plan.evaluators,
                    plan.scorings, config, options, info)  # fmt: skip


_COMPILED = ("_renderer", "_validate", "input_model")  # what does not pickle, and a worker never renders


def _detached(prompt: Prompt) -> Prompt:
    """A copy of ``prompt`` that pickles: its id, meta, hash and source, without the compiled template."""
    copy = object.__new__(type(prompt))
    copy.__dict__.update({k: v for k, v in prompt.__dict__.items() if k not in _COMPILED})
    return copy


# -- the actors -----------------------------------------------------------------------------------------------------


class _Limiter:
    """One model's adaptive concurrency and token buckets for the whole cluster (a Ray actor). Places are granted
    first come, first served: a release wakes one waiting call, not every one (many wait at once on a cluster)."""

    def __init__(self, concurrency: int, rate: RateLimit | None) -> None:
        self.adaptive = AdaptiveLimit(concurrency)  # the limit's arithmetic: halving, growing back, epochs
        self.paced = PacedLimit(self.adaptive, rate) if rate is not None else None
        self.active = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.held: dict[str, int] = {}
        self.gone: set[str] = set()
        self.calls = 0
        self.peak = 0

    async def acquire(self, tokens: int, holder: str) -> tuple[int, float]:
        """Wait for a place; returns the epoch and the seconds the caller must wait before calling."""
        if holder in self.gone:
            raise RunError(f"{holder} is gone")
        if self.active < self.adaptive.limit and not self.waiting:
            self.active += 1
        else:
            granted = asyncio.get_running_loop().create_future()
            self.waiting.append(granted)
            await granted  # the place is counted by whoever granted it
        if holder in self.gone:  # a call of a dead worker that was still waiting: not its place any more
            self._free(1)
            raise RunError(f"{holder} is gone")
        self.held[holder] = self.held.get(holder, 0) + 1
        self.calls += 1
        self.peak = max(self.peak, self.active)
        return self.adaptive.epoch, self.paced.reserve(tokens) if self.paced is not None else 0.0

    def release(self, holder: str, successes: int = 0) -> None:
        """A call is over; ``successes`` calls of this holder succeeded since its last release."""
        for _ in range(successes):
            self.adaptive.succeeded()
        if self.held.get(holder, 0) > 0:
            self.held[holder] -= 1
            self._free(1)
        else:
            self._grant()  # the limit may have grown

    def forget(self, holder: str) -> None:
        """A worker died: free the places its calls held, and refuse the calls of it still waiting."""
        self.gone.add(holder)
        self._free(self.held.pop(holder, 0))

    def rate_limited(self, epoch: int) -> bool:
        return self.adaptive.rate_limited(epoch)

    def stats(self) -> dict[str, int]:
        a = self.adaptive
        return {"limit": a.limit, "lowest": a.lowest, "halvings": a.halvings, "calls": self.calls, "peak": self.peak}

    def _free(self, places: int) -> None:
        self.active -= places
        self._grant()

    def _grant(self) -> None:
        while self.waiting and self.active < self.adaptive.limit:
            granted = self.waiting.popleft()
            if not granted.done():  # a cancelled wait gives nothing back
                self.active += 1
                granted.set_result(None)


class _RemoteLimit:
    """The executor's limit interface (``slot``, ``succeeded``, ``rate_limited``) over a limiter actor.

    A place the limiter granted passes straight to the next call waiting in this worker, for up to ``REUSE`` calls,
    without a round trip: the limiter counts it as held all along, so the cluster-wide limit stays exact. It goes
    back to the limiter when no call here waits, after ``REUSE`` calls (so other workers get their turn), or once
    the limit was halved since it was granted (a 429 seen here, or a later epoch in a grant). At most ``ASK``
    acquires of a worker are in flight at once. With a token bucket every call asks the limiter: its wait is the
    bucket's. Releases (with the successes since the last one) are not waited for."""

    REUSE = 8
    ASK = 4

    def __init__(self, actor: Any, holder: str, paced: bool = False) -> None:
        self.actor = actor
        self.holder = holder
        self.paced = paced
        self.successes = 0
        self.epoch = 0  # the latest epoch seen here
        self.waiting: deque[asyncio.Future[tuple[int, int]]] = deque()
        self.asking = 0
        self.requests: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def slot(self, tokens: int = 0) -> AsyncIterator[int]:
        if self.paced:
            epoch, delay = await self.actor.acquire.remote(tokens, self.holder)
            try:
                if delay > 0:
                    await asyncio.sleep(delay)
                yield epoch
            finally:
                self._release()
            return
        epoch, uses = await self._place()
        try:
            yield epoch
        finally:
            self._give(epoch, uses - 1)

    def succeeded(self) -> None:
        self.successes += 1

    def rate_limited(self, epoch: int) -> bool:
        self.epoch = max(self.epoch, epoch + 1)  # places granted before this go back, not on
        self.actor.rate_limited.remote(epoch)
        return True

    async def _place(self) -> tuple[int, int]:
        granted: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self.waiting.append(granted)
        self._ask()
        try:
            return await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled() and granted.exception() is None:
                self._give(*granted.result())  # granted just as it was cancelled: pass it on
            raise

    def _ask(self) -> None:
        while self.asking < min(self.ASK, sum(not f.done() for f in self.waiting)):
            self.asking += 1
            task = asyncio.get_running_loop().create_task(self._request())
            self.requests.add(task)  # held until done (the loop keeps only weak references)
            task.add_done_callback(self.requests.discard)

    async def _request(self) -> None:
        try:
            epoch, _ = await self.actor.acquire.remote(0, self.holder)
        except Exception as exc:  # the limiter is gone (the run ends) or refuses this worker: the next waiter says so
            self.asking -= 1
            while self.waiting:
                waiter = self.waiting.popleft()
                if not waiter.done():
                    waiter.set_exception(exc)
                    break
            return
        self.asking -= 1
        self.epoch = max(self.epoch, epoch)
        self._give(epoch, self.REUSE)
        self._ask()

    def _give(self, epoch: int, uses: int) -> None:
        """Pass a place to the next call waiting here, or back to the limiter."""
        if uses > 0 and epoch >= self.epoch:
            while self.waiting:
                waiter = self.waiting.popleft()
                if not waiter.done():
                    waiter.set_result((epoch, uses))
                    return
        self._release()
        if self.waiting:
            self._ask()

    def _release(self) -> None:
        successes, self.successes = self.successes, 0
        self.actor.release.remote(self.holder, successes)


class _Lookups:
    """The store as a worker sees it: the driver's answers to its lookups; recording is the driver's job."""

    def __init__(self, generations: Mapping[str, CaseResult], scores: Mapping[str, ScoreRow]) -> None:
        self.generations = generations
        self.scores = scores

    def find_generation(self, key: str) -> CaseResult | None:
        return self.generations.get(key)

    def find_scores(self, keys: Any) -> dict[str, ScoreRow]:
        return {k: self.scores[k] for k in keys if k in self.scores}

    def record_case(self, case: CaseResult) -> bool:
        return True


class _Collector:
    """A reporter that hands finished cases to the shard's stream."""

    def __init__(self, index_of: Mapping[tuple[str, str, str, int], int]) -> None:
        self.index_of = index_of
        self.cases: list[tuple[int, CaseResult]] = []
        self.wake = asyncio.Event()

    def start(self, total: int, done: int) -> None:
        pass

    def case(self, case: CaseResult) -> None:
        self.cases.append((self.index_of[(case.case_id, case.prompt_ref, case.model, case.sample_index)], case))
        self.wake.set()

    def note(self, text: str) -> None:
        pass

    def stop(self) -> None:
        pass

    def take(self) -> list[tuple[int, CaseResult]]:
        self.wake.clear()
        taken, self.cases = self.cases, []
        return taken


class _Worker:
    """A Ray actor: its routers (and any local model) are built once, then it runs shard after shard."""

    def __init__(self, payload: _Payload, limiters: Mapping[str, Any], name: str) -> None:
        self.payload = payload
        self.plan = payload.plan()
        self.index_of = {slot.key: i for i, slot in enumerate(self.plan.slots)}
        self.failure: Exception | None = None
        self.scoring: ThreadPoolExecutor | None = None
        try:
            config = payload.config
            paced = config.router.rate_limits
            self.models = {m: _ModelState(_RemoteLimit(limiters[m], name, m in paced), _router(config, m))
                           for m in payload.models}  # fmt: skip
        except Exception as exc:  # a model that cannot load here: said by the first shard, not as a dead actor
            self.failure = exc

    def pid(self) -> int:
        """The worker's process id (tests kill it)."""
        return os.getpid()

    async def run_shard(
        self, shard: Sequence[int], generations: Mapping[str, CaseResult], scores: Mapping[str, ScoreRow]
    ) -> AsyncIterator[list[tuple[int, CaseResult]]]:
        """Generate and score the shard's slots; yields the finished cases in batches as they come."""
        if self.failure is not None:
            raise self.failure
        # One scoring thread per worker, as in the local executor: the shards a worker holds at once would
        # otherwise score (and lazily load evaluator models) in parallel threads, and two transformers loads at
        # once break one another ("Cannot copy out of meta tensor"; seen on the marketing suite).
        if self.scoring is None:
            self.scoring = ThreadPoolExecutor(1, thread_name_prefix="aigc-score")
            asyncio.get_running_loop().set_default_executor(self.scoring)  # what asyncio.to_thread runs on
        p = self.payload
        collector = _Collector(self.index_of)
        run = _Run(self.plan, p.config, _Lookups(generations, scores), p.options, p.info, collector)  # type: ignore[arg-type]
        run.models = self.models
        task = asyncio.create_task(run_slots(run, [self.plan.slots[i] for i in shard]))
        try:
            while not task.done() or collector.cases:
                if not collector.cases:
                    waiter = asyncio.create_task(collector.wake.wait())
                    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                if collector.cases:
                    yield collector.take()
            task.result()
        finally:
            task.cancel()
