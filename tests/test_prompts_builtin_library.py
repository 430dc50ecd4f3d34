"""The built-in library: every prompt is published, documented, renders with its examples, and stays as reviewed
(snapshots through the aigc pytest plugin, as users keep theirs)."""

from __future__ import annotations

import jsonschema
import pytest

from prompts import BUILTIN_LIBRARY, PromptRegistry
from prompts.publishing import check

REGISTRY = PromptRegistry()
VERSIONS = [(entry, version) for entry in REGISTRY for version in sorted(entry.versions)]
IDS = [f"{entry.id}@{version}" for entry, version in VERSIONS]


def test_library_checks_clean_in_strict_mode() -> None:
    assert [str(p) for p in check(PromptRegistry())] == []


def test_library_covers_the_target_applications() -> None:
    ids = {entry.id for entry in REGISTRY}
    assert len(ids) >= 10
    for task in ("writing", "marketing", "education"):
        assert sum(1 for i in ids if i.startswith(task + "/")) >= 3
    improved = [entry for entry in REGISTRY if len(entry.published) >= 2]
    assert len(improved) >= 3


@pytest.mark.parametrize(("entry", "version"), VERSIONS, ids=IDS)
def test_version_is_published_documented_and_renders_its_examples(entry, version, aigc_snapshot) -> None:
    prompt = REGISTRY.load(entry, version)
    assert prompt.published
    for name, spec in prompt.meta.inputs.items():
        assert spec.description, f"{prompt.ref}: input {name} has no description"
        assert spec.example is not None or not spec.is_required, f"{prompt.ref}: required input {name} has no example"
    examples = {k: s.example for k, s in prompt.meta.inputs.items() if s.example is not None}
    messages = prompt.render(**examples)
    assert messages[0].role == "system" and messages[-1].role == "user"
    assert all(m.content and "\n\n\n" not in m.content for m in messages)
    if prompt.meta.output.schema_ is not None:
        jsonschema.Draft202012Validator.check_schema(prompt.meta.output.schema_)
    # The aigc pytest plugin's own snapshot (tests/__aigc_snapshots__): a reviewed rendering, diffed on change.
    aigc_snapshot(prompt.ref, **examples)


def test_builtin_library_is_package_data() -> None:
    assert BUILTIN_LIBRARY.joinpath("prompts.lock").is_file()
    assert BUILTIN_LIBRARY.joinpath("labels.yaml").is_file()
