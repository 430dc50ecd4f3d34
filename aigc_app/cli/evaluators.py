"""``aigc evaluators``: list them, score an output with a suite, and calibrate them against labelled data."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from aigc_app.cli.inputs import collect_vars, config_option, input_options, prompt_registry, prompts_dir_option
from aigc_app.cli.output import console, err_console

__all__ = ["evaluators_group"]

DATA_ENV = "AIGC_DATA_DIR"
THREADS_ENV = "AIGC_EVAL_THREADS"
AREAS = ("adherence", "fluency", "safety")


@click.group("evaluators")
def evaluators_group() -> None:
    """Scorers for fluency, prompt adherence and safety, and their calibration."""


@evaluators_group.command("list")
def list_cmd() -> None:
    """Every registered evaluator and built-in suite."""
    from rich.table import Table

    from evaluators.registry import EvaluatorRegistry
    from evaluators.suite import BUILTIN_SUITES

    table = Table("evaluator", title="evaluators", title_justify="left")
    for name in EvaluatorRegistry().names:
        table.add_row(name)
    console().print(table)
    console().print("suites: " + ", ".join(sorted(p.stem for p in BUILTIN_SUITES.glob("*.yaml"))))


@evaluators_group.command("score")
@click.argument("ref")
@click.option("--output", "output_text", help="The text to score.")
@click.option("--output-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Read it here.")
@input_options
@click.option("--suite", "suite_name", default="offline", show_default=True, help="Built-in suite or YAML file.")
@click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    envvar=THREADS_ENV,
    help=f"Threads per native pool (BLAS, OpenMP, torch) while scoring; 0 = the libraries' defaults [${THREADS_ENV}].",
)
@config_option
@prompts_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def score_cmd(
    ref: str,
    output_text: str | None,
    output_file: Path | None,
    pairs: tuple[str, ...],
    vars_file: Path | None,
    example: bool,
    suite_name: str,
    threads: int,
    config_path: Path | None,
    dirs: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Score one output of prompt REF with a suite (offline by default: nothing downloaded, no model called).

    \b
    Exit status:
      0  every gating score passed (advisory and not-applicable scores never fail the command)
      1  a non-advisory evaluator failed or errored (the table or JSON is printed first);
         also when the command cannot run (unknown prompt or suite, bad input): one red line says why
      2  wrong usage (a missing or unknown option)
    """
    from aigc_app.settings import models_config
    from evaluators.base import Sample
    from evaluators.registry import EvaluatorRegistry
    from evaluators.suite import load_suite

    if (output_text is None) == (output_file is None):
        raise click.UsageError("give the text with --output or --output-file (one of them)")
    text = output_text if output_text is not None else output_file.read_bytes().decode("utf-8", errors="replace")
    prompt = prompt_registry(dirs).get(ref)
    sample = Sample.from_prompt(prompt, collect_vars(prompt, pairs, vars_file, example), text)
    registry = EvaluatorRegistry(models_config=models_config(config_path))
    suite = load_suite(suite_name, registry)
    scores = suite.score([sample], threads=threads or None)[0]
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in scores], indent=2, ensure_ascii=False))
    else:
        print_scores(prompt.ref, scores)
    if gating_failures(suite, sample, scores):
        # SystemExit, not ctx.exit: aigc_app.cli.run returns SystemExit's code, while click hands ctx.exit's
        # code back as a return value that run does not read
        raise SystemExit(1)


def gating_failures(suite: Any, sample: Any, scores: list[Any]) -> list[Any]:
    """The scores that fail the command: from a non-advisory entry, applicable, and failed or errored.

    ``scores`` are one sample's, in suite order over the entries that apply to its task (as ``Suite.score``
    returns them); an advisory entry never fails the command, not even when its evaluator errors.
    """
    entries = [entry for entry, _ in suite.entries if entry.tasks is None or sample.task in entry.tasks]
    return [
        score
        for entry, score in zip(entries, scores, strict=True)
        if not entry.advisory and score.applicable and (score.error is not None or score.passed is False)
    ]


