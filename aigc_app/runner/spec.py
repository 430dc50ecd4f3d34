"""An eval suite: prompts x models x cases x repeats, scored by an evaluator suite. YAML or Python.

# my_suite.yaml
name: marketing
prompts: [marketing/ad_copy@1.1.0, marketing/social_post]   # several versions of one prompt = A/B
models: [auto]                     # the best available model; --model overrides
evaluators: marketing              # an evaluator suite (name or path), or a list of {evaluator: ...} entries
params: {temperature: 0.7, max_tokens: 300}
repeat: 1
seed: 7
rescore: 0                         # K > 0: score each output K times (judge noise vs generation noise)
cases:
  - {id: trail-shoes, vars: {product_name: Aurora Trail 2, audience: trail runners}, tags: [outdoor]}
  - file: cases/marketing.jsonl    # or .csv, relative to the suite file

suite = load_eval_suite("marketing")            # a built-in suite, or a path
suite = EvalSuite(name="adhoc", prompts=["writing/rewrite"], cases=[{"id": "a", "vars": {"text": "..."}}])
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from aigc_app.runner.errors import SuiteError
from evaluators.suite import SuiteEntry

__all__ = ["BUILTIN_EVAL_SUITES", "CaseEntry", "EvalSuite", "GenerationParams", "builtin_suites", "load_eval_suite"]

BUILTIN_EVAL_SUITES = Path(__file__).parent / "suites"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class GenerationParams(BaseModel):
    """Generation overrides for every call of the suite (the prompt's own defaults fill what is not set)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: list[str] | None = None


class CaseEntry(BaseModel):
    """One case written inline, or ``{file: cases.jsonl}`` (JSONL or CSV, relative to the suite file)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, min_length=1)
    vars: dict[str, Any] = Field(default_factory=dict)
    reference: str | None = None
    context: str | None = None
    expect: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    file: str | None = None

    @model_validator(mode="after")
    def _file_alone(self) -> CaseEntry:
        if self.file is not None and (self.id or self.vars or self.reference or self.context or self.expect):
            raise ValueError("a `file:` entry takes no other keys (put the cases in the file)")
        return self

    @field_validator("expect")
    @classmethod
    def _checks_named(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for check in value:
            if not isinstance(check.get("check"), str):
                raise ValueError(f"each expect item needs a 'check' name, e.g. {{check: contains, value: x}}: {check}")
        return value


class EvalSuite(BaseModel):
    """What an eval run does; load one with :func:`load_eval_suite` or build it in Python."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    prompts: list[str] = Field(min_length=1)
    models: list[str] = Field(default_factory=lambda: ["auto"], min_length=1)
    evaluators: list[SuiteEntry] = Field(default_factory=list)
    evaluator_suite: str | None = Field(
        None, description="An evaluator suite name or path; `evaluators: NAME` in YAML sets it."
    )
    params: GenerationParams = Field(default_factory=GenerationParams)
    repeat: int = Field(1, ge=1, le=100)
    seed: int | None = None
    rescore: int = Field(0, ge=0, le=20)
    cases: list[CaseEntry] = Field(min_length=1)

    _path: Path | None = PrivateAttr(None)
    _line_of: Any = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _suite_by_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("evaluators"), str):
            data = {**data, "evaluator_suite": data["evaluators"], "evaluators": []}
        return data

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} must be letters, digits, '_', '-' or '.' (it names runs and reports)")
        return value

    @field_validator("prompts")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        twice = sorted({p for p in value if value.count(p) > 1})
        if twice:
            raise ValueError(f"listed twice: {', '.join(twice)}")
        return value

    @property
    def path(self) -> Path | None:
        """The YAML file this suite was read from (None for a suite built in Python)."""
        return self._path

    @property
    def base_dir(self) -> Path:
        """Where relative case files are found: the suite file's folder, else the working folder."""
        return self._path.parent if self._path is not None else Path.cwd()

    def where(self, *loc: str | int) -> str:
        """``file:line`` of a location in the suite (``("cases", 2)``), or ``<name>.cases[2]`` without a file."""
        if self._path is not None and self._line_of is not None:
            return f"{self._path}:{self._line_of(loc) or 1}"
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        return f"suite {self.name}{dotted}"

    def content_hash(self) -> str:
        """sha256 of the suite's definition and its case files (what the run was asked to do)."""
        payload = self.model_dump(mode="json")
        files = {}
        for entry in self.cases:
            if entry.file is not None:
                path = self.base_dir / entry.file
                files[entry.file] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        blob = json.dumps({"suite": payload, "files": files}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


def builtin_suites() -> list[str]:
    """Names of the built-in eval suites."""
    return sorted(p.stem for p in BUILTIN_EVAL_SUITES.glob("*.yaml"))


def load_eval_suite(name_or_path: str | Path) -> EvalSuite:
    """A built-in suite by name (``marketing``, ``writing``, ``education``, ``ad_copy_ab``) or a YAML file.

    Every problem is one :class:`SuiteError` naming the file, the line and the field path, with near names for
    typos in keys."""
    from evaluators.errors import InvalidSuite
    from evaluators.suite_file import read_suite_file

    path = _locate(name_or_path)
    try:
        suite, line_of = read_suite_file(
            path, EvalSuite, SuiteEntry, sections={"cases": CaseEntry, "params": GenerationParams}
        )
    except InvalidSuite as exc:
        raise SuiteError(str(exc).replace("invalid suite definition", "invalid eval suite")) from None
    suite._path = path
    suite._line_of = line_of
    return suite


def _locate(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise SuiteError(f"suite file {path} not found")
        return path
    builtin = BUILTIN_EVAL_SUITES / f"{name_or_path}.yaml"
    if builtin.is_file():
        return builtin
    known = builtin_suites()
    close = difflib.get_close_matches(str(name_or_path), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise SuiteError(
        f"unknown eval suite {str(name_or_path)!r}{hint}; built-in suites: {', '.join(known)} "
        f"(or give the path of a YAML file)"
    )
