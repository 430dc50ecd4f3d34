"""Options and helpers shared by the commands that render a prompt: inputs and extra prompt libraries."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from prompts import Prompt, PromptRegistry

__all__ = [
    "PATH_ENV",
    "collect_vars",
    "config_option",
    "input_options",
    "library_dirs",
    "prompt_registry",
    "prompts_dir_option",
]

PATH_ENV = "AIGC_PROMPTS_PATH"

prompts_dir_option = click.option(
    "--prompts-dir",
    "dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Extra prompt library root (repeatable). Also read from ${PATH_ENV} ({os.pathsep}-separated).",
)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Project config file for models (default: ./aigc.yaml when present; environment variables on top).",
)


def input_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--var``, ``--vars-file`` and ``--example`` (passed as ``pairs``, ``vars_file``, ``example``)."""
    options = [
        click.option("--var", "pairs", multiple=True, metavar="NAME=VALUE", help="An input value (repeatable)."),
        click.option(
            "--vars-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="YAML or JSON file of input values; --var wins over it.",
        ),
        click.option("--example", is_flag=True, help="Fill inputs not given with the examples the prompt declares."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def library_dirs(dirs: Sequence[Path] = ()) -> list[Path]:
    """Extra library roots: ``$AIGC_PROMPTS_PATH`` first, then ``--prompts-dir`` values."""
    return [*(Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p), *dirs]


def prompt_registry(dirs: Sequence[Path] = ()) -> PromptRegistry:
    """The built-in library plus the extra roots."""
    from prompts import PromptRegistry

    return PromptRegistry(library_dirs(dirs))


def collect_vars(prompt: Prompt, pairs: tuple[str, ...], vars_file: Path | None, example: bool) -> dict[str, Any]:
    """Input values from declared examples, then a vars file, then ``--var NAME=VALUE`` pairs."""
    values: dict[str, Any] = {}
    if example:
        values.update({k: s.example for k, s in prompt.meta.inputs.items() if s.example is not None})
    if vars_file is not None:
        values.update(_read_vars_file(vars_file))
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--var")
        values[name.strip()] = value
    return values


def _read_vars_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise click.BadParameter(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})", param_hint="--vars-file"
        ) from None
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"{path}: not valid YAML/JSON: {exc}", param_hint="--vars-file") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: must hold a mapping of input names to values", param_hint="--vars-file")
    return data
