"""Semantic versions and the ranges a prompt reference may use: ``1.2.0``, ``^1.2``, ``~1.2``, ``1.2``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["Version", "VersionRange", "is_version_spec"]

_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_PARTIAL = re.compile(r"^([\^~])?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?$")


class Version(NamedTuple):
    """A ``MAJOR.MINOR.PATCH`` version; compares numerically."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``"1.2.0"``; raise ValueError on anything else (no pre-release tags)."""
        match = _VERSION.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a version of the form MAJOR.MINOR.PATCH (e.g. 1.2.0)")
        return cls(*(int(part) for part in match.groups()))

    def bump(self, part: str) -> Version:
        """The next version after a ``major``, ``minor`` or ``patch`` change."""
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        if part == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise ValueError(f"unknown version part {part!r}: use major, minor or patch")

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


class VersionRange(NamedTuple):
    """A half-open range ``[low, high)`` built from an npm-style spec."""

    spec: str
    low: Version
    high: Version | None

    @classmethod
    def parse(cls, spec: str) -> VersionRange:
        """Parse ``1.2.0`` (exact), ``1.2`` / ``1`` (any patch / minor), ``^1.2`` (compatible), ``~1.2.3``."""
        match = _PARTIAL.match(spec.strip())
        if not match:
            raise ValueError(f"{spec!r} is not a version or range (examples: 1.2.0, ^1.2, ~1.2, 1.2)")
        op, major_s, minor_s, patch_s = match.groups()
        major, minor, patch = int(major_s), int(minor_s or 0), int(patch_s or 0)
        low = Version(major, minor, patch)
        return cls(spec, low, _upper_bound(op, low, given=2 if patch_s is None else 3, partial=minor_s is None))

    def __contains__(self, version: object) -> bool:
        if not isinstance(version, Version):
            return False
        return version >= self.low and (self.high is None or version < self.high)

    def best(self, versions: Iterable[Version]) -> Version | None:
        """The highest of ``versions`` inside the range, or None."""
        inside = [v for v in versions if v in self]
        return max(inside) if inside else None


def _upper_bound(op: str | None, low: Version, *, given: int, partial: bool) -> Version | None:
    if partial:  # "1", "^1", "~1": any 1.x.y
        return Version(low.major + 1, 0, 0)
    if op == "^":
        if low.major > 0:
            return Version(low.major + 1, 0, 0)
        if low.minor > 0 or given == 2:
            return Version(0, low.minor + 1, 0)
        return Version(0, 0, low.patch + 1)
    if op == "~" or given == 2:  # "~1.2", "~1.2.3", "1.2": any patch of 1.2
        return Version(low.major, low.minor + 1, 0)
    return Version(low.major, low.minor, low.patch + 1)  # "1.2.3": exactly that


def is_version_spec(text: str) -> bool:
    """Whether ``text`` reads as a version or range rather than a label name."""
    return bool(_PARTIAL.match(text.strip()))
