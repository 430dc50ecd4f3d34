"""Reports of eval runs: a terminal summary, Markdown, one self-contained HTML file, JSON and JUnit XML."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from aigc_app.results import RunResults
from prompts.errors import AigcError

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["EXTENSIONS", "FORMATS", "Format", "ReportError", "render", "summary_table", "write_report"]

Format = Literal["terminal", "md", "html", "json", "junit"]
FORMATS: tuple[Format, ...] = ("terminal", "md", "html", "json", "junit")
EXTENSIONS: dict[str, str] = {"terminal": "txt", "md": "md", "html": "html", "json": "json", "junit": "xml"}


class ReportError(AigcError):
    """A report could not be made or written (the message names the path and what to do)."""


def render(results: RunResults, fmt: Format) -> str:
    """The run as text in one format: terminal (80 columns, no colour), md, html, json or junit."""
    if fmt == "terminal":
        from aigc_app.reports.terminal import render_terminal

        return render_terminal(results)
    if fmt == "md":
        from aigc_app.reports.markdown import render_markdown

        return render_markdown(results)
    if fmt == "html":
        from aigc_app.reports.html import render_html

        return render_html(results)
    if fmt == "json":
        from aigc_app.reports.json_report import render_json

        return render_json(results)
    if fmt == "junit":
        from aigc_app.reports.junit import render_junit

        return render_junit(results)
    raise ReportError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")


def summary_table(results: RunResults) -> Table:
    """One row per variant, readable at 80 columns (see :mod:`aigc_app.reports.terminal`)."""
    from aigc_app.reports.terminal import summary_table as table

    return table(results)


def write_report(results: RunResults, fmt: Format, path: str | Path) -> Path:
    """Render and write atomically (a temp file in the same folder, then a rename): the path holds either the
    previous file or the complete new one, never half a report."""
    target = Path(path).expanduser()
    text = render(results, fmt)
    if target.is_dir():
        raise ReportError(f"cannot write the report to {target}: it is a folder; give a file name, e.g. "
                          f"{target / ('report.' + EXTENSIONS[fmt])}")  # fmt: skip
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        # errors="replace": a lone surrogate in a model's output must not cost the whole report
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        reason = exc.strerror or str(exc)
        raise ReportError(
            f"cannot write the report to {target}: {reason}. Choose a writable path with -o "
            f"(the results store is untouched)"
        ) from None
    return target
