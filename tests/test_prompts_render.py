"""Rendering: role blocks, partials, input validation and coercion, LangChain forms."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from prompts import Message, PromptRegistry
from tests.conftest import version_file


def test_role_blocks_and_partials_render_to_messages(registry: PromptRegistry) -> None:
    prompt = registry.get("ad_copy@1.0.0")
    messages = prompt.render(brand="Acme", n=2, keywords=["fast", "light"])
    assert messages == [
        Message(role="system", content="You write ads. Never make claims you cannot back up. Brand: Acme."),
        Message(role="user", content="Write 2 formal ads.\nUse: fast, light.\nReturn JSON only, with exactly 2 items."),
    ]


def test_body_without_role_blocks_is_one_user_message(registry: PromptRegistry) -> None:
    assert registry.get("writing/haiku@1.0.0").render(topic="rain") == [
        Message(role="user", content="Write a haiku about rain.")
    ]


def test_defaults_fill_and_strings_are_coerced(registry: PromptRegistry) -> None:
    prompt = registry.get("ad_copy@1.0.0")
    assert prompt.validate_inputs({"brand": "Acme", "n": "4", "keywords": "a, b"}) == {
        "brand": "Acme",
        "n": 4,
        "tone": "formal",
        "keywords": ["a", "b"],
    }
    assert prompt.validate_inputs({"brand": "Acme", "keywords": '["x, y"]'})["keywords"] == ["x, y"]


def test_prompt_exposes_variables_hash_meta_and_input_model(registry: PromptRegistry) -> None:
    prompt = registry.get("ad_copy@1.0.0")
    assert prompt.variables == {"brand", "n", "tone", "keywords"}
    assert prompt.ref == "marketing/ad_copy@1.0.0"
    assert len(prompt.hash) == 64
    assert prompt.meta.inputs["tone"].enum == ["formal", "playful"]
    schema = prompt.input_model.model_json_schema()
    assert schema["required"] == ["brand"]
    assert set(schema["properties"]) == {"brand", "n", "tone", "keywords"}
    assert set(prompt.partials) == {"_partials/brand.jinja", "_partials/fmt.jinja"}


def test_few_shot_turns_keep_their_order(make_library) -> None:
    body = (
        '{% message "system" %}Be brief.{% endmessage %}\n'
        '{% message "user" %}Example: cats{% endmessage %}\n'
        '{% message "assistant" %}Cats nap.{% endmessage %}\n'
        '{% for t in [topic] %}{% message "user" %}{{ t }}{% endmessage %}{% endfor %}\n'
    )
    root = make_library({"writing/brief/1.0.0.jinja": version_file("brief", body=body)}, defaults=False)
    messages = PromptRegistry([root], include_builtin=False).get("brief@1.0.0").render(topic="dogs")
    assert [(m.role, m.content) for m in messages] == [
        ("system", "Be brief."),
        ("user", "Example: cats"),
        ("assistant", "Cats nap."),
        ("user", "dogs"),
    ]


def test_langchain_messages_and_runnable(registry: PromptRegistry) -> None:
    prompt = registry.get("ad_copy@1.0.0")
    as_lc = prompt.to_langchain(brand="Acme")
    assert isinstance(as_lc[0], SystemMessage) and isinstance(as_lc[1], HumanMessage)
    runnable = prompt.as_runnable()
    assert runnable.invoke({"brand": "Acme"}) == as_lc
    assert runnable.batch([{"brand": "A"}, {"brand": "B"}])[1][0].content.endswith("Brand: B.")


def test_rendering_is_thread_safe(registry: PromptRegistry) -> None:
    from concurrent.futures import ThreadPoolExecutor

    prompt = registry.get("ad_copy@1.0.0")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: prompt.render(brand=f"B{i}", n=i % 5 + 1), range(200)))
    for i, messages in enumerate(results):
        assert messages[0].content.endswith(f"Brand: B{i}.")
        assert f"exactly {i % 5 + 1} items" in messages[1].content


@pytest.mark.parametrize("spec", ["", "@1.0.0", "@^1.0", "@~1.0", "@1.0", "@1"])
def test_references_resolve(registry: PromptRegistry, spec: str, make_library) -> None:
    from prompts.publishing import lock

    lock(registry)
    fresh = PromptRegistry([registry.libraries[0].root], include_builtin=False)
    assert fresh.get(f"marketing/ad_copy{spec}").version == "1.0.0"
