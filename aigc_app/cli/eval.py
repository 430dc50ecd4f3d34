"""``aigc eval SUITE``: run an eval suite over prompts x models x cases, keep every result, report and compare.

Exit status: 0 when the run finished; 1 when it failed (a model failed every case) or, with
``--fail-on-regression``, when it regressed against ``--baseline``; 130 when interrupted (it can be resumed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aigc_app.cli.inputs import config_option, library_dirs, prompts_dir_option
from aigc_app.cli.output import console, err_console, print_error, print_warning

if TYPE_CHECKING:
    from aigc_app.results import RunInfo, RunResults
    from aigc_app.store import ResultsStore

__all__ = ["eval_cmd", "store_option"]

store_option = click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Results store (default: $AIGC_STORE or .aigc/results.db).",
)


@click.command("eval")
@click.argument("suite_ref", metavar="SUITE")
@click.option("--model", "models", multiple=True, help="Model id (repeatable); overrides the suite's models.")
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=8, show_default=True, help="Calls in flight per model."
)
@click.option("--repeat", type=click.IntRange(min=1), help="Generations per case (overrides the suite's repeat).")
@click.option("--filter", "filters", multiple=True, metavar="GLOB|tag:NAME", help="Only these cases (repeatable).")
@click.option("--max-cost", type=click.FloatRange(min=0), help="Refuse to start when the estimate is over this (USD).")
@click.option("--resume", "resume", metavar="RUN_ID", help="Complete an interrupted run (id, prefix or latest).")
@click.option("--no-cache", is_flag=True, help="Generate again even when the store holds the same generation.")
@click.option("--baseline", metavar="RUN_ID|latest", help="Compare with this run after the run.")
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when the comparison with --baseline regressed.")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Drop in a mean score (0..1) still not counted as a regression.",
)
@click.option("--max-tokens", type=click.IntRange(min=1), help="Most tokens per generation (overrides the suite).")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature (overrides the suite).")
@store_option
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML report to write (default: .aigc/reports/<run id>.html).",
)
@config_option
@prompts_dir_option
@click.option("--quiet", "-q", is_flag=True, help="No plan table and no progress bar.")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: asyncio in this process; ray: worker actors on a Ray cluster (pip install 'aigc[ray]').",
)
@click.option(
    "--address",
    metavar="auto|ray://HOST:10001|HOST:PORT",
    help="Ray cluster to run on (--executor ray; default: a local Ray started for this run).",
)
@click.option("--workers", type=click.IntRange(min=1), help="Ray worker actors (default: the cluster's CPUs).")
def eval_cmd(
    suite_ref: str,
    models: tuple[str, ...],
    concurrency: int,
    repeat: int | None,
    filters: tuple[str, ...],
    max_cost: float | None,
    resume: str | None,
    no_cache: bool,
    baseline: str | None,
    fail_on_regression: bool,
    tolerance: float,
    max_tokens: int | None,
    temperature: float | None,
    store_path: Path | None,
    report_path: Path | None,
    config_path: Path | None,
    dirs: tuple[Path, ...],
    quiet: bool,
    executor: str,
    address: str | None,
    workers: int | None,
) -> None:
    """Run an eval suite (built-in: writing, marketing, education, ad_copy_ab; or a YAML file) and report it."""
    from aigc_app.runner import RunInterrupted, RunOptions, build_plan, load_eval_suite, resolve_options, run_suite
    from aigc_app.settings import models_config
    from aigc_app.store import ResultsStore

    if fail_on_regression and not baseline:
        raise click.UsageError("--fail-on-regression needs --baseline RUN_ID|latest")
    if executor != "ray" and (address or workers):
        raise click.UsageError("--address and --workers go with --executor ray")
    config = models_config(config_path)
    suite = load_eval_suite(suite_ref)
    options = RunOptions(
        models=models,
        concurrency=concurrency,
        repeat=repeat,
        filter=filters,
        max_cost=max_cost,
        resume=resume,
        no_cache=no_cache,
        max_tokens=max_tokens,
        temperature=temperature,
        quiet=quiet,
        prompts_dirs=tuple(library_dirs(dirs)),
    )
    with ResultsStore(store_path) as store:
        base = _baseline(store, baseline, suite.name) if baseline else None
        options = resolve_options(store, options)
        plan = build_plan(suite, config=config, options=options)
        if not quiet:
            err_console().print(plan.table())
        for note in plan.notes:  # the tiny offline model's warning: said before the run and again after it
            print_warning(note)
        try:
            if executor == "ray":
                from aigc_app.runner.ray_executor import run_suite_ray

                results = run_suite_ray(
                    suite, config=config, store=store, options=options, plan=plan, address=address, workers=workers
                )
            else:
                results = run_suite(suite, config=config, store=store, options=options, plan=plan)
        except RunInterrupted as exc:
            if not str(exc).startswith("interrupted"):  # the Ray executor lost every worker: say so
                print_warning(str(exc).split("; complete the run with")[0])
            print_error(f"interrupted: run {exc.info.run_id} is saved ({exc.info.done} of {exc.info.planned} done)")
            where = f" --executor ray{f' --address {address}' if address else ''}" if executor == "ray" else ""
            err_console().print(f"resume it with: [bold]{exc.info.resume_command}{where}[/]")
            sys.exit(130)
        _summary(results)
        for note in results.info.notes:
            if not note.startswith("failed:"):  # a failure is the last line, below
                print_warning(note)
        _write_report(results, report_path)
        regressed = _compare(base, results, tolerance) if base is not None else False
    _exit(results.info, regressed and fail_on_regression)


def _baseline(store: ResultsStore, ref: str, suite: str) -> RunResults:
    """The baseline run, resolved before this run starts (so ``latest`` is never this run itself)."""
    from aigc_app.store import RunNotFound

    if ref == "latest":
        info = store.latest_run(suite)
        if info is None:
            raise RunNotFound(f"no earlier run of suite {suite!r} in {store.path} to use as --baseline latest", ref=ref)
        ref = info.run_id
    return store.load_run(ref)


def _summary(results: RunResults) -> None:
    from aigc_app.reports import summary_table

    console().print(summary_table(results))


def _write_report(results: RunResults, path: Path | None) -> None:
    from aigc_app.reports import write_report

    target = path or Path(".aigc") / "reports" / f"{results.info.run_id}.html"
    written = write_report(results, "html", target)
    console().print(f"report: {written}", markup=False, highlight=False)


def _compare(base: RunResults, results: RunResults, tolerance: float) -> bool:
    from aigc_app.cli.output import is_tty
    from aigc_app.compare import compare_runs, render_comparison

    comparison = compare_runs(base, results, tolerance=tolerance)
    click.echo(render_comparison(comparison, color=is_tty()), nl=False)
    return bool(comparison.regressed)


def _exit(info: RunInfo, regressed: bool) -> None:
    failures: list[Any] = [n for n in info.notes if n.startswith("failed:")]
    if info.status == "failed":
        print_error(f"run {info.run_id} failed: " + ("; ".join(failures) or "no case could be generated"))
        sys.exit(1)
    if regressed:
        print_error(f"run {info.run_id} regressed against the baseline (--fail-on-regression)")
        sys.exit(1)
