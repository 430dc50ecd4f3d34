"""Property: any variable value, template syntax included, renders literally."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prompts import PromptRegistry
from tests.conftest import version_file

TEMPLATE_BITS = st.sampled_from(["{{", "}}", "{%", "%}", "{#", "#}", "endmessage", "message", "__class__", "\n"])
VALUES = st.lists(st.one_of(st.text(max_size=20), TEMPLATE_BITS), max_size=12).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topic=VALUES, brand=VALUES)
def test_any_value_renders_literally(make_library, topic: str, brand: str) -> None:
    body = (
        '{% message "system" %}Brand: [{{ brand }}]{% endmessage %}'
        '{% message "user" %}Topic: [{{ topic }}]{% endmessage %}'
    )
    inputs = "inputs:\n  topic: {type: string}\n  brand: {type: string}\n"
    root = make_library({"writing/lit/1.0.0.jinja": version_file("lit", inputs=inputs, body=body)}, defaults=False)
    messages = PromptRegistry([root], include_builtin=False).get("lit@1.0.0").render(topic=topic, brand=brand)
    assert [m.content for m in messages] == [f"Brand: [{brand}]".strip(), f"Topic: [{topic}]".strip()]
