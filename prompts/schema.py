"""The front matter of a prompt version file, validated strictly (a typo is an error)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from prompts.semver import Version

__all__ = ["TASKS", "Expectation", "InputSpec", "ModelDefaults", "OutputSpec", "PromptMeta", "Task"]

Task = Literal["writing", "marketing", "education", "other"]
TASKS: tuple[str, ...] = ("writing", "marketing", "education", "other")
InputType = Literal["string", "integer", "number", "boolean", "list", "object"]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "object": (dict,),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """One declared template input."""

    type: InputType = "string"
    items: InputType | None = Field(None, description="Element type when type is list.")
    required: bool | None = Field(None, description="Defaults to true unless a default is given.")
    default: Any = None
    enum: list[Any] | None = None
    max_length: int | None = Field(None, gt=0, description="Characters for strings, items for lists.")
    description: str = ""
    example: Any = None

    @model_validator(mode="after")
    def _consistent(self) -> InputSpec:
        if self.items is not None and self.type != "list":
            raise ValueError("'items' is only allowed when type is list")
        if self.required and self.default is not None:
            raise ValueError("an input cannot be required and have a default; drop one of them")
        if self.max_length is not None and self.type not in ("string", "list"):
            raise ValueError("'max_length' applies to string and list inputs only")
        for label, value in (("default", self.default), ("example", self.example)):
            if value is not None and not isinstance(value, _PY_TYPES[self.type]):
                raise ValueError(f"{label} {value!r} is not of type {self.type}")
        for value in self.enum or []:
            if not isinstance(value, _PY_TYPES[self.type if self.type != "list" else (self.items or "string")]):
                raise ValueError(f"enum value {value!r} is not of type {self.items or self.type}")
        return self

    @property
    def is_required(self) -> bool:
        """Whether a caller must pass this input."""
        return self.required if self.required is not None else self.default is None


class ModelDefaults(_Strict):
    """Generation defaults a chain uses unless the caller overrides them."""

    id: str | None = Field(None, description="Preferred model id, e.g. openai:gpt-4o-mini or hf:<path>.")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, gt=0)
    stop: list[str] | None = None
    seed: int | None = None


class OutputSpec(_Strict):
    """What the model is asked to produce: plain text, or JSON matching a JSON Schema."""

    format: Literal["text", "json"] = "text"
    schema_: dict[str, Any] | None = Field(None, alias="schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _schema_fits_format(self) -> OutputSpec:
        if self.format == "text" and self.schema_ is not None:
            raise ValueError("a schema is only allowed when format is json")
        if self.schema_ is not None:
            import jsonschema  # only prompts with JSON output pay for this import

            try:
                jsonschema.Draft202012Validator.check_schema(self.schema_)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"output.schema is not a valid JSON Schema: {exc.message}") from None
        return self


class Expectation(BaseModel):
    """A declarative adherence constraint; ``check`` names it, the other keys are its arguments.

    The vocabulary belongs to the evaluators (IFEval ids such as ``length_constraints:number_words`` and
    aigc's own such as ``must_mention``); the prompt library only stores and hashes it.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    check: str = Field(min_length=1)

    @property
    def kwargs(self) -> dict[str, Any]:
        """The check's arguments, everything but ``check``."""
        return dict(self.model_extra or {})


class PromptMeta(_Strict):
    """Validated front matter of one prompt version."""

    name: str
    version: str
    task: Task
    description: str = Field(min_length=1)
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    model: ModelDefaults = Field(default_factory=ModelDefaults)
    output: OutputSpec = Field(default_factory=OutputSpec)
    expect: list[Expectation] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    changelog: str = Field(min_length=1, description="One line: what changed in this version and why.")

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("name must be lowercase letters, digits and underscores, starting with a letter")
        return value

    @field_validator("version")
    @classmethod
    def _version_is_semver(cls, value: str) -> str:
        Version.parse(value)
        return value

    @field_validator("inputs")
    @classmethod
    def _input_names(cls, value: dict[str, InputSpec]) -> dict[str, InputSpec]:
        for key in value:
            if not _NAME.match(key):
                raise ValueError(f"input name {key!r} must be lowercase letters, digits and underscores")
        return value

    @property
    def semver(self) -> Version:
        """The version as a comparable value."""
        return Version.parse(self.version)
