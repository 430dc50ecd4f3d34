"""Grammar-constrained decoding: a JSON schema (response_format, with_structured_output, a JSON prompt) decoded per
row inside the dynamic batch. Random weights must still produce JSON that validates; real-model tests run the
built-in JSON prompts and a pydantic schema on SmolLM2."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Literal

import jsonschema
import pytest
import torch
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from chains import ChatTransformers, build_chain
from chains.constrained import GrammarCompiler, prepare_schema, schema_of_response_format
from chains.errors import InvalidRequest
from chains.hf_engine import GenRequest, HFEngine
from chains.local import _POOL
from prompts import PromptRegistry

PROMPT = [HumanMessage("Describe one item as JSON.")]


class Item(BaseModel):
    name: str = Field(max_length=12)
    count: int = Field(ge=0, le=99)
    kind: Literal["tool", "toy"]
    ok: bool


class Tags(BaseModel):
    tags: set[Literal["red", "green", "blue"]] = Field(max_length=3)  # uniqueItems in its schema


def schema_format(model: type[BaseModel]) -> dict:
    return {"type": "json_schema", "json_schema": {"name": model.__name__, "schema": model.model_json_schema()}}


@pytest.fixture(scope="module")
def model(tiny_model_path: Path) -> ChatTransformers:
    return ChatTransformers(model=str(tiny_model_path), max_tokens=200)


@pytest.fixture(scope="module")
def compiler(model: ChatTransformers) -> GrammarCompiler:
    return _POOL.get(model).grammars


def walk(compiler: GrammarCompiler, schema: dict, text: str) -> str:
    """Feed ``text``'s tokens to a fresh row constraint: 'done', 'open' (a valid prefix) or 'refused'."""
    row = compiler.compile(schema).start()
    for token in compiler.tokenizer.encode(text, add_special_tokens=False):
        if not row.advance(token):
            return "refused"
    return "done" if row.is_done() else "open"


# -- random weights, under a grammar ----------------------------------------------------------------------------


def test_a_random_model_answers_a_pydantic_schema_with_valid_json(model: ChatTransformers) -> None:
    for seed in (None, 1, 2, 3):
        answer = model.invoke(PROMPT, response_format=schema_format(Item), temperature=1.0 if seed else 0, seed=seed)
        assert answer.response_metadata["finish_reason"] == "stop"
        Item.model_validate_json(answer.content)
        assert answer.content == json.dumps(json.loads(answer.content))  # written as json.dumps writes it


def test_with_structured_output_validates_on_the_first_answer(model: ChatTransformers) -> None:
    result = model.with_structured_output(Item, include_raw=True).invoke(PROMPT)
    assert result["parsing_error"] is None and isinstance(result["parsed"], Item)
    assert Item.model_validate_json(result["raw"].content) == result["parsed"]
    assert isinstance(model.with_structured_output(Tags).invoke(PROMPT), Tags)


def test_json_object_mode_yields_objects(model: ChatTransformers) -> None:
    answers = [
        model.invoke(PROMPT, response_format={"type": "json_object"}, temperature=1.0, seed=s, max_tokens=120)
        for s in range(6)
    ]
    finished = [a.content for a in answers if a.response_metadata["finish_reason"] == "stop"]
    assert finished, [a.content for a in answers]
    assert all(isinstance(json.loads(text), dict) for text in finished)
    assert all(a.content.startswith("{") for a in answers)  # cut at max_tokens: still the start of an object


def test_constrained_sampling_is_repeatable_with_a_seed(model: ChatTransformers) -> None:
    def run(seed: int) -> str:
        return model.invoke(PROMPT, response_format=schema_format(Item), temperature=1.0, seed=seed).content

    assert run(5) == run(5)
    assert len({run(s) for s in range(4)}) > 1


def test_a_batch_mixes_constrained_and_free_rows(model: ChatTransformers, compiler: GrammarCompiler) -> None:
    engine = model.engine
    prompt_ids = engine.encode_chat([{"role": "user", "content": "Describe one item as JSON."}])
    grammar = compiler.compile(Item.model_json_schema())
    free = GenRequest(prompt_ids, max_tokens=30)
    constrained = GenRequest(prompt_ids, max_tokens=200, grammar=grammar)
    sampled = GenRequest(prompt_ids, max_tokens=200, temperature=1.0, seed=3, grammar=grammar)
    alone = [engine.generate([r])[0].text for r in (free, constrained, sampled)]
    together = engine.generate([free, constrained, free, sampled])
    assert [r.text for r in together] == [alone[0], alone[1], alone[0], alone[2]]
    assert together[0].finish_reason == "length"  # the free row is not held to the grammar
    for result in (together[1], together[3]):
        Item.model_validate_json(result.text)


