"""``aigc compare``: paired statistical comparison of two stored runs, or of two variants within one run.

Exit status: 0 no regression, 1 a regression beyond the tolerance that is significant after Holm (a CI gate).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aigc_app.cli.output import err_console, is_tty, print_error

if TYPE_CHECKING:
    from aigc_app.compare import Comparison
    from aigc_app.results import RunResults

__all__ = ["compare_cmd"]

STORE_ENV = "AIGC_STORE"


@click.command("compare")
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="[RUN_B]", required=False)
@click.option("--variant-a", metavar="VARIANT", help="Baseline variant: 'prompt@version | model', prompt ref or model.")
@click.option("--variant-b", metavar="VARIANT", help="Candidate variant (same forms as --variant-a).")
@click.option(
    "--tolerance",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Largest drop still allowed, on the 0..1 scale (0.05 = 5 points of value or pass rate).",
)
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Significance level, family-wise (Holm) across evaluators.")  # fmt: skip
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "md", "json"]), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout.")
@click.option("--n-boot", type=click.IntRange(min=100), default=10_000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=STORE_ENV,
    help=f"Results store [default: ${STORE_ENV} or .aigc/results.db].",
)
def compare_cmd(
    run_a: str,
    run_b: str | None,
    variant_a: str | None,
    variant_b: str | None,
    tolerance: float,
    alpha: float,
    fmt: str,
    output: Path | None,
    n_boot: int,
    seed: int,
    store_path: Path | None,
) -> None:
    """Compare candidate RUN_B with baseline RUN_A per evaluator, on cases paired by case id.

    RUN_A and RUN_B are run ids, unique prefixes or `latest`. With one run, name two of its variants:
    aigc compare RUN --variant-a "marketing/ad_copy@1.0.0" --variant-b "marketing/ad_copy@1.1.0".
    Exits 1 when some evaluator dropped by more than --tolerance, significantly after Holm at --alpha.
    """
    from aigc_app.compare import compare_runs

    if run_b is None and not (variant_a and variant_b):
        raise click.UsageError("give two runs (RUN_A RUN_B), or one run with --variant-a and --variant-b")
    base, cand = _load(store_path, run_a, run_b or run_a)
    comparison = compare_runs(
        base, cand, tolerance=tolerance, alpha=alpha, n_boot=n_boot, seed=seed, variant_a=variant_a,
        variant_b=variant_b,
    )  # fmt: skip
    _emit(comparison, fmt, output)
    if comparison.regressed:
        print_error(_regression_line(comparison))
        sys.exit(1)  # the CI gate (`aigc_app.cli.run` turns SystemExit into the return code)


def _load(store_path: Path | None, ref_a: str, ref_b: str) -> tuple[RunResults, RunResults]:
    """Both runs from the store (which must exist: comparing never creates one)."""
    from aigc_app.compare import CompareError
    from aigc_app.store import ResultsStore, default_store_path

    path = store_path or default_store_path()
    if not path.is_file():
        raise CompareError(f"no results store at {path}: run `aigc eval SUITE` first, or pass --store PATH")
    with ResultsStore(path) as store:
        base = store.load_run(ref_a)
        cand = base if ref_b == ref_a else store.load_run(ref_b)
    return base, cand


def _emit(comparison: Comparison, fmt: str, output: Path | None) -> None:
    from aigc_app.compare import comparison_json, comparison_markdown, render_comparison

    if fmt == "md":
        text = comparison_markdown(comparison)
    elif fmt == "json":
        text = comparison_json(comparison) + "\n"
    else:
        text = render_comparison(comparison, color=output is None and is_tty())
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        from aigc_app.compare import CompareError

        raise CompareError(f"cannot write {output}: {exc.strerror}; choose another --output path") from None
    err_console().print(f"comparison: {output}")


def _regression_line(comparison: Comparison) -> str:
    worst = [r for r in comparison.rows if r.verdict == "regressed" and not r.advisory]
    parts = [f"{r.evaluator} {100 * r.effect:+.1f} points (Holm p {r.p_holm:.3g})" for r in worst]
    return f"{comparison.run_b} regressed against {comparison.run_a}: " + "; ".join(parts)
