"""Publishing workflow: lock drafts, check the library, bump versions, move labels."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from prompts.errors import InvalidTemplate, LibraryError, PromptError
from prompts.registry import LABELS_FILE, LOCK_FILE, Library, PromptEntry, PromptRegistry
from prompts.semver import Version, is_version_spec
from prompts.template import Prompt

__all__ = ["LockChange", "Problem", "bump", "check", "lock", "set_label"]


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`check`; errors fail the check, warnings inform."""

    level: Literal["error", "warning"]
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{self.level}: {where}: {self.message}"


@dataclass(frozen=True)
class LockChange:
    """A version published or a stale lock entry removed by :func:`lock`."""

    action: Literal["published", "removed"]
    ref: str
    hash: str


def check(registry: PromptRegistry) -> list[Problem]:
    """Every problem in the library: broken files, changed published content, stale lock, dangling labels.

    Every version is compiled, and rendered with its example inputs, in the isolated worker: one bad file
    never stops the check from reporting the others.
    """
    problems = [Problem("error", str(path), message) for path, message in registry.layout_problems]
    for entry in registry:
        for version, path in sorted(entry.versions.items()):
            problems += _check_version(registry, entry, version, path)
        problems += _check_labels(entry)
    for library in registry.libraries:
        problems += _check_lock(registry, library)
    return problems


def _check_version(registry: PromptRegistry, entry: PromptEntry, version: Version, path: Path) -> list[Problem]:
    try:
        prompt = registry.load(entry, version, isolated=True)
        example = _example_inputs(prompt)
        if example is not None:
            prompt.to_messages(example)
    except InvalidTemplate as exc:
        return [Problem("error", exc.path or str(path), exc.detail, exc.line)]
    except PromptError as exc:
        return [Problem("error", str(path), str(exc).removeprefix(f"{path}: "))]
    except Exception as exc:  # a bug of ours must not hide the other files' findings
        return [Problem("error", str(path), f"unexpected {type(exc).__name__} while checking: {exc}")]
    found = [Problem("warning", str(path), w.removeprefix(f"{path}: ")) for w in prompt.warnings]
    if not prompt.published:
        found.append(Problem("warning", str(path), f"{prompt.ref} is a draft; publish it with `aigc prompts lock`"))
    return found


def _example_inputs(prompt: Prompt) -> dict[str, Any] | None:
    """The inputs ``--example`` renders with, or None when a required input has no example."""
    values = {name: spec.example for name, spec in prompt.meta.inputs.items() if spec.example is not None}
    missing = [name for name, spec in prompt.meta.inputs.items() if spec.is_required and name not in values]
    return None if missing else values


def _check_labels(entry: PromptEntry) -> list[Problem]:
    found = []
    labels_path = str(entry.library.root / LABELS_FILE)
    for label, version in entry.labels.items():
        try:
            target = Version.parse(version)
        except ValueError as exc:
            found.append(Problem("error", labels_path, f"{entry.id} label {label!r}: {exc}"))
            continue
        if target not in entry.versions:
            found.append(
                Problem(
                    "error",
                    labels_path,
                    f"{entry.id} label {label!r} points to {version}, "
                    f"which does not exist (versions: {', '.join(map(str, sorted(entry.versions)))})",
                )
            )
        elif not entry.is_published(target):
            found.append(
                Problem(
                    "error",
                    labels_path,
                    f"{entry.id} label {label!r} points to draft {version}; publish it first with `aigc prompts lock`",
                )
            )
    return found


def _check_lock(registry: PromptRegistry, library: Library) -> list[Problem]:
    found = []
    lock_path = str(library.root / LOCK_FILE)
    for prompt_id, versions in library.lock.items():
        entry = registry.entries.get(prompt_id)
        for version in versions:
            if entry is None or entry.library is not library or Version.parse(version) not in entry.versions:
                found.append(
                    Problem(
                        "error",
                        lock_path,
                        f"stale lock: {prompt_id}@{version} is published but its "
                        f"file is gone; restore it, or run `aigc prompts lock` to drop the entry",
                    )
                )
    for prompt_id in library.labels:
        if prompt_id not in registry.entries:
            found.append(Problem("error", str(library.root / LABELS_FILE), f"labels name unknown prompt {prompt_id}"))
    return found