def test_the_dynamic_batcher_coalesces_constrained_and_free_calls(model: ChatTransformers) -> None:
    stats = _POOL.get(model).batcher.stats
    before = len(stats.sizes)
    results: dict[int, str] = {}
    barrier = threading.Barrier(8)

    def call(i: int) -> None:
        barrier.wait()
        kwargs = {"response_format": schema_format(Item)} if i % 2 else {"max_tokens": 20}
        results[i] = model.invoke(PROMPT, **kwargs).content

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(stats.sizes[before:]) > 1
    for i, text in results.items():
        if i % 2:
            Item.model_validate_json(text)
    assert len({results[i] for i in range(0, 8, 2)}) == 1


def test_streaming_under_a_grammar(model: ChatTransformers) -> None:
    chunks = list(model.stream(PROMPT, response_format=schema_format(Item)))
    text = "".join(c.content for c in chunks)
    assert len([c for c in chunks if c.content]) > 3
    assert text == model.invoke(PROMPT, response_format=schema_format(Item)).content
    assert chunks[-1].response_metadata["finish_reason"] == "stop"
    Item.model_validate_json(text)


async def test_async_invoke_stream_and_structured_output(model: ChatTransformers) -> None:
    expected = model.invoke(PROMPT, response_format=schema_format(Item)).content
    assert (await model.ainvoke(PROMPT, response_format=schema_format(Item))).content == expected
    streamed = [c.content async for c in model.astream(PROMPT, response_format=schema_format(Item))]
    assert "".join(streamed) == expected
    structured = model.with_structured_output(Item)
    assert await structured.ainvoke(PROMPT) == structured.invoke(PROMPT)  # the schema instruction is added


def test_logprobs_are_of_the_tokens_the_grammar_allowed(model: ChatTransformers) -> None:
    answer = model.invoke(PROMPT, response_format=schema_format(Item), logprobs=True, top_logprobs=5)
    content = answer.response_metadata["logprobs"]["content"]
    assert "".join(e["token"] for e in content) == answer.content
    assert content[0]["token"].startswith("{")
    assert all(t["token"].startswith("{") or t["logprob"] == float("-inf") for t in content[0]["top_logprobs"])


# -- the mask: vocabulary edges ---------------------------------------------------------------------------------


def test_the_mask_forbids_padded_ids_and_special_tokens(compiler: GrammarCompiler) -> None:
    tokenizer = compiler.tokenizer
    row = compiler.compile({"type": "object", "properties": {"a": {"type": "string"}}}).start()
    for token in tokenizer.encode('{"a": "x', add_special_tokens=False):  # inside a string: almost anything goes
        assert row.advance(token)
    logits = torch.zeros(len(tokenizer) + 64)
    logits[len(tokenizer) :] = 100.0  # a padded embedding whose rows would win
    row.mask(logits)
    allowed = set(torch.isfinite(logits).nonzero().flatten().tolist())
    assert len(allowed) > len(tokenizer) // 2
    assert max(allowed) < len(tokenizer)
    special = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special} | set(tokenizer.all_special_ids)
    assert len(special) == 7 and not allowed & special
    narrow = torch.zeros(len(tokenizer) - 7)  # a model with fewer logits than the tokenizer has ids
    row.mask(narrow)
    assert torch.isfinite(narrow).sum() == len(allowed & set(range(len(narrow))))


def test_a_model_with_a_padded_vocabulary_decodes_valid_json(tiny_model_path: Path) -> None:
    base = HFEngine.load(str(tiny_model_path), device="cpu", dtype="float32")
    vocab = len(base.tokenizer)
    model = base.model
    model.resize_token_embeddings(vocab + 61, mean_resizing=False)
    padded = torch.arange(vocab, vocab + 61)
    model.get_output_embeddings().register_forward_hook(lambda _m, _i, out: out.index_fill(-1, padded, 1e4))
    engine = HFEngine(model, base.tokenizer, name="padded")
    compiler = GrammarCompiler(engine.tokenizer, eos_ids=engine.eos_ids)
    prompt = engine.encode_chat([{"role": "user", "content": "JSON please"}])
    free, constrained = engine.generate(
        [GenRequest(prompt, max_tokens=8), GenRequest(prompt, grammar=compiler.compile(Item.model_json_schema()))]
    )
    assert free.completion_tokens == 8 and free.text == ""  # the padded ids win and decode to nothing
    Item.model_validate_json(constrained.text)


