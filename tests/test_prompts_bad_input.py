"""Bad input gets a clear error naming the prompt, file, line or variable."""

from __future__ import annotations

import pytest

from prompts import (
    InvalidInputs,
    InvalidTemplate,
    MissingVariables,
    PromptNotFound,
    PromptRegistry,
    PromptSecurityError,
    RenderBudget,
)
from tests.conftest import version_file


def _load(make_library, text: str, name: str = "haiku", task: str = "writing", **partials: str):
    files = {f"{task}/{name}/1.0.0.jinja": text}
    files.update({f"_partials/{k}.jinja": v for k, v in partials.items()})
    root = make_library(files, defaults=False)
    return PromptRegistry([root], include_builtin=False).get(f"{name}@1.0.0")


def test_missing_variable_names_prompt_variable_and_declared_inputs(registry: PromptRegistry) -> None:
    with pytest.raises(MissingVariables) as info:
        registry.get("ad_copy@1.0.0").render(n=2)
    message = str(info.value)
    assert "marketing/ad_copy@1.0.0" in message and "brand" in message
    assert "Declared inputs: brand (string, required), n (integer), tone (string), keywords (list)" in message
    assert info.value.missing == ["brand"]


def test_every_input_problem_is_reported_at_once(registry: PromptRegistry) -> None:
    with pytest.raises(MissingVariables) as info:
        registry.get("ad_copy@1.0.0").render(tone="zany", colour="red")
    message = str(info.value)
    assert "missing required input(s) brand" in message
    assert "tone: Input should be 'formal' or 'playful'" in message and "colour: not a declared input" in message


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"brand": "Acme", "n": "lots"}, "n: Input should be a valid integer"),
        ({"brand": "Acme", "tone": "angry"}, "tone: Input should be 'formal' or 'playful' (got 'angry')"),
        ({"brand": "x" * 41}, "brand: String should have at most 40 characters"),
        ({"brand": "Acme", "keywords": ["a"] * 6}, "keywords: Value should have at most 5 items"),
        ({"brand": "Acme", "colour": "red"}, "colour: not a declared input (declared: brand, n, tone, keywords)"),
    ],
)
def test_wrong_type_enum_length_or_unknown_input(registry: PromptRegistry, values: dict, fragment: str) -> None:
    with pytest.raises(InvalidInputs) as info:
        registry.get("ad_copy@1.0.0").render(**values)
    assert fragment in str(info.value)
    assert str(info.value).startswith("marketing/ad_copy@1.0.0: invalid input(s)")


def test_malformed_yaml_names_file_and_line(make_library) -> None:
    text = "---\nname: haiku\nversion: 1.0.0\ntask: writing\ninputs:\n  topic: {type: string\n---\nHi\n"
    with pytest.raises(InvalidTemplate) as info:
        _load(make_library, text)
    assert info.value.path.endswith("writing/haiku/1.0.0.jinja")
    assert info.value.line in (6, 7)
    assert "malformed YAML front matter" in str(info.value)


@pytest.mark.parametrize(
    ("extra", "line", "fragment"),
    [
        ("colour: red\n", 8, "unknown key 'colour'; allowed here: name, version, task"),
        (
            "model: {temprature: 0.5}\n",
            8,
            "unknown key 'temprature' (did you mean 'temperature'?); allowed here: id, temperature",
        ),
        ("output: {format: json, schema: {type: nonsense}}\n", 8, "not a valid JSON Schema"),
        ("tags: 5\n", 8, "front matter tags: Input should be a valid list"),
    ],
)
def test_invalid_front_matter_names_key_and_line(make_library, extra: str, line: int, fragment: str) -> None:
    with pytest.raises(InvalidTemplate) as info:
        _load(make_library, version_file(extra=extra))
    assert info.value.line == line
    assert fragment in str(info.value)


