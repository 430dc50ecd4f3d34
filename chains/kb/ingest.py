"""Local files -> chunks with stable ids and metadata, ready for a knowledge base.

    chunks = load_file(Path("guides/brand.md"))      # LoadedFile(source, chunks) or Skipped(path, reason)

Supported: Markdown, plain text, JSON Lines (one record a line), CSV (one record a row) and PDF (text layer, via
pypdf). Each chunk's id is ``<source hash>-<chunk index>-<content hash>``: re-ingesting an unchanged file gives the
same ids, a changed chunk gets a new id, so the store can upsert new ids and delete the source's stale ones.
Empty, oversized, binary and unsupported files are :class:`Skipped` with a reason, never an exception.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_FILE_BYTES",
    "RECORD_KEY",
    "SUFFIXES",
    "Chunk",
    "LoadedFile",
    "Skipped",
    "chunk_id",
    "iter_files",
    "load_file",
    "source_key",
]

MAX_FILE_BYTES = 20 * 1024 * 1024
CHUNK_SIZE = 1000  # characters; MiniLM reads about 256 word pieces (~1,000 characters of English)
CHUNK_OVERLAP = 100
SUFFIXES = (".md", ".markdown", ".txt", ".jsonl", ".csv", ".pdf")
RECORD_KEY = "aigc:record"  # metadata key holding a JSONL/CSV record as JSON (the example selector reads it)
_TEXT_FIELDS = ("text", "content", "page_content", "body", "input")  # "input": a few-shot example


@dataclass(frozen=True)
class Chunk:
    """One piece of a file as it is stored: id, text and flat metadata (str, int, float or bool values)."""

    id: str
    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class LoadedFile:
    """A file read and split: its source key, content hash and chunks."""

    source: str
    file_hash: str
    chunks: list[Chunk] = field(default_factory=list)


@dataclass(frozen=True)
class Skipped:
    """A file that was not ingested, and why."""

    path: str
    reason: str


def source_key(path: Path) -> str:
    """How a file is named in the store: its absolute POSIX path (``--source`` is resolved the same way)."""
    return path.expanduser().resolve().as_posix()


def chunk_id(source: str, index: int, text: str) -> str:
    """The stable id of chunk ``index`` of ``source`` with content ``text``."""
    return f"{_hash(source)[:16]}-{index}-{_hash(text)[:16]}"


def iter_files(paths: Iterable[Path]) -> Iterator[Path | Skipped]:
    """Files under ``paths`` (folders recursively, sorted; hidden entries skipped), or Skipped for missing paths."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not any(p.startswith(".") for p in child.relative_to(path).parts):
                    yield child
        elif path.is_file():
            yield path
        else:
            yield Skipped(str(path), "not found")


def load_file(path: Path, *, chunk_size: int = CHUNK_SIZE, max_bytes: int = MAX_FILE_BYTES) -> LoadedFile | Skipped:
    """Read and split one file, or say why it is skipped."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        return Skipped(str(path), f"unsupported type {suffix or '(no suffix)'} (supported: {', '.join(SUFFIXES)})")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return Skipped(str(path), f"too large: {size / 1e6:.1f} MB (limit {max_bytes / 1e6:.0f} MB)")
        data = path.read_bytes()
    except OSError as exc:
        return Skipped(str(path), f"cannot read it: {exc.strerror or exc}")
    source = source_key(path)
    try:
        sections = _sections(path, suffix, data)
    except _Unreadable as exc:
        return Skipped(str(path), str(exc))
    if not any(text.strip() for text, _ in sections):
        return Skipped(str(path), "empty: no text")
    file_hash = hashlib.sha256(data).hexdigest()
    return LoadedFile(source, file_hash, _chunk(source, path, sections, chunk_size, suffix, file_hash))


class _Unreadable(Exception):
    pass


Section = tuple[str, dict[str, Any]]


def _sections(path: Path, suffix: str, data: bytes) -> list[Section]:
    if suffix == ".pdf":
        return _pdf_sections(data)
    if b"\x00" in data[:8192]:
        raise _Unreadable("binary content (NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if suffix == ".jsonl":
        return _jsonl_sections(text)
    if suffix == ".csv":
        return _csv_sections(text)
    return [(text, {})]


def _pdf_sections(data: bytes) -> list[Section]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:
        raise _Unreadable("PDF needs pypdf: pip install 'aigc[rag]'") from None
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [(page.extract_text() or "", {"page": n}) for n, page in enumerate(reader.pages, 1)]
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise _Unreadable(f"not a readable PDF: {exc}") from None
    if not any(text.strip() for text, _ in pages):
        raise _Unreadable("PDF has no text layer (scanned images?)")
    return pages


def _jsonl_sections(text: str) -> list[Section]:
    sections: list[Section] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _Unreadable(f"line {number} is not JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise _Unreadable(f"line {number} is not a JSON object")
        sections.append(_record_section(record, number))
    return sections


def _csv_sections(text: str) -> list[Section]:
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise _Unreadable(f"malformed CSV: {exc}") from None
    return [_record_section({k: v for k, v in row.items() if k}, number) for number, row in enumerate(rows, 2)]


def _record_section(record: dict[str, Any], line: int) -> Section:
    body = next((str(record[k]) for k in _TEXT_FIELDS if isinstance(record.get(k), str)), None)
    if body is None:
        body = "\n".join(f"{k}: {v}" for k, v in record.items() if v not in (None, ""))
    as_json = json.dumps(record, ensure_ascii=False, default=str)
    meta: dict[str, Any] = {"line": line, "record": True, RECORD_KEY: as_json}
    if isinstance(record.get("title"), str):
        meta["title"] = record["title"]
    return body, meta


def _chunk(
    source: str, path: Path, sections: list[Section], chunk_size: int, suffix: str, file_hash: str
) -> list[Chunk]:
    splitter = _splitter(suffix, chunk_size)
    file_title = _title(path, sections[0][0]) if suffix in (".md", ".markdown", ".txt", ".pdf") else path.stem
    chunks: list[Chunk] = []
    for text, extra in sections:
        for piece in splitter.split_text(text) if text.strip() else []:
            index = len(chunks)
            meta = {"source": source, "title": file_title, "chunk": index, "file_hash": file_hash, **extra}
            chunks.append(Chunk(chunk_id(source, index, piece), piece, meta))
    return chunks


def _splitter(suffix: str, chunk_size: int) -> Any:
    from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

    overlap = min(CHUNK_OVERLAP, chunk_size // 5)
    if suffix in (".md", ".markdown"):
        return RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=chunk_size, chunk_overlap=overlap
        )
    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=overlap)


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _title(path: Path, text: str) -> str:
    match = _HEADING.search(text[:4000])
    return match.group(1).strip() if match else path.stem


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
