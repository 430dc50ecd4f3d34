"""Running a plan: asyncio generation with an adaptive limit per model, scoring in a worker thread as generations
finish, and every finished case committed to the store at once.

    results = run_suite(load_eval_suite("marketing"), config=models_config(), store=ResultsStore(),
                        options=RunOptions(models=["openai:gpt-4o-mini"], concurrency=16))

Before a slot is generated it is skipped when the run already holds it (``--resume``), else its content key is
looked up in the store (a warm re-run makes no model call) unless ``no_cache``. Stored scores are reused by key
the same way. A rate limit (429) halves that model's concurrency, successes grow it back one at a time. A model
whose first calls all fail stops being called; the run then ends ``failed`` with the first error. Ctrl-C cancels
what is in flight and marks the run ``interrupted``: ``info.resume_command`` completes it.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigc_app.results import CaseResult, RunInfo, RunResults, generation_key
from aigc_app.runner.errors import RunInterrupted, SuiteError
from aigc_app.runner.plan import Plan, Slot, build_plan, estimate_tokens
from aigc_app.runner.progress import NullReporter, Reporter, RichReporter
from aigc_app.runner.ratelimit import AdaptiveLimit, PacedLimit, call_tokens, limit_for
from aigc_app.runner.scoring import score_batch
from aigc_app.runner.spec import EvalSuite

if TYPE_CHECKING:
    from aigc_app.store import ResultsStore
    from chains.config import ModelsConfig
    from chains.router import Router

__all__ = ["AdaptiveLimit", "RunOptions", "arun_suite", "resolve_options", "run_suite"]

ABORT_AFTER = 5  # a model whose first this-many calls all fail is not called again in this run


@dataclass(frozen=True)
class RunOptions:
    """How to run a suite; every field is also an ``aigc eval`` option."""

    models: Sequence[str] = ()  # overrides the suite's models (``auto`` allowed)
    concurrency: int = 8  # most calls in flight per model
    repeat: int | None = None  # overrides the suite's repeat
    filter: Sequence[str] = ()  # case id globs, or tag:NAME
    max_cost: float | None = None  # USD; refuse to start when the estimate is over it
    resume: str | None = None  # a run id (or prefix, or "latest") to complete
    no_cache: bool = False  # generate again even when the store holds the same generation
    max_tokens: int | None = None
    temperature: float | None = None
    quiet: bool = False  # no progress bar (it is also off when stderr is not a terminal)
    prompts_dirs: Sequence[str | Path] = ()  # extra prompt library roots
    max_attempts: int = 8  # per generation, counting retries after rate limits
    score_batch: int = 32  # generations scored together in the worker thread
    score_threads: int | None = 1  # native threads per pool while scoring (None: the libraries' defaults)
    reporter: Reporter | None = None  # progress callbacks; None: a rich bar on a terminal unless quiet


# -- entry points -------------------------------------------------------------------------------------------------


def resolve_options(store: ResultsStore, options: RunOptions) -> RunOptions:
    """With ``resume``, the stored run's models, repeat, filter and overrides (so its slots are the same)."""
    if not options.resume:
        return options
    info = store.get_run(options.resume)
    saved = dict(info.options)
    return replace(
        options,
        resume=info.run_id,
        models=tuple(info.models) or options.models,
        repeat=saved.get("repeat") or options.repeat,
        filter=tuple(saved.get("filter") or ()),
        max_tokens=saved.get("max_tokens"),
        temperature=saved.get("temperature"),
    )


def run_suite(
    suite: EvalSuite,
    *,
    config: ModelsConfig,
    store: ResultsStore,
    options: RunOptions | None = None,
    plan: Plan | None = None,
) -> RunResults:
    """Run (or, with ``options.resume``, complete) a suite and return its results as stored.

    Raises :class:`RunInterrupted` on Ctrl-C (the run is then ``interrupted`` in the store). A model that failed
    every case does not raise: the run's status is ``failed`` and its notes hold the first error."""
    options = resolve_options(store, options or RunOptions())
    plan = plan or build_plan(suite, config=config, options=options)
    info = start_run(store, suite, plan, options)
    try:
        asyncio.run(_execute(plan, config, store, options, info))
    except KeyboardInterrupt:
        info = store.update_run(info.run_id, status="interrupted")
        raise RunInterrupted(f"interrupted; complete the run with: {info.resume_command}", info) from None
    return finish_run(store, plan, info.run_id)


