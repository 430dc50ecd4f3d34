"""Reading the project's text files: UTF-8 only, and a file that is not says where its first bad byte is."""

from __future__ import annotations

from pathlib import Path

from prompts.errors import InvalidTemplate

__all__ = ["NotUtf8", "decode_utf8", "read_source"]


class NotUtf8(ValueError):
    """Bytes that are not UTF-8; ``line`` (1-based), ``offset`` and ``byte`` say where."""

    def __init__(self, line: int, offset: int, byte: int) -> None:
        self.line, self.offset, self.byte = line, offset, byte
        super().__init__(f"byte 0x{byte:02x} at offset {offset} (line {line}) is not UTF-8")


def decode_utf8(data: bytes) -> str:
    """``data`` as text, or NotUtf8 naming the line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotUtf8(data.count(b"\n", 0, exc.start) + 1, exc.start, data[exc.start]) from None


def read_source(path: Path) -> str:
    """A template file's text; a file that is not UTF-8 is an error naming its line and what to do."""
    try:
        return decode_utf8(path.read_bytes())
    except NotUtf8 as exc:
        raise InvalidTemplate(
            f"the file is not valid UTF-8 (byte 0x{exc.byte:02x} at offset {exc.offset}); save it with UTF-8 encoding",
            path=str(path),
            line=exc.line,
        ) from None
