"""The ``aigc`` command. Each command group lives in its own module and imports heavy code lazily."""

from __future__ import annotations

import sys

import click

from aigc_app.cli.prompts import prompts_group

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="aigc", prog_name="aigc")
def cli() -> None:
    """aigc: versioned prompts, model routing and evaluators for AI-written content."""


cli.add_command(prompts_group)


def main() -> None:
    """Console-script entry point: run the CLI and turn aigc errors into a message and exit code 1."""
    from aigc_app.cli.output import print_error

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        print_error("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # an AigcError is a user-facing message; anything else is a bug: show it
        from prompts.errors import AigcError

        if not isinstance(exc, AigcError):
            raise
        print_error(str(exc))
        sys.exit(1)
