"""/v1/prompts: list, show, diff and render the served prompt library with typed inputs; render playground drafts.

Prompt names are ``task/name`` or a bare ``name`` when it is unique (``marketing/ad_copy`` or ``ad_copy``), so a
path can hold a slash: ``GET /v1/prompts/marketing/ad_copy/1.1.0``. Templates received over HTTP (the playground's
edited drafts) compile and render only in the isolated worker, under the hardened render bounds.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.convertors import Convertor, register_url_convertor

from aigc_app.server.errors import ERROR_DOC, ApiError
from aigc_app.server.services import Services, services

Svc = Annotated[Services, Depends(services)]

if TYPE_CHECKING:
    from prompts import Prompt
    from prompts.registry import PromptEntry

__all__ = [
    "DraftRequest",
    "InputField",
    "PromptDetail",
    "PromptSummary",
    "PromptVersion",
    "RenderRequest",
    "Rendered",
    "Svc",
    "http_error",
    "input_fields",
    "load_version",
    "router",
]


class _SemverConvertor(Convertor[str]):
    """Matches ``1.2.0`` only, so ``/v1/prompts/{name:path}/{version:semver}`` leaves ``task/name`` to the name."""

    regex = r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("semver", _SemverConvertor())

router = APIRouter(prefix="/v1/prompts", tags=["prompts"], responses={400: ERROR_DOC, 404: ERROR_DOC})


# -- response and request models ------------------------------------------------------------------------------------


class InputField(BaseModel):
    """One declared input of a prompt version: what the playground builds a form field from."""

    name: str
    type: str = Field(description="string, integer, number, boolean, list or object")
    items: str | None = Field(None, description="Element type of a list.")
    required: bool
    default: Any = None
    enum: list[Any] | None = None
    example: Any = None
    max_length: int | None = None
    description: str = ""


class PromptSummary(BaseModel):
    """One prompt of the library: its versions and labels."""

    id: str = Field(description="task/name, e.g. marketing/ad_copy")
    name: str
    task: str
    description: str
    versions: list[str] = Field(description="Every version, oldest first.")
    published: list[str]
    drafts: list[str]
    labels: dict[str, str]
    latest: str = Field(description="The newest published version, else the newest draft.")


class PromptDetail(PromptSummary):
    """A prompt with the input schema of its latest version."""

    inputs: list[InputField]


class PromptVersion(BaseModel):
    """One version: its template source, metadata and input schema."""

    id: str
    ref: str = Field(description="task/name@version")
    version: str
    published: bool
    hash: str = Field(description="sha256 over the version file and the partials it uses")
    description: str
    changelog: str
    output_format: str
    model: dict[str, Any] = Field(description="Generation defaults from the front matter.")
    expect: list[dict[str, Any]] = Field(description="Declarative checks the adherence evaluator applies.")
    inputs: list[InputField]
    source: str


class RenderRequest(BaseModel):
    """Inputs to render one version with (``version`` omitted: the latest published one)."""

    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(None, examples=["1.1.0"], description="A version, range (^1.0) or label.")
    inputs: dict[str, Any] = Field(default_factory=dict)


class DraftRequest(BaseModel):
    """A template edited in the playground: the full version file (front matter and body) and inputs."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=200_000, description="The version file text, front matter included.")
    inputs: dict[str, Any] = Field(default_factory=dict)
    prompt: str | None = Field(None, description="The prompt it was edited from (its library's partials are used).")


class Message(BaseModel):
    """One chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


class Rendered(BaseModel):
    """Rendered chat messages and the validated inputs (defaults filled in)."""

    ref: str
    hash: str
    messages: list[Message]
    inputs: dict[str, Any]
    warnings: list[str] = Field(default_factory=list)


class PromptDiff(BaseModel):
    """A unified diff of two versions' files."""

    a: str
    b: str
    diff: str


# -- errors ---------------------------------------------------------------------------------------------------------


def http_error(exc: Exception) -> ApiError:
    """The HTTP status and message for an aigc error: 404 for unknown names (with near names), 400 for bad input."""
    from aigc_app.store import RunNotFound
    from prompts import PromptNotFound

    status = 404 if isinstance(exc, (PromptNotFound, RunNotFound)) else 400
    return ApiError(status, str(exc))


# -- routes ---------------------------------------------------------------------------------------------------------


@router.get("", summary="List the served prompts")
def list_prompts(svc: Svc) -> list[PromptSummary]:
    return [_summary(entry) for entry in svc.registry]


@router.post("/render-draft", summary="Render an edited template under the hardened bounds (isolated worker)")
def render_draft(svc: Svc, body: DraftRequest) -> Rendered:
    from prompts import PromptError
    from prompts.isolation import compile_isolated

    roots = _draft_roots(svc, body.prompt)
    path = Path(f"<draft of {body.prompt or 'a new prompt'}>.jinja")
    try:
        with svc.lock:
            worker = svc.draft_worker
        prompt = compile_isolated(worker, _draft_id(body.source), path, body.source, roots, published=False)
        return _rendered(prompt, body.inputs)
    except PromptError as exc:
        raise http_error(exc) from None


@router.get("/{name:path}/diff", summary="Unified diff of two versions of a prompt")
def diff_versions(
    svc: Svc,
    name: str,
    a: str = Query(description="Baseline version, e.g. 1.0.0"),
    b: str = Query(description="Candidate version, e.g. 1.1.0"),
) -> PromptDiff:
    entry = _entry(svc, name)
    sources = [_version_path(entry, v).read_text(encoding="utf-8") for v in (a, b)]
    lines = difflib.unified_diff(
        sources[0].splitlines(keepends=True),
        sources[1].splitlines(keepends=True),
        fromfile=f"{entry.id}@{a}",
        tofile=f"{entry.id}@{b}",
    )
    return PromptDiff(a=f"{entry.id}@{a}", b=f"{entry.id}@{b}", diff="".join(lines))


