"""End to end: a real A/B eval run (the runner, the local OpenAI server, a temp SQLite store), then the comparison
of its two prompt versions in process and through ``aigc compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aigc_app.cli import run
from aigc_app.compare import compare_runs, compare_variants
from aigc_app.runner import EvalSuite, RunOptions, run_suite
from aigc_app.store import ResultsStore
from chains import ModelsConfig
from chains.testing import Answer, OpenAIServer
from tests.conftest import version_file, write_library

V1, V2 = "writing/tagline@1.0.0", "writing/tagline@1.1.0"
INPUTS = "inputs:\n  product: {type: string}\n"


def _library(root: Path) -> Path:
    return write_library(
        root,
        {
            "writing/tagline/1.0.0.jinja": version_file(
                "tagline", "1.0.0", inputs=INPUTS, body="Write a tagline for {{ product }}."
            ),
            "writing/tagline/1.1.0.jinja": version_file(
                "tagline", "1.1.0", inputs=INPUTS, body="Write a bolder tagline for {{ product }}."
            ),
        },
    )


def _suite(cases: int) -> EvalSuite:
    return EvalSuite.model_validate(
        {
            "name": "taglines",
            "prompts": [V1, V2],
            "models": ["openai:gpt-test"],
            "evaluators": [{"evaluator": "degeneration"}],
            "params": {"max_tokens": 80},
            "cases": [{"id": f"p{i}", "vars": {"product": f"Product {i}"}} for i in range(cases)],
        }
    )


def _responder(request: dict[str, Any]) -> Answer:
    """Version 1.1.0 asks for a "bolder" tagline: this model answers it with a loop."""
    text = " ".join(str(m.get("content", "")) for m in request["messages"])
    if "bolder" in text:
        return Answer(content="Bold bold bold deals now. " * 12)
    return Answer(content="A calm, clear tagline that says what the product does.")


@pytest.fixture
def ab_run(tmp_path: Path) -> tuple[Path, str]:
    lib = _library(tmp_path / "lib")
    db = tmp_path / "results.db"
    with OpenAIServer(models=("gpt-test",), responder=_responder) as server, ResultsStore(db) as store:
        config = ModelsConfig.model_validate({"openai": {"base_url": server.base_url, "api_key": "sk-test"}})
        results = run_suite(_suite(12), config=config, store=store, options=RunOptions(prompts_dirs=[lib], quiet=True))
    assert results.info.status == "finished" and len(results.cases) == 24
    return db, results.info.run_id


def test_the_looping_version_regresses_on_degeneration(ab_run: tuple[Path, str]) -> None:
    db, run_id = ab_run
    with ResultsStore(db) as store:
        results = store.load_run(run_id)
    c = compare_variants(results, V1, V2, n_boot=2000)
    rows = {r.evaluator: r for r in c.rows}
    degeneration = rows["degeneration"]
    assert degeneration.n_pairs == 12 and degeneration.effect < -0.2
    assert degeneration.verdict == "regressed" and c.regressed
    assert {rc.case_id for rc in c.variants[0].regressed_cases} == {f"p{i}" for i in range(12)}
    assert "Bold bold bold" in c.variants[0].regressed_cases[0].output_b
    same = compare_runs(results, results, variant_a=V1, variant_b=V1, n_boot=500)
    assert not same.regressed and all(r.verdict == "no significant change" for r in same.rows)


def test_aigc_compare_on_the_stored_run(ab_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    db, run_id = ab_run
    code = run(["compare", run_id[:14], "--variant-a", V1, "--variant-b", V2, "-f", "json", "--store", str(db)])
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["regressed"] and data["variants"][0]["variant_b"] == f"{V2} | openai:gpt-test"
    assert run(["compare", "latest", "--variant-a", V2, "--variant-b", V1, "--store", str(db)]) == 0
    assert "improved" in capsys.readouterr().out
