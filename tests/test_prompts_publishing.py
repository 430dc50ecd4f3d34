"""Publishing: lock, check, bump and labels keep published versions immutable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prompts import LibraryError, PromptNotFound, PromptRegistry
from prompts.publishing import bump, check, lock, set_label
from tests.conftest import version_file


def _fresh(root: Path) -> PromptRegistry:
    return PromptRegistry([root], include_builtin=False)


def _errors(root: Path) -> list[str]:
    return [str(p) for p in check(_fresh(root)) if p.level == "error"]


def test_lock_publishes_drafts_and_check_passes(make_library) -> None:
    root = make_library()
    assert [p.message for p in check(_fresh(root))] == [
        "marketing/ad_copy@1.0.0 is a draft; publish it with `aigc prompts lock`",
        "writing/haiku@1.0.0 is a draft; publish it with `aigc prompts lock`",
    ]
    changes = lock(_fresh(root))
    assert [(c.action, c.ref) for c in changes] == [
        ("published", "marketing/ad_copy@1.0.0"),
        ("published", "writing/haiku@1.0.0"),
    ]
    data = json.loads((root / "prompts.lock").read_text())
    assert data["prompts"]["writing/haiku"]["1.0.0"] == "sha256:" + _fresh(root).get("haiku").hash
    assert check(_fresh(root)) == []
    assert lock(_fresh(root)) == []  # idempotent


def test_changed_published_content_fails_check_and_load(make_library) -> None:
    root = make_library()
    lock(_fresh(root))
    path = root / "writing/haiku/1.0.0.jinja"
    path.write_text(path.read_text().replace("haiku about", "limerick about"))
    errors = _errors(root)
    assert len(errors) == 1 and str(path) in errors[0] and "writing/haiku@1.0.0 was published with sha256:" in errors[0]
    with pytest.raises(LibraryError, match="Published versions are immutable"):
        _fresh(root).get("haiku@1.0.0")
    with pytest.raises(LibraryError):
        lock(_fresh(root))  # lock refuses to paper over it


def test_partial_content_is_part_of_the_hash(make_library) -> None:
    root = make_library()
    lock(_fresh(root))
    before = _fresh(root).get("ad_copy").hash
    (root / "_partials/brand.jinja").write_text("Be bold. Brand: {{ brand }}.\n")
    errors = _errors(root)
    assert len(errors) == 1 and "marketing/ad_copy@1.0.0 was published with" in errors[0]
    assert "haiku" not in errors[0]  # prompts that do not use the partial are unaffected
    changed = PromptRegistry([root], include_builtin=False)
    entry = changed.entries["marketing/ad_copy"]
    entry.library.lock = {}  # look at the new content as if it were a draft
    assert changed.load(entry, max(entry.versions)).hash != before


def test_version_number_reused_in_front_matter(make_library) -> None:
    root = make_library({"writing/haiku/1.1.0.jinja": version_file("haiku", version="1.0.0")})
    errors = _errors(root)
    assert any("1.1.0.jinja" in e and "version is 1.0.0 but the file is 1.1.0.jinja" in e for e in errors)


def test_stale_lock_entry_and_dangling_labels(make_library) -> None:
    root = make_library()
    lock(_fresh(root))
    set_label(_fresh(root), "haiku@1.0.0", "production")
    (root / "labels.yaml").write_text((root / "labels.yaml").read_text() + "  staging: 9.9.9\n")
    (root / "marketing/ad_copy/1.0.0.jinja").unlink()
    (root / "marketing/ad_copy").rmdir()
    errors = _errors(root)
    assert any("stale lock: marketing/ad_copy@1.0.0 is published but its file is gone" in e for e in errors)
    assert any("label 'staging' points to 9.9.9, which does not exist" in e for e in errors)
    changes = lock(_fresh(root))
    assert [(c.action, c.ref) for c in changes] == [("removed", "marketing/ad_copy@1.0.0")]


def test_label_on_a_draft_is_refused_and_label_resolves(make_library) -> None:
    root = make_library()
    with pytest.raises(LibraryError, match="is a draft"):
        set_label(_fresh(root), "haiku@1.0.0", "production")
    lock(_fresh(root))
    assert set_label(_fresh(root), "haiku@1.0.0", "production") == ("1.0.0", None)
    assert _fresh(root).get("writing/haiku@production").version == "1.0.0"
    assert "writing/haiku:\n  production: 1.0.0" in (root / "labels.yaml").read_text()
    with pytest.raises(LibraryError, match="lowercase word"):
        set_label(_fresh(root), "haiku@1.0.0", "1.0")


def test_bump_creates_a_draft_and_ranges_pick_the_newest_published(make_library) -> None:
    root = make_library()
    lock(_fresh(root))
    new = bump(_fresh(root), "haiku", "minor", "Ask for a seasonal word")
    assert new.name == "1.1.0.jinja"
    text = new.read_text()
    assert "version: 1.1.0" in text and 'changelog: "Ask for a seasonal word"' in text
    registry = _fresh(root)
    assert registry.get("haiku").version == "1.0.0"  # drafts are not picked by latest or ranges
    assert registry.get("haiku@^1.0").version == "1.0.0"
    assert registry.get("haiku@1.1.0").published is False
    lock(registry)
    assert _fresh(root).get("haiku@^1.0").version == "1.1.0"
    assert _fresh(root).get("haiku@~1.0").version == "1.0.0"
    with pytest.raises(PromptNotFound, match="no published version of writing/haiku matches '\\^2'"):
        _fresh(root).get("haiku@^2")
    assert bump(_fresh(root), "haiku", "major", "Breaking: new input").name == "2.0.0.jinja"
    with pytest.raises(LibraryError, match="one-line changelog"):
        bump(_fresh(root), "haiku", "patch", "  ")


def test_name_collision_between_libraries_is_an_error(make_library) -> None:
    first = make_library(name="a")
    second = make_library({"writing/haiku/1.0.0.jinja": version_file("haiku")}, name="b", defaults=False)
    with pytest.raises(LibraryError, match="writing/haiku exists in two libraries"):
        PromptRegistry([first, second], include_builtin=False)


def test_extra_library_sits_beside_another_and_shares_partials(make_library) -> None:
    first = make_library(name="a")
    body = '{% include "_partials/brand.jinja" %} {{ topic }}'
    inputs = "inputs:\n  topic: {type: string}\n  brand: {type: string}\n"
    second = make_library(
        {"other/tagline/1.0.0.jinja": version_file("tagline", task="other", inputs=inputs, body=body)},
        name="b",
        defaults=False,
    )
    registry = PromptRegistry([first, second], include_builtin=False)
    assert registry.get("tagline@1.0.0").render(topic="t", brand="B")[0].content.startswith("Never make claims")


def test_unreadable_lock_and_bad_layout(make_library) -> None:
    root = make_library({"recipes/soup/1.0.0.jinja": version_file("soup"), "writing/haiku/v2.jinja": "x"})
    assert any("task folder 'recipes' is not one of" in e for e in _errors(root))
    assert any("file name must be the version" in e for e in _errors(root))
    (root / "prompts.lock").write_text("{not json")
    with pytest.raises(LibraryError, match="unreadable lock file"):
        _fresh(root)


def test_bare_name_shared_by_two_libraries_is_an_error(make_library) -> None:
    first = make_library(name="a")
    second = make_library(
        {"marketing/haiku/1.0.0.jinja": version_file("haiku", task="marketing")}, name="b", defaults=False
    )
    with pytest.raises(LibraryError, match=r"prompt name 'haiku' is used by writing/haiku .* and by marketing/haiku"):
        PromptRegistry([first, second], include_builtin=False)


def test_labels_need_exact_versions_and_bad_label_values_are_named(make_library) -> None:
    root = make_library()
    lock(_fresh(root))
    with pytest.raises(LibraryError, match="name the exact version"):
        set_label(_fresh(root), "haiku@^1.0", "production")
    (root / "labels.yaml").write_text("writing/haiku:\n  production: 1.1\n")
    with pytest.raises(LibraryError, match=r"labels.yaml: label 'production' of writing/haiku: .*MAJOR.MINOR.PATCH"):
        _fresh(root).get("haiku@production")