async def arun_suite(
    suite: EvalSuite,
    *,
    config: ModelsConfig,
    store: ResultsStore,
    options: RunOptions | None = None,
    plan: Plan | None = None,
) -> RunResults:
    """:func:`run_suite` inside a running event loop (cancelling the task marks the run ``interrupted``)."""
    options = resolve_options(store, options or RunOptions())
    plan = plan or build_plan(suite, config=config, options=options)
    info = start_run(store, suite, plan, options)
    try:
        await _execute(plan, config, store, options, info)
    except asyncio.CancelledError:
        store.update_run(info.run_id, status="interrupted")
        raise
    return finish_run(store, plan, info.run_id)


def start_run(store: ResultsStore, suite: EvalSuite, plan: Plan, options: RunOptions) -> RunInfo:
    """Create the run in the store (or mark the resumed one running again)."""
    if options.resume:
        info = store.get_run(options.resume)
        if info.suite != suite.name:
            raise SuiteError(f"run {info.run_id} is of suite {info.suite!r}, not {suite.name!r}: resume it with that")
        return store.update_run(info.run_id, status="running", finished_at=None, planned=len(plan.slots))
    saved = {
        "repeat": plan.repeat,
        "filter": list(options.filter),
        "max_tokens": options.max_tokens,
        "temperature": options.temperature,
        "concurrency": options.concurrency,
        "no_cache": options.no_cache,
        "rescore": suite.rescore,
        "seed": suite.seed,
        "params": {p.ref: dict(next(s.params for s in plan.slots if s.prompt is p)) for p in plan.prompts},
        "cases": len(plan.cases),
    }
    info = RunInfo(
        run_id="",
        suite=suite.name,
        status="running",
        started_at=time.time(),
        suite_hash=suite.content_hash(),
        suite_path=str(suite.path) if suite.path and not _builtin(suite.path) else None,
        prompts=[p.ref for p in plan.prompts],
        models=list(plan.models),
        evaluators=list(dict.fromkeys(e.evaluator for e, _ in plan.evaluators.entries)),
        planned=len(plan.slots),
        options=saved,
        notes=list(plan.notes),
    )
    return store.create_run(info)


def finish_run(store: ResultsStore, plan: Plan, run_id: str) -> RunResults:
    """Set the final status: ``failed`` when some model failed every case (the note has its first error)."""
    results = store.load_run(run_id)
    notes = [n for n in results.info.notes if not n.startswith("failed:")]
    for model in plan.models:
        cases = [c for c in results.cases if c.model == model]
        if cases and all(c.error for c in cases):
            notes.append(f"failed: {model} failed every case ({len(cases)}); first error: {cases[0].error}")
    failed = any(n.startswith("failed:") for n in notes) or not results.cases
    complete = len(results.cases) >= len(plan.slots)
    status = "failed" if failed else "finished" if complete else "interrupted"
    cost = sum(c.cost_usd or 0.0 for c in results.cases)
    store.update_run(run_id, status=status, finished_at=time.time(), notes=notes, cost_usd=cost)
    return store.load_run(run_id)


def _builtin(path: Path) -> bool:
    from aigc_app.runner.spec import BUILTIN_EVAL_SUITES

    return path.resolve().parent == BUILTIN_EVAL_SUITES.resolve()


# -- concurrency --------------------------------------------------------------------------------------------------


@dataclass
class _ModelState:
    limit: AdaptiveLimit | PacedLimit | Any  # anything with slot(tokens), succeeded(), rate_limited(epoch)
    router: Router
    successes: int = 0
    failures: int = 0
    first_error: str | None = None


@dataclass
class _Run:
    plan: Plan
    config: ModelsConfig
    store: ResultsStore
    options: RunOptions
    info: RunInfo
    reporter: Reporter
    models: dict[str, _ModelState] = field(default_factory=dict)
    queue: asyncio.Queue[tuple[Slot, CaseResult] | None] = field(default_factory=asyncio.Queue)


async def _execute(plan: Plan, config: ModelsConfig, store: ResultsStore, options: RunOptions, info: RunInfo) -> None:
    done = store.done_slots(info.run_id) if options.resume else set()
    todo = [s for s in plan.slots if s.key not in done]
    reporter = options.reporter or (NullReporter() if options.quiet or not sys.stderr.isatty() else RichReporter())
    run = _Run(plan, config, store, options, info, reporter)
    for model in plan.models:
        run.models[model] = _ModelState(limit_for(config, model, options.concurrency), _router(config, model))
    reporter.start(len(plan.slots), len(plan.slots) - len(todo))
    try:
        await run_slots(run, todo)
    finally:
        reporter.stop()
        for state in run.models.values():
            state.router.close()
    for model, state in run.models.items():
        note_rate_limits(run, model, state.limit.halvings, state.limit.lowest)


