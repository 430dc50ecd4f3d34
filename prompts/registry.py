"""Find prompt versions in one or more library roots and resolve references to compiled prompts.

A library root holds ``<task>/<name>/<MAJOR.MINOR.PATCH>.jinja`` version files, a ``_partials/`` folder,
``prompts.lock`` (content hashes of published versions) and ``labels.yaml`` (label -> version).

References: ``name`` or ``task/name`` (latest published), ``name@1.2.0`` (exact, drafts too),
``name@^1.2`` / ``name@~1.2`` / ``name@1.2`` (newest published in range), ``name@production`` (label).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from prompts.budget import RenderBudget
from prompts.errors import InvalidTemplate, LibraryError, PromptNotFound
from prompts.files import read_source
from prompts.isolation import IsolatedWorker, compile_isolated
from prompts.sandbox import PARTIALS_DIR, AigcSandbox, make_environment
from prompts.schema import TASKS
from prompts.semver import Version, VersionRange, is_version_spec
from prompts.template import Prompt, compile_prompt

__all__ = ["BUILTIN_LIBRARY", "LABELS_FILE", "LOCK_FILE", "Library", "PromptEntry", "PromptRegistry"]

BUILTIN_LIBRARY = Path(__file__).parent / "library"
LOCK_FILE = "prompts.lock"
LABELS_FILE = "labels.yaml"
_SUFFIX = ".jinja"


@dataclass
class Library:
    """One library root with its lock (published hashes) and labels."""

    root: Path
    lock: dict[str, dict[str, str]] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def open(cls, root: Path) -> Library:
        """Read a root's lock and labels files; a missing file means empty."""
        root = root.resolve()
        if not root.is_dir():
            raise LibraryError(f"prompt library folder {root} does not exist")
        return cls(root, _read_lock(root / LOCK_FILE), _read_labels(root / LABELS_FILE))


@dataclass
class PromptEntry:
    """All version files of one prompt, e.g. ``marketing/ad_copy``."""

    id: str
    library: Library
    versions: dict[Version, Path]

    @property
    def name(self) -> str:
        """The bare name, the last part of the id."""
        return self.id.rsplit("/", 1)[-1]

    @property
    def task(self) -> str:
        """The task folder the prompt lives in."""
        return self.id.split("/", 1)[0]

    def is_published(self, version: Version) -> bool:
        """Whether the lock records this version."""
        return str(version) in self.library.lock.get(self.id, {})

    @property
    def published(self) -> list[Version]:
        """Published versions, oldest first."""
        return sorted(v for v in self.versions if self.is_published(v))

    @property
    def drafts(self) -> list[Version]:
        """Versions with a file but no lock entry, oldest first."""
        return sorted(v for v in self.versions if not self.is_published(v))

    @property
    def labels(self) -> dict[str, str]:
        """Label name -> version string."""
        return self.library.labels.get(self.id, {})


