"""Property test: variable values are data, whatever characters they hold."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prompts import PromptRegistry
from prompts.template import Prompt
from tests.conftest import version_file, write_library

TEMPLATE_BITS = st.sampled_from(["{{", "}}", "{%", "%}", "{#", "#}", "endmessage", "message", "__class__", "\n"])
VALUES = st.lists(st.one_of(st.text(max_size=20), TEMPLATE_BITS), max_size=12).map("".join)


@pytest.fixture(scope="module")
def literal_prompt(tmp_path_factory: pytest.TempPathFactory) -> Prompt:
    """One draft (so it renders in the isolated worker, as templates received over HTTP do), loaded once."""
    body = (
        '{% message "system" %}Brand: [{{ brand }}]{% endmessage %}'
        '{% message "user" %}Topic: [{{ topic }}]{% endmessage %}'
    )
    inputs = "inputs:\n  topic: {type: string}\n  brand: {type: string}\n"
    root = write_library(
        tmp_path_factory.mktemp("lit") / "lib",
        {"writing/lit/1.0.0.jinja": version_file("lit", inputs=inputs, body=body)},
    )
    return PromptRegistry([root], include_builtin=False).get("lit@1.0.0")


@settings(max_examples=300, deadline=None)
@given(topic=VALUES, brand=VALUES)
def test_any_value_renders_literally(literal_prompt: Prompt, topic: str, brand: str) -> None:
    messages = literal_prompt.render(topic=topic, brand=brand)
    assert [m.content for m in messages] == [f"Brand: [{brand}]".strip(), f"Topic: [{topic}]".strip()]


def test_the_prompt_under_test_renders_in_the_isolated_worker(literal_prompt: Prompt) -> None:
    assert not literal_prompt.published and literal_prompt.isolated