async def run_slots(run: _Run, todo: Sequence[Slot]) -> None:
    """Generate ``todo`` (per model at most ``options.concurrency`` at once) and score and record each case as
    it finishes: the one code path of the local executor and of every Ray worker."""
    scorer = asyncio.create_task(_score_loop(run))
    workers: list[asyncio.Task[None]] = []
    try:
        for model in run.plan.models:
            pending = [s for s in todo if s.model == model]
            pending.reverse()  # workers pop from the end: slots run in plan order
            for _ in range(min(run.options.concurrency, len(pending))):
                workers.append(asyncio.create_task(_worker(run, pending)))
        await asyncio.gather(*workers)
        await run.queue.put(None)
        await scorer
    except BaseException:
        for task in [*workers, scorer]:
            task.cancel()
        await asyncio.gather(*workers, scorer, return_exceptions=True)
        raise


def note_rate_limits(run: _Run, model: str, halvings: int, lowest: int) -> None:
    """Say in the run's notes (and on the progress display) that a model was rate limited."""
    if halvings:
        note = f"rate limited: {model} was refused (429) and ran at concurrency {lowest} at the lowest"
        run.store.update_run(run.info.run_id, notes=[*run.store.get_run(run.info.run_id).notes, note])
        run.reporter.note(note)


async def _worker(run: _Run, pending: list[Slot]) -> None:
    while pending:
        slot = pending.pop()
        case = await _case_for(run, slot)
        await run.queue.put((slot, case))


def _router(config: ModelsConfig, model: str) -> Router:
    """A router with one backend and no fallbacks, retries or cooldown of its own: the executor retries, adapts
    its concurrency and records which model answered."""
    from chains import Router
    from chains.config import CachePolicy, CooldownPolicy, RetryPolicy

    router = config.router.model_copy(
        update={
            "default": model,
            "fallbacks": [],
            "rules": [],
            "retry": RetryPolicy(max_attempts=1),
            "cooldown": CooldownPolicy(failures=1_000_000, cooldown_s=0),
            "budget_usd": None,
            "prices": {k: v for k, v in config.router.prices.items() if k == model},
            "context_windows": {k: v for k, v in config.router.context_windows.items() if k == model},
            "timeouts": {k: v for k, v in config.router.timeouts.items() if k == model},
            "cache": CachePolicy(),
        }
    )
    return Router.from_config(config.model_copy(update={"router": router}))


# -- one generation -----------------------------------------------------------------------------------------------


def _seed(run: _Run, slot: Slot) -> int | None:
    seed = run.plan.suite.seed
    return None if seed is None else seed + slot.sample_index


def _key(run: _Run, slot: Slot) -> str:
    """The generation's content key. With ``no_cache`` the same request is a new sample: its key also names this
    run, so the fresh answer (and its scores) never collide with the stored one."""
    params = {**slot.params, "regenerated_by": run.info.run_id} if run.options.no_cache else slot.params
    return generation_key(slot.prompt.hash, slot.messages, slot.model, params, _seed(run, slot), slot.sample_index)


def _blank(run: _Run, slot: Slot) -> CaseResult:
    return CaseResult(
        run_id=run.info.run_id,
        case_id=slot.case.id,
        prompt_name=slot.prompt.id,
        prompt_version=slot.prompt.version,
        prompt_hash=slot.prompt.hash,
        model=slot.model,
        sample_index=slot.sample_index,
        params=dict(slot.params),
        seed=_seed(run, slot),
        inputs=dict(slot.inputs),
        messages=[dict(m) for m in slot.messages],
        reference=slot.case.reference,
        tags=list(slot.case.tags),
        key=_key(run, slot),
        created_at=time.time(),
    )


async def _case_for(run: _Run, slot: Slot) -> CaseResult:
    blank = _blank(run, slot)
    if not run.options.no_cache:
        hit = run.store.find_generation(blank.key)
        if hit is not None:
            return replace(blank, output=hit.output, latency_s=hit.latency_s, tokens_in=hit.tokens_in,
                           tokens_out=hit.tokens_out, cost_usd=0.0 if hit.cost_usd is not None else None,
                           backend=hit.backend, cached=True, created_at=hit.created_at)  # fmt: skip
    state = run.models[slot.model]
    if state.successes == 0 and state.failures >= ABORT_AFTER:
        return replace(blank, error=f"not attempted: {slot.model} failed its first {ABORT_AFTER} calls "
                                    f"(first error: {state.first_error})")  # fmt: skip
    timing = [0.0]  # the last attempt's call: not the wait for a concurrency place, nor backoff sleeps
    try:
        message, output = await _generate(run, slot, state, timing)
    except Exception as exc:  # recorded as data: the case failed, the run goes on
        state.failures += 1
        error = f"{type(exc).__name__}: {exc}"
        state.first_error = state.first_error or error
        return replace(blank, error=error, latency_s=timing[0])
    state.successes += 1
    usage = getattr(message, "usage_metadata", None) or {}
    tokens_in, tokens_out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    route = message.response_metadata.get("aigc_route", {})
    return replace(
        blank,
        output=output,
        latency_s=timing[0],
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_usd=_cost(run.config, slot.model, tokens_in, tokens_out),
        backend=route.get("backend", slot.model),
    )


