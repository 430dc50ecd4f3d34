"""/v1/cases: "save as case" from the playground: a good try becomes a regression case in a suite file.

    POST /v1/cases {"suite_file": "social.yaml", "prompt": "marketing/social_post", "version": "1.1.0",
                    "inputs": {...}, "reference": "optional: the output kept as reference"}

``suite_file`` is relative to the server's suites folder (``--suites-dir``, default ./suites). A ``.yaml`` suite gets
the case appended under ``cases:``; a ``.jsonl`` file gets one line, and a suite ``<stem>.yaml`` beside it that reads
it is created when missing. A new suite runs the prompt on ``auto`` with the evaluator suite of its task, so
``aigc eval suites/social.yaml`` runs it as written. The file is checked with the runner's own loader after each
write (a write that would break it is undone).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aigc_app.server.errors import ERROR_DOC, ApiError
from aigc_app.server.prompts_api import Svc, http_error, load_version
from aigc_app.server.services import Services

if TYPE_CHECKING:
    from prompts import Prompt

__all__ = ["SaveCase", "SavedCase", "router"]

router = APIRouter(prefix="/v1", tags=["cases"], responses={400: ERROR_DOC, 404: ERROR_DOC, 409: ERROR_DOC})

_SUFFIXES = (".yaml", ".yml", ".jsonl")


class SaveCase(BaseModel):
    """One case to append: the prompt version and inputs of a try, optionally its output as reference."""

    model_config = ConfigDict(extra="forbid")

    suite_file: str = Field(examples=["social.yaml"], description="Relative to the suites folder; .yaml or .jsonl.")
    prompt: str = Field(examples=["marketing/social_post"])
    version: str | None = Field(None, examples=["1.1.0"])
    inputs: dict[str, Any] = Field(default_factory=dict)
    reference: str | None = Field(None, max_length=200_000, description="The expected output, kept as reference.")
    case_id: str | None = Field(
        None, description="Letters, digits and _ . : - (up to 100, starting with a letter or digit)."
    )
    tags: list[str] = Field(default_factory=list, max_length=20)
    evaluators: str | list[str] | None = Field(
        None,
        description="For a new suite file: an evaluator suite name or evaluator names (default: the task's suite).",
    )

    @field_validator("case_id")
    @classmethod
    def _plain_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}", value):
            raise ValueError(
                f"{value!r} is not a case id: letters, digits and _ . : - (up to 100, starting with a letter or digit)"
            )
        return value


class SavedCase(BaseModel):
    """Where the case went and how to run it."""

    case_id: str
    path: str = Field(description="The file the case was written to.")
    suite: str = Field(description="The suite file that runs it.")
    created: bool = Field(description="Whether the suite file was created by this request.")
    cases: int = Field(description="Cases the suite holds now.")
    command: str


@router.post("/cases", summary="Append a case to a suite file (save as case)", status_code=201)
def save_case(svc: Svc, body: SaveCase) -> SavedCase:
    from aigc_app.runner import SuiteError, load_eval_suite, resolve_cases
    from prompts import PromptError

    target = suite_path(svc.settings.suites_dir, body.suite_file)
    prompt = load_version(svc, body.prompt, body.version)
    try:
        prompt.validate_inputs(body.inputs)
    except PromptError as exc:
        raise http_error(exc) from None
    inputs = {k: v for k, v in body.inputs.items() if v is not None}
    case = {"id": body.case_id or _case_id(prompt, inputs), "vars": inputs}
    if body.reference is not None:
        case["reference"] = body.reference
    if body.tags:
        case["tags"] = list(body.tags)
    suite_file = target.with_suffix(".yaml") if target.suffix == ".jsonl" else target
    with svc.lock:
        backups = {p: p.read_bytes() if p.exists() else None for p in {target, suite_file}}
        try:
            created = _write(target, suite_file, prompt, case, body.evaluators, svc)
            suite = load_eval_suite(suite_file)
            ids = [c.id for c in resolve_cases(suite)]
            if case["id"] not in ids:
                raise ApiError(400, f"{suite_file} does not read {target.name}: add `- file: {target.name}`")
        except (SuiteError, ApiError) as exc:
            _restore(backups)
            raise exc if isinstance(exc, ApiError) else ApiError(400, str(exc)) from None
    return SavedCase(
        case_id=case["id"],
        path=str(target),
        suite=str(suite_file),
        created=created,
        cases=len(ids),
        command=f"aigc eval {_shown(suite_file)}",
    )


def suite_path(root: Path, name: str) -> Path:
    """``name`` under ``root``; anything absolute, with ``..``, or not .yaml/.jsonl is a 400."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if not name or pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", name):
        raise ApiError(400, f"suite_file {name!r} must be a relative path inside the suites folder (no '..')")
    if pure.suffix not in _SUFFIXES:
        raise ApiError(400, f"suite_file {name!r} must end in .yaml or .jsonl")
    base = root.resolve()
    path = (base / pure).resolve()
    if base not in path.parents:
        raise ApiError(400, f"suite_file {name!r} resolves outside the suites folder")
    return path