class PromptRegistry:
    """Every prompt in the built-in library plus extra roots. Resolves references, caches compiled prompts.

    ``isolate="drafts"`` (the default) compiles and renders published, hash-pinned versions in process and
    everything else in a worker process under OS limits; ``isolate="all"`` sends every version there (for
    ``prompts check`` and servers that receive templates).
    """

    def __init__(
        self,
        dirs: Sequence[str | Path] = (),
        *,
        include_builtin: bool = True,
        budget: RenderBudget | None = None,
        isolate: Literal["drafts", "all"] = "drafts",
    ) -> None:
        roots = ([BUILTIN_LIBRARY] if include_builtin else []) + [Path(d) for d in dirs]
        self.libraries = [Library.open(root) for root in dict.fromkeys(r.resolve() for r in roots)]
        self.budget = budget or RenderBudget()
        self.entries: dict[str, PromptEntry] = {}
        self.layout_problems: list[tuple[Path, str]] = []
        for library in self.libraries:
            self._scan(library)
        self._check_bare_names()
        self.isolate = isolate
        self._envs: dict[Path, AigcSandbox] = {}
        self._cache: dict[tuple[str, Version, bool], Prompt] = {}
        self._worker: IsolatedWorker | None = None

    def _scan(self, library: Library) -> None:
        for path in sorted(library.root.glob(f"*/*/*{_SUFFIX}")):
            task, name = path.parent.parent.name, path.parent.name
            if task.startswith(("_", ".")):
                continue
            if task not in TASKS:
                self.layout_problems.append((path, f"task folder {task!r} is not one of {', '.join(TASKS)}"))
                continue
            try:
                version = Version.parse(path.name.removesuffix(_SUFFIX))
            except ValueError as exc:
                self.layout_problems.append((path, f"file name must be the version, e.g. 1.0.0.jinja: {exc}"))
                continue
            prompt_id = f"{task}/{name}"
            entry = self.entries.get(prompt_id)
            if entry is None:
                entry = self.entries[prompt_id] = PromptEntry(prompt_id, library, {})
            elif entry.library is not library:
                raise LibraryError(
                    f"prompt {prompt_id} exists in two libraries: {entry.library.root} and {library.root}; "
                    f"rename one of them"
                )
            entry.versions[version] = path

    def _check_bare_names(self) -> None:
        """A bare name used in two libraries would make references ambiguous: that is an error."""
        seen: dict[str, PromptEntry] = {}
        for entry in self.entries.values():
            other = seen.setdefault(entry.name, entry)
            if other is not entry and other.library is not entry.library:
                raise LibraryError(
                    f"prompt name {entry.name!r} is used by {other.id} in {other.library.root} and by {entry.id} in "
                    f"{entry.library.root}; rename one of them (bare references like {entry.name!r} must stay unique)"
                )

    # -- references ---------------------------------------------------------------------------------

    def entry(self, name: str) -> PromptEntry:
        """The entry for ``task/name`` or a bare ``name`` that is unique across tasks."""
        if name in self.entries:
            return self.entries[name]
        matches = [e for e in self.entries.values() if e.name == name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            options = ", ".join(e.id for e in matches)
            raise PromptNotFound(f"prompt name {name!r} is ambiguous; use one of {options}", ref=name)
        known = list(self.entries) + [e.name for e in self.entries.values()]
        near = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        raise PromptNotFound(f"unknown prompt {name!r}.", ref=name, suggestions=near)

    def resolve(self, ref: str) -> tuple[PromptEntry, Version]:
        """Turn a reference into an entry and one concrete version."""
        name, _, spec = ref.strip().partition("@")
        entry = self.entry(name)
        if not spec:
            return entry, self._latest(entry, ref)
        if is_version_spec(spec):
            return entry, self._in_range(entry, spec, ref)
        version = entry.labels.get(spec)
        if version is None:
            labels = ", ".join(f"{k} -> {v}" for k, v in entry.labels.items()) or "none"
            near = difflib.get_close_matches(spec, list(entry.labels), n=3, cutoff=0.5)
            raise PromptNotFound(
                f"{entry.id} has no label {spec!r} (labels: {labels}).",
                ref=ref,
                suggestions=[f"{entry.id}@{n}" for n in near],
            )
        try:
            target = Version.parse(version)
        except ValueError as exc:
            raise LibraryError(
                f"{entry.library.root / LABELS_FILE}: label {spec!r} of {entry.id}: {exc}; "
                f"set it with `aigc prompts label set {entry.id}@VERSION {spec}`"
            ) from None
        return entry, self._exact(entry, target, ref)

    def _latest(self, entry: PromptEntry, ref: str) -> Version:
        if entry.published:
            return entry.published[-1]
        drafts = ", ".join(str(v) for v in entry.drafts)
        raise PromptNotFound(
            f"{entry.id} has no published version yet (drafts: {drafts}). Reference a draft exactly, "
            f"e.g. {entry.id}@{entry.drafts[-1]}, or publish it with `aigc prompts lock`.",
            ref=ref,
        )

    def _in_range(self, entry: PromptEntry, spec: str, ref: str) -> Version:
        if spec.count(".") == 2 and spec[0].isdigit():  # "1.2.0": exactly that file, draft or published
            return self._exact(entry, Version.parse(spec), ref)
        wanted = VersionRange.parse(spec)
        best = wanted.best(entry.published)
        if best is None:
            published = ", ".join(str(v) for v in entry.published) or "none"
            raise PromptNotFound(
                f"no published version of {entry.id} matches {spec!r} (published: {published}).", ref=ref
            )
        return best

    def _exact(self, entry: PromptEntry, version: Version, ref: str) -> Version:
        if version in entry.versions:
            return version
        have = ", ".join(str(v) for v in sorted(entry.versions))
        raise PromptNotFound(f"{entry.id} has no version {version} (versions: {have}).", ref=ref)

    # -- loading ------------------------------------------------------------------------------------

    def get(self, ref: str) -> Prompt:
        """The compiled prompt a reference names. Published versions are verified against the lock."""
        entry, version = self.resolve(ref)
        return self.load(entry, version)

    def load(self, entry: PromptEntry, version: Version, *, isolated: bool | None = None) -> Prompt:
        """Compile (once) and verify one version of an entry; ``isolated`` overrides the registry's policy."""
        published = entry.is_published(version)
        if isolated is None:
            isolated = self.isolate == "all" or not published
        key = (entry.id, version, isolated)
        prompt = self._cache.get(key)
        if prompt is None:
            prompt = self._compile(entry, version, published=published, isolated=isolated)
            self._cache[key] = prompt
        return prompt

    def close(self) -> None:
        """Stop the isolated worker process, if one was started."""
        if self._worker is not None:
            self._worker.close()

    def _compile(self, entry: PromptEntry, version: Version, *, published: bool, isolated: bool) -> Prompt:
        path = entry.versions[version]
        source = read_source(path)
        if isolated:
            if self._worker is None:
                self._worker = IsolatedWorker(self.budget)
            prompt = compile_isolated(
                self._worker, entry.id, path, source, self._roots(entry.library), published=published
            )
        else:
            env = self._env(entry.library)
            prompt = compile_prompt(entry.id, path, source, env, published=published, budget=self.budget)
        check_identity(entry, version, prompt)
        locked = entry.library.lock.get(entry.id, {}).get(str(version))
        if locked is not None and locked != f"sha256:{prompt.hash}":
            raise LibraryError(
                f"{path}: {entry.id}@{version} was published with {locked} but its content now hashes to "
                f"sha256:{prompt.hash}. Published versions are immutable: restore the file (or the partials "
                f"it uses) and put the change in a new version with `aigc prompts bump {entry.id}`."
            )
        return prompt

    def _env(self, library: Library) -> AigcSandbox:
        env = self._envs.get(library.root)
        if env is None:
            env = self._envs[library.root] = make_environment(self._roots(library), self.budget)
        return env

    def _roots(self, library: Library) -> list[Path]:
        """Where partials are looked up for a version of ``library``: its own root first."""
        roots = [library.root] + [lib.root for lib in self.libraries if lib is not library]
        return [r for r in roots if (r / PARTIALS_DIR).is_dir()]

    def __iter__(self) -> Iterable[PromptEntry]:
        return iter(sorted(self.entries.values(), key=lambda e: e.id))

    def __len__(self) -> int:
        return len(self.entries)


def check_identity(entry: PromptEntry, version: Version, prompt: Prompt) -> None:
    """The front matter must agree with where the file lives."""
    meta = prompt.meta
    problems = []
    if meta.name != entry.name:
        problems.append(f"name is {meta.name!r} but the folder is {entry.name!r}")
    if meta.task != entry.task:
        problems.append(f"task is {meta.task!r} but the file lives under {entry.task}/")
    if meta.semver != version:
        problems.append(
            f"version is {meta.version} but the file is {version}{_SUFFIX}; a version number is used once only"
        )
    if problems:
        raise InvalidTemplate("front matter " + "; ".join(problems), path=str(prompt.path), line=2)


def _read_lock(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        prompts = data["prompts"]
        if not isinstance(prompts, dict) or not all(isinstance(v, dict) for v in prompts.values()):
            raise TypeError("'prompts' must map prompt ids to {version: hash}")
        return prompts
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise LibraryError(f"{path}: unreadable lock file ({exc}); restore it from version control") from None


def _read_labels(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise LibraryError(f"{path}: malformed labels file: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise LibraryError(f"{path}: labels must map prompt ids to {{label: version}}")
    return {str(k): {str(label): str(ver) for label, ver in v.items()} for k, v in data.items()}
