"""The ``aigc`` command. Each command group lives in its own module and imports heavy code lazily."""

from __future__ import annotations

import os
import sys

import click

from aigc_app.cli.compare import compare_cmd
from aigc_app.cli.eval import eval_cmd
from aigc_app.cli.evaluators import evaluators_group
from aigc_app.cli.generate import generate_cmd
from aigc_app.cli.kb import kb_group
from aigc_app.cli.models import models_group
from aigc_app.cli.prompts import prompts_group
from aigc_app.cli.report import report_cmd
from aigc_app.cli.run import run_cmd
from aigc_app.cli.runs import runs_group
from aigc_app.cli.serve import serve_cmd

__all__ = ["cli", "main", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="aigc", prog_name="aigc")
def cli() -> None:
    """aigc: versioned prompts, model routing and evaluators for AI-written content."""


cli.add_command(prompts_group)
cli.add_command(generate_cmd)
cli.add_command(evaluators_group)
cli.add_command(models_group)
cli.add_command(eval_cmd)
cli.add_command(report_cmd)
cli.add_command(runs_group)
cli.add_command(compare_cmd)
cli.add_command(kb_group)
cli.add_command(run_cmd)
cli.add_command(serve_cmd)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code; aigc errors become one red line, not a traceback."""
    from aigc_app.cli.output import print_error

    try:
        cli.main(args=argv, prog_name="aigc", standalone_mode=False)
    except click.exceptions.Abort:
        print_error("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        from pydantic import ValidationError  # imported late: `aigc --help` must not load them

        from prompts.errors import AigcError

        if isinstance(exc, AigcError | ValidationError):
            print_error(str(exc))
            return 1
        if os.environ.get("AIGC_DEBUG"):
            raise
        print_error(
            f"unexpected {type(exc).__name__}: {exc}. This is a bug in aigc: please report it with the "
            f"traceback that AIGC_DEBUG=1 prints"
        )
        return 2
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