def _shown(path: Path) -> str:
    """The path relative to the server's working folder when it is inside it (what a user types next)."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _case_id(prompt: Prompt, inputs: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{prompt.name}-{digest}"


def _write(
    target: Path,
    suite_file: Path,
    prompt: Prompt,
    case: dict[str, Any],
    evaluators: str | list[str] | None,
    svc: Services,
) -> bool:
    """Append the case; create the suite file first when it is missing. True when something was created."""
    created = not suite_file.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    if created:
        cases = [{"file": target.name}] if target.suffix == ".jsonl" else []
        _new_suite(suite_file, prompt, evaluators, cases)
    else:
        _check_prompt(suite_file, prompt, svc)
    if target.suffix == ".jsonl":
        _check_unique(_ids_in_jsonl(target), case["id"], target)
        with target.open("a", encoding="utf-8") as f:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    else:
        _append_yaml_case(target, case)
    return created


def _new_suite(path: Path, prompt: Prompt, evaluators: str | list[str] | None, cases: list[dict[str, Any]]) -> None:
    from evaluators.suite import BUILTIN_SUITES

    task = prompt.meta.task
    suite: Any = evaluators or (task if (BUILTIN_SUITES / f"{task}.yaml").is_file() else "offline")
    if isinstance(suite, list):
        suite = [{"evaluator": name} for name in suite]
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem).strip("-.") or "cases"
    head = {
        "name": name,
        "description": f"Cases saved from the aigc playground for {prompt.id}.",
        "prompts": [prompt.ref],
        "models": ["auto"],
        "evaluators": suite,
    }
    text = yaml.safe_dump(head, sort_keys=False, allow_unicode=True, width=120)
    text += "cases:\n" + "".join(f"  - {json.dumps(c, ensure_ascii=False)}\n" for c in cases)
    path.write_text(text, encoding="utf-8")


def _check_prompt(suite_file: Path, prompt: Prompt, svc: Services) -> None:
    """An existing suite must run this prompt (some version of it), or the case's inputs mean nothing there."""
    data = yaml.safe_load(suite_file.read_text(encoding="utf-8")) or {}
    refs = [str(r) for r in data.get("prompts") or []] if isinstance(data, dict) else []
    ids = set()
    for ref in refs:
        try:
            ids.add(svc.registry.entry(ref.partition("@")[0]).id)
        except Exception:  # an unknown prompt there is the loader's error to report
            continue
    if prompt.id not in ids:
        raise ApiError(
            400,
            f"{suite_file} runs {', '.join(refs) or 'no prompts'}, not {prompt.id}: save the case to another "
            f"suite file (a new name creates one)",
        )


def _append_yaml_case(path: Path, case: dict[str, Any]) -> None:
    """Add one flow-style item under ``cases:``, keeping the rest of the file (and its comments) as written."""
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    cases = data.get("cases", False) if isinstance(data, dict) else False
    cases = [] if cases is None else cases  # `cases:` with no items yet
    if not isinstance(cases, list):
        raise ApiError(400, f"{path}: has no `cases:` list to append to")
    _check_unique({c.get("id") for c in cases if isinstance(c, dict)}, case["id"], path)
    keys = re.findall(r"^([A-Za-z_][\w-]*):", text, re.MULTILINE)
    line = f"  - {json.dumps(case, ensure_ascii=False)}\n"
    if keys and keys[-1] == "cases" and re.search(r"^cases:[ \t]*(#.*)?$", text, re.MULTILINE):
        path.write_text(text + ("" if text.endswith("\n") else "\n") + line, encoding="utf-8")
        return
    data["cases"] = [*cases, case]  # `cases:` is not the last block: rewrite the file (comments are lost)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")


def _ids_in_jsonl(path: Path) -> set[str]:
    if not path.exists():
        return set()
    ids = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row:
            ids.add(str(row["id"]))
    return ids


def _check_unique(ids: set[Any], case_id: str, path: Path) -> None:
    if case_id in ids:
        raise ApiError(409, f"{path} already has a case {case_id!r}: give another case_id")


def _restore(backups: dict[Path, bytes | None]) -> None:
    for path, content in backups.items():
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(content)
