"""The eval runner in process: suite files and their errors, cases, the plan, and runs against the local OpenAI
server (scripted answers and faults) into a real temp store."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest

from aigc_app.runner import (
    AdaptiveLimit,
    CostLimitExceeded,
    EvalSuite,
    RunOptions,
    SuiteError,
    build_plan,
    load_eval_suite,
    resolve_cases,
    run_suite,
)
from aigc_app.runner.spec import builtin_suites
from aigc_app.store import ResultsStore
from chains import ModelsConfig
from chains.testing import Answer, Fault, OpenAIServer
from tests.conftest import version_file, write_library

FAST = [{"evaluator": "adherence"}, {"evaluator": "degeneration"}]
TAGLINE_INPUTS = "inputs:\n  product: {type: string}\n  audience: {type: string, default: everyone}\n"


def tagline_library(root: Path, body_b: str = "Write a bolder tagline for {{ product }} ({{ audience }}).") -> Path:
    """A library with two versions of one prompt (an A/B pair), both drafts."""
    return write_library(
        root,
        {
            "writing/tagline/1.0.0.jinja": version_file(
                "tagline", "1.0.0", inputs=TAGLINE_INPUTS, body="Write a tagline for {{ product }} ({{ audience }})."
            ),
            "writing/tagline/1.1.0.jinja": version_file("tagline", "1.1.0", inputs=TAGLINE_INPUTS, body=body_b),
        },
    )


def suite_data(cases: int = 6, prompts: tuple[str, ...] = ("writing/tagline@1.0.0",), **extra) -> dict:
    return {
        "name": "taglines",
        "prompts": list(prompts),
        "models": ["openai:gpt-test"],
        "evaluators": FAST,
        "params": {"max_tokens": 40},
        "cases": [
            {"id": f"p{i}", "vars": {"product": f"Product {i}"}, "tags": ["even" if i % 2 == 0 else "odd"]}
            for i in range(cases)
        ],
        **extra,
    }


@pytest.fixture
def server():
    with OpenAIServer(models=("gpt-test",)) as server:
        yield server


@pytest.fixture
def config(server) -> ModelsConfig:
    return ModelsConfig.model_validate({"openai": {"base_url": server.base_url, "api_key": "sk-test"}})


@pytest.fixture
def store(tmp_path):
    with ResultsStore(tmp_path / "results.db") as store:
        yield store


@pytest.fixture
def lib(tmp_path) -> Path:
    return tagline_library(tmp_path / "lib")


def chat_requests(server) -> int:
    return sum(r.path.endswith("/chat/completions") for r in server.requests)


def write_suite(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- suite files ----------------------------------------------------------------------------------------------------


def test_every_builtin_suite_loads_and_plans_with_10_to_20_cases() -> None:
    assert set(builtin_suites()) >= {"writing", "marketing", "education", "ad_copy_ab"}
    for name in builtin_suites():
        suite = load_eval_suite(name)
        plan = build_plan(suite, config=ModelsConfig(), options=RunOptions(models=["openai:gpt-test"]))
        assert 10 <= len(plan.cases) <= 20, name
        assert len(plan.slots) == len(plan.prompts) * len(plan.cases)
    ab = load_eval_suite("ad_copy_ab")
    assert ab.prompts == ["marketing/ad_copy@1.0.0", "marketing/ad_copy@1.1.0"]


def test_a_typo_in_a_key_names_file_line_field_and_the_near_name(tmp_path) -> None:
    path = write_suite(
        tmp_path / "s.yaml",
        """\
        name: s
        prompts: [writing/rewrite]
        cases:
          - id: a
            vras: {text: hi}
        """,
    )
    with pytest.raises(SuiteError) as err:
        load_eval_suite(path)
    assert f"{path}:5" in str(err.value) and "'vras'" in str(err.value) and "did you mean 'vars'" in str(err.value)


def test_top_level_and_params_typos_suggest_the_field(tmp_path) -> None:
    path = write_suite(
        tmp_path / "s.yaml", "name: s\npromts: [writing/rewrite]\nparams: {temprature: 0.2}\ncases: []\n"
    )
    with pytest.raises(SuiteError) as err:
        load_eval_suite(path)
    text = str(err.value)
    assert f"{path}:2" in text and "did you mean 'prompts'" in text
    assert f"{path}:3" in text and "did you mean 'temperature'" in text


def test_unknown_prompt_evaluator_and_model_get_near_names(tmp_path) -> None:
    base = (
        "name: s\nprompts: [{prompt}]\nmodels: [{model}]\nevaluators: {evaluators}\n"
        "cases:\n  - {{id: a, vars: {{text: hi}}}}\n"
    )
    cases = [
        ({"prompt": "writing/rewrit", "model": "openai:x", "evaluators": "offline"}, ":2", "writing/rewrite"),
        ({"prompt": "writing/rewrite", "model": "opneai:gpt-4o", "evaluators": "offline"}, ":3", "openai:gpt-4o"),
        ({"prompt": "writing/rewrite", "model": "hf:smolm2", "evaluators": "offline"}, ":3", "hf:smollm2"),
        ({"prompt": "writing/rewrite", "model": "openai:x", "evaluators": "[{evaluator: toxicty}]"}, ":4", "toxicity"),
        ({"prompt": "writing/rewrite", "model": "openai:x", "evaluators": "ofline"}, ":4", "offline"),
    ]
    for fields, line, near in cases:
        path = write_suite(tmp_path / "s.yaml", base.format(**fields))
        with pytest.raises(SuiteError) as err:
            build_plan(load_eval_suite(path), config=ModelsConfig(), options=RunOptions())
        assert f"{path}{line}" in str(err.value) and near in str(err.value), (fields, str(err.value))


def test_a_missing_variable_names_case_file_line_prompt_and_variable(tmp_path, lib) -> None:
    (tmp_path / "cases.jsonl").write_text(
        '{"id": "ok", "product": "Kettle"}\n\n{"id": "no-product", "audience": "cooks"}\n', encoding="utf-8"
    )
    path = write_suite(
        tmp_path / "s.yaml",
        "name: s\nprompts: [writing/tagline@1.0.0]\nmodels: [openai:x]\ncases:\n  - file: cases.jsonl\n",
    )
    with pytest.raises(SuiteError) as err:
        build_plan(load_eval_suite(path), config=ModelsConfig(), options=RunOptions(prompts_dirs=[lib]))
    text = str(err.value)
    assert "cases.jsonl:3" in text and "'no-product'" in text and "writing/tagline@1.0.0" in text and "product" in text


def test_an_unknown_variable_is_a_typo_with_a_near_name(lib) -> None:
    suite = EvalSuite.model_validate(suite_data(1) | {"cases": [{"id": "a", "vars": {"prodct": "x"}}]})
    with pytest.raises(SuiteError, match=r"'prodct'.*did you mean 'product'"):
        build_plan(suite, config=ModelsConfig(), options=RunOptions(prompts_dirs=[lib]))


def test_case_files_jsonl_and_csv_with_default_ids_and_duplicates(tmp_path) -> None:
    (tmp_path / "a.jsonl").write_text('{"vars": {"text": "one"}, "tags": ["x"]}\n{"text": "two"}\n', encoding="utf-8")
    (tmp_path / "b.csv").write_text('id,text,tags\nc1,"three, with comma",x;y\n,four,\n', encoding="utf-8")
    path = write_suite(
        tmp_path / "s.yaml",
        "name: s\nprompts: [writing/rewrite]\ncases:\n  - file: a.jsonl\n  - file: b.csv\n"
        "  - {id: a-1, vars: {text: dup}}\n",
    )
    suite = load_eval_suite(path)
    with pytest.raises(SuiteError, match=r"s.yaml:6: case id 'a-1' is used twice \(first at .*a.jsonl:1\)"):
        resolve_cases(suite)
    suite.cases.pop()
    cases = resolve_cases(suite)
    assert [c.id for c in cases] == ["a-1", "a-2", "c1", "b-2"]
    assert cases[2].vars == {"text": "three, with comma"} and cases[2].tags == ("x", "y")
    (tmp_path / "a.jsonl").write_text('{"vars": {"text": "one"}}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(SuiteError, match=r"a.jsonl:2: each line must be a JSON object"):
        resolve_cases(suite)


def test_filter_by_glob_and_tag(lib, config, store) -> None:
    suite = EvalSuite.model_validate(suite_data(6))
    options = RunOptions(prompts_dirs=[lib], filter=["tag:odd", "p0"])
    plan = build_plan(suite, config=config, options=options)
    assert [c.id for c in plan.cases] == ["p0", "p1", "p3", "p5"]


def test_plan_expands_versions_models_cases_repeats_and_prices(lib) -> None:
    suite = EvalSuite.model_validate(
        suite_data(3, ("writing/tagline@1.0.0", "writing/tagline@1.1.0"), models=["openai:a", "openai:b"], repeat=2)
    )
    prices = {"openai:a": {"input": 1.0, "output": 2.0}}
    config = ModelsConfig.model_validate({"openai": {"api_key": "sk-x"}, "router": {"prices": prices}})
    plan = build_plan(suite, config=config, options=RunOptions(prompts_dirs=[lib]))
    assert len(plan.slots) == 2 * 2 * 3 * 2 == len({s.key for s in plan.slots})
    assert plan.costs["openai:b"] is None and 0 < plan.costs["openai:a"] < 0.01
    from rich.console import Console

    console = Console(width=80, record=True)
    console.print(plan.table())
    text = console.export_text()
    assert "24 = 2 x 2 x 3 x 2" in text and "unknown" in text and max(map(len, text.splitlines())) <= 80
    with pytest.raises(CostLimitExceeded, match="over --max-cost"):
        build_plan(suite, config=config, options=RunOptions(prompts_dirs=[lib], max_cost=1e-7))


# -- runs -----------------------------------------------------------------------------------------------------------


def test_a_run_records_every_case_with_scores_and_a_warm_rerun_makes_no_request(lib, server, config, store) -> None:
    suite = EvalSuite.model_validate(suite_data(6))
    options = RunOptions(prompts_dirs=[lib], quiet=True)
    first = run_suite(suite, config=config, store=store, options=options)
    assert first.info.status == "finished" and len(first.cases) == 6 and chat_requests(server) == 6
    case = first.cases[0]
    assert case.prompt_ref == "writing/tagline@1.0.0" and case.model == "openai:gpt-test"
    assert case.output.startswith("You said:") and case.tokens_out > 0 and not case.cached
    assert {s.evaluator for s in case.scores} == {"adherence", "degeneration"} and all(s.key for s in case.scores)
    second = run_suite(suite, config=config, store=store, options=options)
    assert chat_requests(server) == 6, "the warm re-run called the model"
    assert second.info.run_id != first.info.run_id and all(c.cached for c in second.cases)
    assert [c.output for c in second.cases] == [c.output for c in first.cases]
    assert [[s.value for s in c.scores] for c in second.cases] == [[s.value for s in c.scores] for c in first.cases]
    run_suite(suite, config=config, store=store, options=RunOptions(prompts_dirs=[lib], quiet=True, no_cache=True))
    assert chat_requests(server) == 12


def test_editing_one_of_two_versions_regenerates_only_that_half(tmp_path, server, config, store) -> None:
    lib = tagline_library(tmp_path / "lib")
    suite = EvalSuite.model_validate(suite_data(5, ("writing/tagline@1.0.0", "writing/tagline@1.1.0")))
    options = RunOptions(prompts_dirs=[lib], quiet=True)
    run_suite(suite, config=config, store=store, options=options)
    assert chat_requests(server) == 10
    tagline_library(tmp_path / "lib", body_b="Write a much bolder tagline for {{ product }}, for {{ audience }}.")
    again = run_suite(suite, config=config, store=store, options=options)
    assert chat_requests(server) == 15
    fresh = {c.prompt_ref for c in again.cases if not c.cached}
    assert fresh == {"writing/tagline@1.1.0"} and sum(c.cached for c in again.cases) == 5


def test_repeats_and_rescore_are_recorded(lib, server, config, store) -> None:
    suite = EvalSuite.model_validate(suite_data(2, repeat=3, seed=11, rescore=2))
    results = run_suite(suite, config=config, store=store, options=RunOptions(prompts_dirs=[lib], quiet=True))
    assert sorted((c.case_id, c.sample_index) for c in results.cases) == [
        (f"p{i}", k) for i in range(2) for k in range(3)
    ]
    assert [c.seed for c in results.cases if c.case_id == "p0"] == [11, 12, 13]
    bodies = [r.body for r in server.requests if r.path.endswith("/chat/completions")]
    assert sorted(b["seed"] for b in bodies) == [11, 11, 12, 12, 13, 13]
    assert sorted(s.rescore for s in results.cases[0].scores) == [0, 0, 1, 1]


def test_rate_limits_halve_the_concurrency_and_every_case_completes(lib, server, config, store) -> None:
    server.script(*[Fault.rate_limit(retry_after=0.05) for _ in range(8)])
    suite = EvalSuite.model_validate(suite_data(12))
    options = RunOptions(prompts_dirs=[lib], quiet=True, concurrency=8)
    results = run_suite(suite, config=config, store=store, options=options)
    assert results.info.status == "finished" and all(c.error is None for c in results.cases)
    assert chat_requests(server) == 12 + 8
    assert any("rate limited" in n and "concurrency 4" in n for n in results.info.notes), results.info.notes


def test_latency_is_the_model_s_not_the_wait_for_a_place_or_a_backoff(lib, server, config, store) -> None:
    """A case's latency is its answering call's time: a retry's backoff (0.6 s here) and the wait for a
    concurrency place (under Ray, a worker's queue) are not the model's latency."""
    server.script(Fault.rate_limit(retry_after=0.6), *[Answer(content="A bright tagline.", delay_s=0.2)] * 3)
    suite = EvalSuite.model_validate(suite_data(3))
    options = RunOptions(prompts_dirs=[lib], quiet=True, concurrency=1)
    results = run_suite(suite, config=config, store=store, options=options)
    assert results.info.status == "finished" and all(c.error is None for c in results.cases)
    assert all(0.2 <= c.latency_s < 0.55 for c in results.cases), [c.latency_s for c in results.cases]


async def test_adaptive_limit_halves_once_per_wave_and_grows_back() -> None:
    limit = AdaptiveLimit(8)
    inside, peak = 0, 0

    async def call(refuse: bool) -> None:
        nonlocal inside, peak
        async with limit.slot() as epoch:
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1
            limit.rate_limited(epoch) if refuse else limit.succeeded()

    await asyncio.gather(*(call(True) for _ in range(8)))
    assert limit.limit == 4 and limit.halvings == 1 and peak == 8
    peak = 0
    await asyncio.gather(*(call(False) for _ in range(4)))
    assert peak <= 4 and limit.limit == 5
    await asyncio.gather(*(call(True) for _ in range(3)))
    assert limit.limit == 2 and limit.lowest == 2
    for _ in range(100):
        limit.succeeded()
    assert limit.limit == 8


def test_a_model_that_fails_every_case_ends_failed_with_the_first_error(lib, store) -> None:
    with OpenAIServer(models=("gpt-test",), api_key="sk-right") as server:
        config = ModelsConfig.model_validate({"openai": {"base_url": server.base_url, "api_key": "sk-wrong"}})
        suite = EvalSuite.model_validate(suite_data(20))
        results = run_suite(suite, config=config, store=store, options=RunOptions(prompts_dirs=[lib], quiet=True))
        assert chat_requests(server) <= 5 + 8  # it stops calling a model whose first calls all failed
    assert results.info.status == "failed" and len(results.cases) == 20 and all(c.error for c in results.cases)
    note = next(n for n in results.info.notes if n.startswith("failed:"))
    assert "openai:gpt-test failed every case (20)" in note and "AuthenticationFailed" in note
    assert sum("not attempted" in c.error for c in results.cases) >= 20 - 5 - 8


def test_server_errors_are_retried_and_a_case_that_keeps_failing_is_data(lib, server, config, store) -> None:
    server.script(Fault.server_error(503), Answer(content="recovered"))
    suite = EvalSuite.model_validate(suite_data(1))
    results = run_suite(suite, config=config, store=store, options=RunOptions(prompts_dirs=[lib], quiet=True))
    assert results.cases[0].output == "recovered" and results.cases[0].error is None
    server.script(*[Fault.server_error(500) for _ in range(3)])
    suite = EvalSuite.model_validate(suite_data(2) | {"name": "other", "params": {"max_tokens": 41}})
    options = RunOptions(prompts_dirs=[lib], quiet=True, concurrency=1)
    results = run_suite(suite, config=config, store=store, options=options)
    errors = [c.error for c in results.cases if c.error]
    assert len(errors) == 1 and "500" in errors[0] and results.info.status == "finished"


def test_resume_skips_done_slots_and_retries_failed_ones(lib, server, config, store) -> None:
    server.script(Answer(content="first"), Fault.unauthorized())
    suite = EvalSuite.model_validate(suite_data(2))
    options = RunOptions(prompts_dirs=[lib], quiet=True, concurrency=1)
    first = run_suite(suite, config=config, store=store, options=options)
    assert [c.error is None for c in first.cases] == [True, False]
    again = RunOptions(prompts_dirs=[lib], quiet=True, resume=first.info.run_id, no_cache=True)
    resumed = run_suite(suite, config=config, store=store, options=again)
    assert resumed.info.run_id == first.info.run_id and resumed.info.status == "finished"
    assert len(resumed.cases) == 2 and all(c.error is None for c in resumed.cases)
    assert resumed.cases[0].output == "first" and chat_requests(server) == 3


def test_json_prompts_go_through_structured_output(server, config, store) -> None:
    suite = EvalSuite.model_validate(
        {
            "name": "quiz",
            "prompts": ["education/quiz@1.1.0"],
            "models": ["openai:gpt-test"],
            "evaluators": [{"evaluator": "adherence"}],
            "cases": [{"id": "q", "vars": {"topic": "Fractions", "grade_level": 4, "num_questions": 1}}],
        }
    )
    results = run_suite(suite, config=config, store=store, options=RunOptions(quiet=True))
    body = next(r.body for r in server.requests if r.path.endswith("/chat/completions"))
    assert body["response_format"]["type"] == "json_schema"
    assert isinstance(json.loads(results.cases[0].output), dict)


def test_no_cache_keeps_the_fresh_answers_beside_the_stored_ones(lib, server, config, store) -> None:
    suite = EvalSuite.model_validate(suite_data(2))
    first = run_suite(suite, config=config, store=store, options=RunOptions(prompts_dirs=[lib], quiet=True))
    server.script(Answer(content="fresh one"), Answer(content="fresh two"))
    options = RunOptions(prompts_dirs=[lib], quiet=True, no_cache=True, concurrency=1)
    again = run_suite(suite, config=config, store=store, options=options)
    assert [c.output for c in again.cases] == ["fresh one", "fresh two"] and not any(c.cached for c in again.cases)
    assert all(c.output.startswith("You said") for c in store.load_run(first.info.run_id).cases)


class Recorder:
    """A Reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, total: int, done: int) -> None:
        self.events.append(("start", total, done))

    def case(self, case) -> None:
        self.events.append(("case", case.case_id, case.passed))

    def note(self, text: str) -> None:
        self.events.append(("note", text))

    def stop(self) -> None:
        self.events.append(("stop",))


def test_the_reporter_hears_every_case_and_a_resume_starts_from_what_is_done(lib, server, config, store) -> None:
    server.script(Answer(content="ok"), Fault.unauthorized())
    recorder = Recorder()
    suite = EvalSuite.model_validate(suite_data(2))
    first = run_suite(suite, config=config, store=store, options=RunOptions(prompts_dirs=[lib], reporter=recorder,
                                                                            concurrency=1))  # fmt: skip
    assert recorder.events[0] == ("start", 2, 0) and recorder.events[-1] == ("stop",)
    assert sorted(e[1] for e in recorder.events if e[0] == "case") == ["p0", "p1"]
    again = Recorder()
    run_suite(suite, config=config, store=store, options=RunOptions(prompts_dirs=[lib], reporter=again,
                                                                    resume=first.info.run_id))  # fmt: skip
    assert again.events[0] == ("start", 2, 1) and [e[1] for e in again.events if e[0] == "case"] == ["p1"]
