"""``aigc kb``: knowledge bases in Chroma (add files, list, remove, query).

The store is embedded in ``.aigc/kb`` ($AIGC_KB_DIR, ``--path``) unless a Chroma server is named (``--server URL``
or $AIGC_KB_SERVER). Chroma and the embedding model load only when a command runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aigc_app.cli.output import console, err_console, print_warning

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from chains.kb import IngestSummary, Passage

__all__ = ["kb_group"]

DIR_ENV = "AIGC_KB_DIR"
SERVER_ENV = "AIGC_KB_SERVER"


def _store_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--path", "path", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help=f"Embedded store folder [default: ${DIR_ENV} or .aigc/kb]."),
        click.option("--server", "server", metavar="URL", default=None,
                     help=f"A Chroma server, e.g. http://127.0.0.1:8000 [default: ${SERVER_ENV}; none: embedded]."),
        click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
                     help="Seconds to wait for the server to answer."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def _client(path: Path | None, server: str | None, timeout: float) -> ClientAPI:
    from chains.kb import connect

    url = server or os.environ.get(SERVER_ENV) or None
    folder = path or Path(os.environ.get(DIR_ENV) or ".aigc/kb")
    return connect(folder, url=url, timeout=timeout)


@click.group("kb")
def kb_group() -> None:
    """Knowledge bases: brand guides, product facts, curricula in Chroma, for retrieval and few-shot examples."""


@kb_group.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--collection", "-c", required=True, help="Collection to add to (created if new).")
@click.option("--chunk-size", type=click.IntRange(min=100), default=1000, show_default=True, help="Characters.")
@_store_options
def add_cmd(
    paths: tuple[Path, ...], collection: str, chunk_size: int, path: Path | None, server: str | None, timeout: float
) -> None:
    """Ingest files or folders (md, txt, jsonl, csv, pdf); changed files are updated, stale chunks removed."""
    from chains.kb import KnowledgeBase
    from chains.kb.ingest import iter_files

    kb = KnowledgeBase.open(_client(path, server, timeout), collection)
    total = sum(1 for _ in iter_files(paths))
    summary = _ingest_with_progress(kb, paths, chunk_size, total)
    _print_summary(kb.name, summary, kb.count())


def _ingest_with_progress(kb: Any, paths: tuple[Path, ...], chunk_size: int, total: int) -> IngestSummary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err_console(), transient=True) as progress:
        task = progress.add_task("ingesting", total=total)

        def advance(name: str, outcome: str) -> None:
            progress.update(task, advance=1, description=f"ingesting {Path(name).name[:30]}")

        return kb.ingest(paths, chunk_size=chunk_size, on_file=advance)


def _print_summary(name: str, summary: IngestSummary, count: int) -> None:
    out = console()
    out.print(
        f"{name}: {len(summary.added)} added, {len(summary.updated)} updated, {len(summary.unchanged)} unchanged, "
        f"{len(summary.skipped)} skipped; {summary.chunks_written} chunks written, {summary.chunks_removed} "
        f"removed; {count} chunks in the collection",
        soft_wrap=False,
        markup=False,
    )
    for item in summary.skipped:
        print_warning(f"skipped {item.path}: {item.reason}")


@kb_group.command("list")
@click.argument("collection", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@_store_options
def list_cmd(collection: str | None, as_json: bool, path: Path | None, server: str | None, timeout: float) -> None:
    """The collections; with a COLLECTION, its source files."""
    from chains.kb import KnowledgeBase, list_collections

    client = _client(path, server, timeout)
    if collection is None:
        rows = [[c.name, f"{c.chunks:,}", c.model or "?", str(c.dimension or "?")] for c in list_collections(client)]
        headers = ["collection", "chunks", "embedding model", "dim"]
    else:
        sources = KnowledgeBase.open(client, collection, create=False).sources()
        rows = [[s.source, s.title, f"{s.chunks:,}", s.file_hash[:12]] for s in sources]
        headers = ["source", "title", "chunks", "file hash"]
    if as_json:
        click.echo(json.dumps([dict(zip(headers, row, strict=True)) for row in rows], indent=2))
    elif not rows:
        console().print("no collections yet: aigc kb add PATH --collection NAME" if collection is None else "empty")
    else:
        console().print(_table(headers, rows, fold={0, 1} if collection else {2}), soft_wrap=False)


def _table(headers: list[str], rows: list[list[str]], fold: set[int]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, width=min(console().width, 80))
    for i, header in enumerate(headers):
        right = header in ("chunks", "dim", "score", "#")
        table.add_column(header, justify="right" if right else "left", no_wrap=i not in fold, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


@kb_group.command("remove")
@click.argument("collection")
@click.option("--source", "source", default=None, help="Remove only this file's chunks; else the whole collection.")
@_store_options
def remove_cmd(collection: str, source: str | None, path: Path | None, server: str | None, timeout: float) -> None:
    """Delete a collection, or one source file's chunks from it."""
    from chains.kb import KnowledgeBase, delete_collection

    client = _client(path, server, timeout)
    if source is None:
        count = delete_collection(client, collection)
        console().print(f"deleted collection {collection} ({count} chunks)", markup=False)
        return
    removed = KnowledgeBase.open(client, collection, create=False).remove(source)
    if not removed:
        raise click.ClickException(
            f"collection {collection!r} has no chunks from {source}; see `aigc kb list {collection}`"
        )
    console().print(f"removed {removed} chunks of {source} from {collection}", markup=False)


@kb_group.command("query")
@click.argument("collection")
@click.argument("text")
@click.option("-k", type=click.IntRange(min=1), default=4, show_default=True, help="Passages to return.")
@click.option("--mmr", is_flag=True, help="Maximal marginal relevance: relevant and mutually diverse passages.")
@click.option("--where", multiple=True, metavar="KEY=VALUE", help="Metadata filter (repeat to AND them).")
@click.option("--json", "as_json", is_flag=True, help="Print passages as JSON.")
@_store_options
def query_cmd(
    collection: str,
    text: str,
    k: int,
    mmr: bool,
    where: tuple[str, ...],
    as_json: bool,
    path: Path | None,
    server: str | None,
    timeout: float,
) -> None:
    """The passages of COLLECTION nearest TEXT."""
    from chains.kb import KnowledgeBase

    kb = KnowledgeBase.open(_client(path, server, timeout), collection, create=False)
    passages = kb.search(text, k=k, mmr=mmr, where=_where(where))
    if as_json:
        click.echo(json.dumps([_passage_dict(p) for p in passages], indent=2, ensure_ascii=False))
    elif not passages:
        console().print("no passages match")
    else:
        rows = [[f"{p.score:.3f}", _short(p.source), _snippet(p.text)] for p in passages]
        console().print(_table(["score", "source", "passage"], rows, fold={2}), soft_wrap=False)


def _passage_dict(p: Passage) -> dict[str, Any]:
    return {"id": p.id, "source": p.source, "score": p.score, "text": p.text, "metadata": dict(p.metadata)}


def _short(source: str, limit: int = 24) -> str:
    name = Path(source).name
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _snippet(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _where(pairs: tuple[str, ...]) -> dict[str, Any] | None:
    clauses = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"{pair!r}: expected KEY=VALUE, e.g. --where title='Brand guide'", param_hint="--where"
            )
        clauses.append({key.strip(): _value(value)})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