# -- schemas, cache and errors ----------------------------------------------------------------------------------


def test_compiled_grammars_are_cached_per_schema(compiler: GrammarCompiler) -> None:
    schema = Item.model_json_schema()
    reordered = dict(reversed(list(schema.items())))
    assert compiler.compile(schema) is compiler.compile(reordered)
    assert compiler.compile(schema) is not compiler.compile(Tags.model_json_schema())


QUESTION = {"question": "Q?", "type": "multiple_choice", "options": ["a", "b", "c", "d"], "answer": "a"}
QUESTION_CASES = [  # (changes to QUESTION, valid under the quiz rules)
    ({}, True),
    ({"type": "short_answer", "options": []}, True),
    ({"type": "true_false", "options": ["True", "False"], "answer": "False"}, True),
    ({"options": ["a", "b", "c"]}, False),
    ({"type": "short_answer"}, False),
    ({"type": "true_false", "options": ["True", "False"], "answer": "Maybe"}, False),
]


def test_the_quiz_prompts_if_then_rules_become_an_equivalent_any_of() -> None:
    schema = PromptRegistry([]).get("education/quiz@1.1.0").meta.output.schema_
    prepared = prepare_schema(schema)
    assert '"if"' in json.dumps(schema) and '"if"' not in json.dumps(prepared)
    for changes, valid in QUESTION_CASES:
        item = {**QUESTION, "explanation": "Because it is the right answer.", "difficulty": "easy", **changes}
        value = {"topic": "Rivers", "grade_level": 4, "questions": [item]}
        assert jsonschema.Draft202012Validator(schema).is_valid(value) is valid
        assert jsonschema.Draft202012Validator(prepared).is_valid(value) is valid


def test_enum_switched_if_then_rules_are_enforced_while_decoding(compiler: GrammarCompiler) -> None:
    # The quiz rules in words the tiny tokenizer can spell (its alphabet has no underscore).
    kinds = {"multiple_choice": "choice", "short_answer": "open", "true_false": "truth"}
    item = {
        "type": "object",
        "required": ["question", "type", "options", "answer"],
        "properties": {
            "question": {"type": "string"},
            "type": {"enum": list(kinds.values())},
            "options": {"type": "array", "items": {"type": "string"}},
            "answer": {"type": "string"},
        },
        "allOf": [
            {"if": {"properties": {"type": {"const": "choice"}}}, "then": {"properties": {"options": {"minItems": 4}}}},
            {
                "if": {"properties": {"type": {"const": "truth"}}},
                "then": {"properties": {"answer": {"enum": ["True", "False"]}}},
            },
        ],
        "if": {"properties": {"type": {"const": "open"}}},
        "then": {"properties": {"options": {"maxItems": 0}}},
    }
    for changes, valid in QUESTION_CASES:
        value = {**QUESTION, **changes}
        value["type"] = kinds[value["type"]]
        assert jsonschema.Draft202012Validator(item).is_valid(value) is valid
        assert walk(compiler, item, json.dumps(value)) == ("done" if valid else "refused"), value


def test_a_schema_the_tokenizer_cannot_spell_ends_the_row(model: ChatTransformers) -> None:
    schema = {"type": "object", "properties": {"a_b": {"type": "integer"}}, "required": ["a_b"]}
    rf = {"type": "json_schema", "json_schema": {"schema": schema}}
    for temperature in (0.0, 1.0):  # sampling from nothing would raise and fail the whole batch
        answer = model.invoke(PROMPT, response_format=rf, temperature=temperature, seed=1)
        assert answer.content.startswith('{"a') and answer.response_metadata["finish_reason"] == "stop"


def test_a_matcher_in_error_leaves_only_end_of_sequence(compiler: GrammarCompiler) -> None:
    row = compiler.compile({"type": "object"}).start()
    assert not row.advance(compiler.tokenizer.encode("x", add_special_tokens=False)[0])
    assert row.is_done() and "doesn't satisfy the grammar" in row.error
    logits = torch.zeros(len(compiler.tokenizer))
    row.mask(logits)
    assert torch.isfinite(logits).nonzero().flatten().tolist() == compiler.eos_ids