def lock(registry: PromptRegistry) -> list[LockChange]:
    """Publish every draft (record its hash) and drop entries whose files are gone. Writes nothing on error."""
    changes: list[LockChange] = []
    updated: dict[Path, dict[str, dict[str, str]]] = {}
    for library in registry.libraries:
        new_lock = {pid: dict(versions) for pid, versions in library.lock.items()}
        for entry in (e for e in registry if e.library is library):
            for version in sorted(entry.versions):
                prompt = registry.load(entry, version)  # raises on broken files or changed published content
                if not prompt.published:
                    new_lock.setdefault(entry.id, {})[str(version)] = f"sha256:{prompt.hash}"
                    changes.append(LockChange("published", prompt.ref, prompt.hash))
        for prompt_id, versions in list(new_lock.items()):
            entry = registry.entries.get(prompt_id)
            for version in list(versions):
                if entry is None or Version.parse(version) not in entry.versions:
                    changes.append(LockChange("removed", f"{prompt_id}@{version}", versions.pop(version)[7:]))
            if not versions:
                del new_lock[prompt_id]
        if new_lock != library.lock:
            updated[library.root] = new_lock
    for root, new_lock in updated.items():
        _write_lock(root / LOCK_FILE, new_lock)
    return changes


def _write_lock(path: Path, prompts: dict[str, dict[str, str]]) -> None:
    ordered = {pid: dict(sorted(v.items(), key=lambda kv: Version.parse(kv[0]))) for pid, v in sorted(prompts.items())}
    text = json.dumps({"lock_version": 1, "prompts": ordered}, indent=2) + "\n"
    _write_atomic(path, text)


def _write_atomic(path: Path, text: str) -> None:
    """Write a temporary file beside ``path``, then rename it over ``path``: a failure leaves the old file whole."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for write_text
    try:
        with open(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, path.stat().st_mode & 0o7777)  # keep the permissions the old file had
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


_VERSION_LINE = re.compile(r"^version:.*$", re.MULTILINE)
_CHANGELOG = re.compile(r"^changelog:.*(?:\n[ \t]+.*)*$", re.MULTILINE)


def bump(registry: PromptRegistry, name: str, part: str, message: str) -> Path:
    """Copy the newest version file of ``name`` to the next ``part`` version as a draft; return its path."""
    if not message.strip() or "\n" in message:
        raise LibraryError('a bump needs a one-line changelog message (-m "what changed and why")')
    entry = registry.entry(name)
    latest = max(entry.versions)
    new = latest.bump(part)
    path = entry.versions[latest].with_name(f"{new}.jinja")
    if path.exists():
        raise LibraryError(f"{path} already exists; a version number is used once only")
    text = entry.versions[latest].read_text(encoding="utf-8")
    head, sep, body = text.partition("\n---")
    head = _VERSION_LINE.sub(f"version: {new}", head, count=1)
    head = _CHANGELOG.sub("changelog: " + json.dumps(message.strip()), head, count=1)
    path.write_text(head + sep + body, encoding="utf-8")
    return path


def set_label(registry: PromptRegistry, ref: str, label: str) -> tuple[str, str | None]:
    """Point ``label`` of a prompt at the exact published version ``ref`` names; return (new, old) versions."""
    if is_version_spec(label) or not re.fullmatch(r"[a-z][a-z0-9_-]*", label):
        raise LibraryError(f"label {label!r} must be a lowercase word such as production or staging")
    name, _, spec = ref.partition("@")
    if not re.fullmatch(r"\d+\.\d+\.\d+", spec):
        raise LibraryError(f"name the exact version to label, e.g. {name}@1.0.0 (not {spec or 'nothing'})")
    entry, version = registry.resolve(ref)
    if not entry.is_published(version):
        raise LibraryError(f"{entry.id}@{version} is a draft; publish it with `aigc prompts lock` before labelling it")
    labels = {pid: dict(v) for pid, v in entry.library.labels.items()}
    old = labels.setdefault(entry.id, {}).get(label)
    labels[entry.id][label] = str(version)
    _write_labels(entry.library.root / LABELS_FILE, labels)
    entry.library.labels = labels
    return str(version), old


def _write_labels(path: Path, labels: dict[str, dict[str, str]]) -> None:
    header = (
        "# Labels point a prompt at one published version; reference them as task/name@label.\n"
        "# Change them with: aigc prompts label set task/name@VERSION LABEL\n"
    )
    body = yaml.safe_dump({k: dict(sorted(v.items())) for k, v in sorted(labels.items())}, sort_keys=False)
    _write_atomic(path, header + body)