def print_scores(title: str, scores: list[Any]) -> None:
    """A table of scores with a verdict column: pass, fail, error, ``-`` (no verdict) or n/a (does not apply)."""
    from rich.table import Table

    table = Table("evaluator", "value", "threshold", "verdict", "reason", title=title, title_justify="left")
    for s in scores:
        verdict = {True: "[green]pass[/]", False: "[red]fail[/]", None: "-"}[s.passed]
        verdict = "[red]error[/]" if s.error else verdict if s.applicable else "n/a"
        threshold = "" if s.threshold is None else f"{s.threshold:.2f}"
        table.add_row(s.name, f"{s.value:.2f}" if s.applicable else "-", threshold, verdict, s.error or s.reason)
    console().print(table)


def default_data_dir() -> Path | None:
    """``$AIGC_DATA_DIR``, else a ``shared/data`` folder beside the working folder or the repository."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


@evaluators_group.command("calibrate")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Labelled data folder (default: ${DATA_ENV} or ../shared/data).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("evaluators/CALIBRATION.md"),
    show_default=True,
    help="Markdown report to write.",
)
@click.option("--area", "areas", multiple=True, type=click.Choice(AREAS), help="Only these areas (repeatable).")
def calibrate_cmd(data_dir: Path | None, out: Path | None, areas: tuple[str, ...]) -> None:
    """Measure every evaluator against public labelled data and write a Markdown table (rows of areas not
    measured this time are kept from the existing report)."""
    import importlib

    import evaluators

    out = out or Path(evaluators.__file__).parent / "CALIBRATION.md"
    data_dir = data_dir or default_data_dir()
    if data_dir is None or not data_dir.is_dir():
        raise click.ClickException(
            f"no labelled data folder found (looked for {data_dir or '../shared/data'}); "
            f"pass --data DIR or set {DATA_ENV}"
        )
    rows: list[dict[str, Any]] = []
    for area in areas or AREAS:
        with err_console().status(f"calibrating {area} evaluators on {data_dir}"):
            try:
                rows += importlib.import_module(f"evaluators.{area}").calibrate(data_dir)
            except FileNotFoundError as exc:
                err_console().print(f"[yellow]skipped {area}:[/] {exc}")
            except ImportError as exc:
                err_console().print(f"[yellow]skipped {area}:[/] needs {exc.name}: pip install 'aigc[eval]'")
    measured = {r.get("area") for r in rows}
    kept = [line for line in _table_lines(out) if line.split("|")[1].strip() not in measured]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(calibration_markdown(rows, data_dir, kept), encoding="utf-8")
    _print_rows(rows)
    console().print(f"wrote {out}")


def _table_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and not line.startswith(("| area ", "|---"))
    ]


def calibration_markdown(rows: list[dict[str, Any]], data_dir: Path, kept: Sequence[str] = ()) -> str:
    """The report: one table row per figure (``kept`` rows from an earlier run come first)."""
    lines = [
        "# Evaluator calibration",
        "",
        f"Computed by `aigc evaluators calibrate` from the labelled data in `{data_dir.name}/` "
        "(see `../shared/data/README.md` for sources and licences).",
        "",
        "| area | evaluator | dataset | metric | value | goal | n | notes |",
        "|---|---|---|---|---|---|---|---|",
        *kept,
    ]
    for r in rows:
        lines.append(
            f"| {r.get('area', '')} | {r.get('evaluator', '')} | {r.get('dataset', '')} | {r['metric']} | "
            f"{r['value']:.3f} | {r.get('goal', '')} | {r.get('n', '')} | {r.get('detail', '')} |"
        )
    return "\n".join(lines) + "\n"


def _print_rows(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("area", "evaluator", "metric", "value", "goal", "n", title="calibration", title_justify="left")
    for r in rows:
        table.add_row(
            r.get("area", ""),
            r.get("evaluator", ""),
            r["metric"],
            f"{r['value']:.3f}",
            str(r.get("goal", "")),
            str(r.get("n", "")),
        )
    console().print(table)