def test_open_objects_are_closed_only_where_nothing_else_is_said() -> None:
    prepared = prepare_schema(Item.model_json_schema())
    assert prepared["additionalProperties"] is False
    assert prepare_schema({"type": "object"}) == {"type": "object"}
    kept = {"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "integer"}}
    assert prepare_schema(kept) == kept


def test_a_schema_the_grammar_cannot_express_is_a_clear_error(model: ChatTransformers) -> None:
    schema = {
        "title": "Pick",
        "type": "object",
        "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 50, "not": {"const": 3}}},
        "required": ["a"],
    }
    with pytest.raises(InvalidRequest, match=r'Pick cannot be enforced.*"not".* at /properties/a.*x-guidance'):
        model.invoke(PROMPT, response_format={"type": "json_schema", "json_schema": {"schema": schema}})
    with pytest.raises(InvalidRequest, match="Invalid type: strin"):
        model.invoke(PROMPT, response_format={"type": "json_schema", "json_schema": {"schema": {"type": "strin"}}})
    with pytest.raises(InvalidRequest, match="look-around"):
        model.with_structured_output({"type": "string", "pattern": "(?<=a)b", "title": "P"}).invoke(PROMPT)
    lenient = {**schema, "x-guidance": {"lenient": True}}
    answer = model.invoke(PROMPT, response_format={"type": "json_schema", "json_schema": {"schema": lenient}})
    assert 0 <= json.loads(answer.content)["a"] <= 50


def test_response_format_shapes() -> None:
    assert schema_of_response_format(None) is None
    assert schema_of_response_format({"type": "text"}) is None
    assert schema_of_response_format({"type": "json_object"}) == {"type": "object"}
    assert schema_of_response_format(Item) == Item.model_json_schema()
    assert schema_of_response_format(schema_format(Item)) == Item.model_json_schema()
    with pytest.raises(ValueError, match="response_format must be"):
        schema_of_response_format({"type": "json_schema", "schema": {}})


# -- the real model ---------------------------------------------------------------------------------------------


DEGENERATES = (
    "SmolLM2-135M repeats one sentence inside a quiz string until the 3000-token budget runs out, or repeats an "
    "option (uniqueItems, which no grammar checks): 0 of 8 answers validated in benchmarks/bench_constrained.py "
    "validity, at 5-10 CPU minutes each; the grammar keeps the structure (see the test below), not the content"
)


def json_prompts() -> list[object]:
    registry = PromptRegistry([])
    refs = [f"{e.id}@{v}" for e in registry for v in e.versions]
    refs = [ref for ref in refs if registry.get(ref).meta.output.format == "json"]
    assert refs, "the library has no JSON prompts"
    skip = pytest.mark.xfail(reason=DEGENERATES, run=False)
    return [pytest.param(ref, marks=skip) if ref.startswith("education/quiz@") else ref for ref in refs]


@pytest.fixture(scope="module")
def smollm2(smollm2_path: Path) -> ChatTransformers:
    return ChatTransformers(model=str(smollm2_path), dtype="bfloat16", seed=0)  # the prompts sample: seeded


@pytest.mark.real_model
@pytest.mark.parametrize("ref", json_prompts())
def test_builtin_json_prompts_validate_on_smollm2(ref: str, smollm2: ChatTransformers) -> None:
    prompt = PromptRegistry([]).get(ref)
    values = {k: s.example for k, s in prompt.meta.inputs.items() if s.example is not None}
    value = build_chain(prompt, smollm2).invoke(values)  # validated by build_chain, checked again here
    jsonschema.validate(value, prompt.meta.output.schema_)


@pytest.mark.real_model
def test_the_quiz_prompt_keeps_its_shape_on_smollm2(smollm2: ChatTransformers) -> None:
    prompt = PromptRegistry([]).get("education/quiz@1.1.0")
    values = {k: s.example for k, s in prompt.meta.inputs.items() if s.example is not None}
    rf = {"type": "json_schema", "json_schema": {"schema": prompt.meta.output.schema_}}
    answer = smollm2.invoke(prompt.to_langchain(**values), response_format=rf, max_tokens=40, temperature=0)
    assert answer.content.startswith('{"topic": "Photosynthesis", "grade_level": 7, "questions": [{"question": "')


class Product(BaseModel):
    name: str = Field(max_length=40)
    price_usd: float = Field(ge=0)
    colors: list[str] = Field(min_length=1, max_length=4)
    in_stock: bool


@pytest.mark.real_model
def test_with_structured_output_validates_on_smollm2(smollm2: ChatTransformers) -> None:
    structured = smollm2.with_structured_output(Product, include_raw=True)
    result = structured.invoke("Describe a red and blue water bottle that costs 12 dollars.")
    assert result["parsing_error"] is None, result["raw"].content
    assert isinstance(result["parsed"], Product)