async def _generate(run: _Run, slot: Slot, state: _ModelState, timing: list[float]) -> tuple[Any, str]:
    """(the answer message, the output text), retrying rate limits and transient failures with backoff;
    ``timing[0]`` is set to each attempt's call time (the model's latency, whatever the queue)."""
    from chains.errors import AllBackendsFailed, AuthenticationFailed, BackendError, InvalidRequest, RateLimited

    transient_budget = run.config.router.retry.max_attempts
    attempt = transient = 0
    while True:
        attempt += 1
        async with state.limit.slot(tokens=_tokens(slot)) as epoch:
            started = time.perf_counter()
            try:
                result = await _call(run, slot, state.router)
                timing[0] = time.perf_counter() - started
                state.limit.succeeded()
                return result
            except Exception as exc:
                timing[0] = time.perf_counter() - started
                error = exc.errors[-1][1] if isinstance(exc, AllBackendsFailed) and exc.errors else exc
                if attempt >= run.options.max_attempts:
                    raise error from None
                if isinstance(error, RateLimited):
                    state.limit.rate_limited(epoch)
                    delay = error.retry_after if error.retry_after is not None else 0.25 * 2 ** min(attempt, 6)
                elif isinstance(error, BackendError) and not isinstance(error, AuthenticationFailed | InvalidRequest):
                    transient += 1
                    if transient >= transient_budget:
                        raise error from None
                    delay = 0.25 * 2**transient
                else:
                    raise error from None
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))


async def _call(run: _Run, slot: Slot, router: Router) -> tuple[Any, str]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    messages = [kinds[m["role"]](content=m["content"]) for m in slot.messages]
    kwargs: dict[str, Any] = {**slot.params, "sample_index": slot.sample_index}
    seed = _seed(run, slot)
    if seed is not None:
        kwargs["seed"] = seed
    if slot.prompt.meta.output.format != "json":
        message = await router.ainvoke(messages, **kwargs)
        return message, message.text
    from chains.structured import structured_runnable

    schema = slot.prompt.meta.output.schema_ or {"type": ["object", "array"]}
    result = await structured_runnable(router.bind(**kwargs), schema, include_raw=True).ainvoke(messages)
    raw = result["raw"]
    if result["parsing_error"] is not None:  # the evaluators judge it (adherence checks the schema)
        return raw, raw.text
    return raw, json.dumps(result["parsed"], ensure_ascii=False, indent=2)


def _tokens(slot: Slot) -> int:
    return call_tokens(estimate_tokens(slot.messages), slot.params.get("max_tokens"))


def _cost(config: ModelsConfig, model: str, tokens_in: int, tokens_out: int) -> float | None:
    if model.startswith("hf:"):
        return 0.0
    price = config.router.prices.get(model)
    return None if price is None else (tokens_in * price.input + tokens_out * price.output) / 1e6


# -- scoring ------------------------------------------------------------------------------------------------------


async def _score_loop(run: _Run) -> None:
    """Take finished generations in batches, score them in a worker thread, record each case."""
    finished = False
    while not finished:
        batch: list[tuple[Slot, CaseResult]] = []
        item = await run.queue.get()
        while item is not None:
            batch.append(item)
            if len(batch) >= run.options.score_batch or run.queue.empty():
                break
            item = run.queue.get_nowait()
        finished = item is None
        if batch:
            cases = await asyncio.to_thread(_score_and_record, run, batch)
            for case in cases:
                run.reporter.case(case)


def _score_and_record(run: _Run, batch: list[tuple[Slot, CaseResult]]) -> list[CaseResult]:
    plan = run.plan
    ok = [(s, c) for s, c in batch if c.error is None]
    scored = score_batch(plan.evaluators, plan.scorings, run.store, ok, threads=run.options.score_threads)
    out = []
    for _slot, case in batch:
        case = replace(case, scores=scored.get(id(case), ()))
        run.store.record_case(case)
        out.append(case)
    return out
