"""The built-in eval suites on the real SmolLM2-135M-Instruct (skipped when it is not pulled; CI requires it)."""

from __future__ import annotations

import json

import pytest

from aigc_app.runner import EvalSuite, RunOptions, build_plan, builtin_suites, load_eval_suite, run_suite
from aigc_app.store import ResultsStore
from chains import ChatTransformers, ModelsConfig
from chains.structured import _INSTRUCTION, json_schema_of

pytestmark = pytest.mark.real_model

MODEL = "hf:smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smollm2(smollm2_path) -> ChatTransformers:
    return ChatTransformers(model=str(smollm2_path), dtype="bfloat16")


@pytest.mark.parametrize("name", builtin_suites())
def test_every_case_of_every_builtin_suite_fits_the_window_with_its_budget(name, smollm2) -> None:
    plan = build_plan(load_eval_suite(name), config=ModelsConfig(), options=RunOptions(models=[MODEL]))
    window = smollm2.engine.context_window
    for slot in plan.slots:
        messages = [dict(m) for m in slot.messages]
        if slot.prompt.meta.output.format == "json":  # structured output puts the schema instruction in front
            schema = json.dumps(json_schema_of(slot.prompt.meta.output.schema_), ensure_ascii=False)
            messages.insert(0, {"role": "system", "content": _INSTRUCTION.format(schema=schema)})
        prompt_tokens = len(smollm2.engine.encode_chat(messages))
        budget = slot.params["max_tokens"]
        assert prompt_tokens + budget <= window == 8192, (name, slot.key, prompt_tokens, budget)


def test_a_builtin_suite_runs_end_to_end_on_smollm2(tmp_path, smollm2_path) -> None:
    suite = load_eval_suite("marketing")
    small = EvalSuite.model_validate(
        suite.model_dump() | {"evaluators": [{"evaluator": "adherence"}, {"evaluator": "degeneration"}]}
    )
    small._path = suite.path
    options = RunOptions(models=[MODEL], filter=["tag:x"], max_tokens=24, quiet=True)
    with ResultsStore(tmp_path / "results.db") as store:
        results = run_suite(small, config=ModelsConfig(), store=store, options=options)
    assert results.info.status == "finished" and len(results.cases) == 5
    assert all(c.error is None and c.tokens_out > 0 and len(c.output.split()) >= 3 for c in results.cases)