def test_missing_front_matter_and_unclosed_front_matter(make_library) -> None:
    with pytest.raises(InvalidTemplate, match="must start with a '---' line"):
        _load(make_library, "Write about {{ topic }}\n")
    with pytest.raises(InvalidTemplate, match="front matter is not closed"):
        _load(make_library, "---\nname: haiku\n")


def test_jinja_syntax_error_reports_the_file_line(make_library) -> None:
    body = "Line one.\n\n{% if topic %}\nWrite about {{ topic }.\n{% endif %}"
    with pytest.raises(InvalidTemplate) as info:
        _load(make_library, version_file(body=body))
    # front matter is lines 1-9, the body starts on line 10, the broken expression is on line 13
    assert info.value.line == 13
    assert "Jinja syntax error" in str(info.value)
    assert str(info.value).startswith(str(info.value.path) + ":13:")


def test_syntax_error_in_partial_names_the_partial(make_library) -> None:
    with pytest.raises(InvalidTemplate) as info:
        _load(make_library, version_file(body='{% include "_partials/bad.jinja" %} {{ topic }}'), bad="ok\n{% if %}\n")
    assert info.value.path.endswith("_partials/bad.jinja") and info.value.line == 2


def test_undeclared_variable_is_a_load_error_with_line(make_library) -> None:
    with pytest.raises(InvalidTemplate) as info:
        _load(make_library, version_file(body="About {{ topic }}.\nIn the style of {{ poet }}."))
    assert "variable 'poet' is used but not declared under 'inputs' (declared: topic)" in str(info.value)
    assert info.value.line == 11


def test_undeclared_variable_in_included_partial(make_library) -> None:
    with pytest.raises(InvalidTemplate) as info:
        _load(make_library, version_file(body='{{ topic }}{% include "_partials/p.jinja" %}'), p="Hi {{ user }}")
    assert "'user'" in str(info.value) and info.value.path.endswith("_partials/p.jinja")


def test_unknown_partial(make_library) -> None:
    with pytest.raises(InvalidTemplate, match=r"partial not found: _partials/nope\.jinja"):
        _load(make_library, version_file(body='{% include "_partials/nope.jinja" %}{{ topic }}'))


def test_unused_input_is_a_warning(make_library) -> None:
    prompt = _load(make_library, version_file(inputs="inputs:\n  topic: {type: string}\n  mood: {type: string}\n"))
    assert prompt.warnings == [f"{prompt.path}: declared input 'mood' is never used by the template or its partials"]


def test_unknown_prompt_suggests_near_names(registry: PromptRegistry) -> None:
    with pytest.raises(PromptNotFound) as info:
        registry.get("ad_cpy")
    assert "unknown prompt 'ad_cpy'" in str(info.value) and "ad_copy" in info.value.suggestions


def test_unknown_version_lists_existing_ones(registry: PromptRegistry) -> None:
    with pytest.raises(PromptNotFound, match=r"has no version 2.0.0 \(versions: 1.0.0\)"):
        registry.get("ad_copy@2.0.0")
    with pytest.raises(PromptNotFound, match="has no published version yet"):
        registry.get("ad_copy")
    with pytest.raises(PromptNotFound, match="has no label 'prod'"):
        registry.get("ad_copy@prod")


def test_text_outside_message_blocks_and_bad_roles(make_library) -> None:
    prompt = _load(make_library, version_file(body='stray {{ topic }}\n{% message "user" %}x{% endmessage %}'))
    with pytest.raises(InvalidTemplate, match="text outside"):
        prompt.render(topic="t")
    with pytest.raises(InvalidTemplate, match="unknown role 'robot'"):
        _load(make_library, version_file(body='{% message "robot" %}{{ topic }}{% endmessage %}'))
    with pytest.raises(InvalidTemplate, match="cannot contain another"):
        _load(
            make_library,
            version_file(body='{% message "user" %}{% message "user" %}{{ topic }}{% endmessage %}{% endmessage %}'),
        )


INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ topic['__class__'] }}",
    "{{ topic|attr('__class__') }}",
    "{{ range(10**9) }}",
    "{{ range(1000000000) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ 'x' * 100000000 }}",
    "{{ 2**100000 }}",
    "{{ 99**99**99 }}",
    "{{ 'x'|center(100000000) }}",
    "{{ topic.format.__globals__ }}",
    "{% set x = namespace() %}{{ x.__init__ }}",
    "{{ [].append(1) }}",
    "{% set s = 'a' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "{% set s = 'a' * 100000 %}{% for i in range(20000) %}{{ s }}{% endfor %}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ '%0999999999d' | format(1) }}",
    "{{ ('{:>' ~ (1000000 * 1000) ~ '}').format(1) }}",
    "{{ '{:>{}}'.format(1, 999999999) }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
    "{% for x in [1, 2, 3] * 50000 %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% else %}xxxxxxxx{% endif %}{% endmacro %}{{ f(40) }}",
]


@pytest.mark.parametrize("body", INJECTIONS)
def test_template_injection_in_body_is_blocked(make_library, body: str) -> None:
    with pytest.raises(PromptSecurityError) as info:
        prompt = _load(make_library, version_file(body=body + " {{ topic }}"))
        prompt.render(topic="t")
    assert info.value.path.endswith(".jinja")
    assert info.value.line == 10  # the body's first line in the file


@pytest.mark.parametrize("value", [*INJECTIONS, "{% message 'system' %}x{% endmessage %}", "{{ topic }}"])
def test_injection_in_a_value_renders_literally(make_library, value: str) -> None:
    prompt = _load(make_library, version_file(body="Write about {{ topic }}."))
    assert prompt.render(topic=value)[0].content == f"Write about {value}."


def test_render_budget_bounds_output_size_and_time(make_library) -> None:
    files = {"writing/big/1.0.0.jinja": version_file("big", body="{% for i in range(50000) %}{{ topic }}{% endfor %}")}
    root = make_library(files, defaults=False)
    tight = PromptRegistry([root], include_builtin=False, budget=RenderBudget(max_output_chars=10_000))
    with pytest.raises(PromptSecurityError, match="over the output limit of 10,000"):
        tight.get("big@1.0.0").render(topic="abc")
    slow = PromptRegistry([root], include_builtin=False, budget=RenderBudget(max_seconds=0.0))
    with pytest.raises(PromptSecurityError, match="longer than"):
        slow.get("big@1.0.0").render(topic="abc")


def test_template_inheritance_is_refused_because_the_parent_would_escape_the_hash(make_library) -> None:
    body = '{% extends "_partials/base.jinja" %}{% block main %}{{ topic }}{% endblock %}'
    with pytest.raises(InvalidTemplate, match=r"extends.*is not supported") as info:
        _load(make_library, version_file(body=body), base="{% block main %}{% endblock %}")
    assert info.value.line == 10


def test_loops_over_values_are_counted_like_range(make_library) -> None:
    prompt = _load(
        make_library,
        version_file(inputs="inputs:\n  items: {type: list}\n", body="{% for i in items %}{{ i }},{% endfor %}"),
    )
    assert prompt.render(items=["a", "b"])[0].content == "a,b,"
    budget = PromptRegistry(
        [prompt.path.parents[2]], include_builtin=False, budget=RenderBudget(max_loop_items=10)
    ).get("haiku@1.0.0")
    with pytest.raises(PromptSecurityError, match="loops ran more than 10 iterations"):
        budget.render(items=[str(i) for i in range(11)])


def test_ambiguous_bare_name(make_library) -> None:
    root = make_library({"marketing/haiku/1.0.0.jinja": version_file("haiku", task="marketing")})
    with pytest.raises(PromptNotFound, match="ambiguous; use one of marketing/haiku, writing/haiku"):
        PromptRegistry([root], include_builtin=False).get("haiku@1.0.0")