@router.post("/{name:path}/render", summary="Render a version with typed inputs")
def render_prompt(svc: Svc, name: str, body: RenderRequest) -> Rendered:
    from prompts import PromptError

    prompt = load_version(svc, name, body.version)
    try:
        return _rendered(prompt, body.inputs)
    except PromptError as exc:
        raise http_error(exc) from None


@router.get("/{name:path}/{version:semver}", summary="One version: template source and metadata")
def show_version(svc: Svc, name: str, version: str) -> PromptVersion:
    prompt = load_version(svc, name, version)
    meta = prompt.meta
    return PromptVersion(
        id=prompt.id,
        ref=prompt.ref,
        version=prompt.version,
        published=prompt.published,
        hash=prompt.hash,
        description=meta.description,
        changelog=meta.changelog,
        output_format=meta.output.format,
        model=meta.model.model_dump(exclude_none=True),
        expect=[{"check": e.check, **e.kwargs} for e in meta.expect],
        inputs=input_fields(prompt),
        source=prompt.source,
    )


@router.get("/{name:path}", summary="One prompt: versions, labels and the input schema of its latest version")
def show_prompt(svc: Svc, name: str) -> PromptDetail:
    entry = _entry(svc, name)
    summary = _summary(entry)
    prompt = load_version(svc, entry.id, summary.latest)
    return PromptDetail(**summary.model_dump(), inputs=input_fields(prompt))


# -- pieces ---------------------------------------------------------------------------------------------------------


def input_fields(prompt: Prompt) -> list[InputField]:
    """The declared inputs of a version, in declaration order."""
    return [
        InputField(
            name=name,
            type=spec.type,
            items=spec.items,
            required=spec.is_required,
            default=spec.default,
            enum=spec.enum,
            example=spec.example,
            max_length=spec.max_length,
            description=spec.description,
        )
        for name, spec in prompt.meta.inputs.items()
    ]


def _summary(entry: PromptEntry) -> PromptSummary:
    versions = sorted(entry.versions)
    latest = (entry.published or versions)[-1]
    path = entry.versions[latest]
    try:
        description = _description(path, path.stat().st_mtime_ns)
    except OSError:
        description = ""
    return PromptSummary(
        id=entry.id,
        name=entry.name,
        task=entry.task,
        description=description,
        versions=[str(v) for v in versions],
        published=[str(v) for v in entry.published],
        drafts=[str(v) for v in entry.drafts],
        labels=dict(entry.labels),
        latest=str(latest),
    )


@lru_cache(maxsize=1024)
def _description(path: Path, mtime_ns: int) -> str:
    """The front matter's description (cached per file version: the list is read on every playground load)."""
    from prompts.frontmatter import parse_prompt_file

    try:
        return parse_prompt_file(path.read_text(encoding="utf-8"), str(path)).meta.description
    except Exception:  # a broken file is reported when it is loaded; the list still shows the prompt
        return ""


def _entry(svc: Services, name: str) -> PromptEntry:
    from prompts import PromptError

    try:
        return svc.registry.entry(name.strip("/"))
    except PromptError as exc:
        raise http_error(exc) from None


def _version_path(entry: PromptEntry, version: str) -> Path:
    from prompts import PromptNotFound
    from prompts.semver import Version

    try:
        return entry.versions[Version.parse(version)]
    except (ValueError, KeyError):
        have = ", ".join(str(v) for v in sorted(entry.versions))
        raise http_error(
            PromptNotFound(f"{entry.id} has no version {version!r} (versions: {have}).", ref=version)
        ) from None


def load_version(svc: Services, name: str, version: str | None) -> Prompt:
    """A compiled version; published versions of the served libraries render in process, drafts isolated."""
    from prompts import PromptError

    ref = f"{name.strip('/')}@{version}" if version else name.strip("/")
    try:
        with svc.lock:
            return svc.registry.get(ref)
    except PromptError as exc:
        raise http_error(exc) from None


def _rendered(prompt: Prompt, inputs: dict[str, Any]) -> Rendered:
    values = prompt.validate_inputs(inputs)
    messages = prompt.to_messages(inputs)
    return Rendered(
        ref=prompt.ref,
        hash=prompt.hash,
        messages=[Message(role=m.role, content=m.content) for m in messages],
        inputs=values,
        warnings=list(prompt.warnings),
    )


def _draft_id(source: str) -> str:
    """``task/name`` from the draft's front matter (checked again, strictly, by the isolated compile)."""
    import re

    task = re.search(r"^task:\s*([a-z]+)\s*$", source, re.MULTILINE)
    name = re.search(r"^name:\s*([a-z][a-z0-9_]*)\s*$", source, re.MULTILINE)
    return f"{task.group(1) if task else 'other'}/{name.group(1) if name else 'draft'}"


def _draft_roots(svc: Services, prompt: str | None) -> list[Path]:
    """Partial folders for a draft: its prompt's library first, then the others."""
    from prompts.sandbox import PARTIALS_DIR

    libraries = [lib.root for lib in svc.registry.libraries]
    if prompt:
        root = _entry(svc, prompt).library.root
        libraries = [root, *(r for r in libraries if r != root)]
    return [r for r in libraries if (r / PARTIALS_DIR).is_dir()]
