"""The best available model: OpenAI when configured, else the configured or pulled local model, else the tiny
offline model (built once into the model cache) with a plain warning in the run's notes."""

from __future__ import annotations

import pytest

from aigc_app.runner import EvalSuite, RunOptions, best_available_model, run_suite
from aigc_app.runner.models import TINY_MODEL_NAME, TINY_MODEL_NOTE
from aigc_app.store import ResultsStore
from chains import ModelsConfig
from tests.test_runner import suite_data, tagline_library


def test_openai_wins_when_configured_then_the_configured_local_model() -> None:
    openai = ModelsConfig.model_validate({"openai": {"api_key": "sk-x", "model": "gpt-4o-mini"}})
    assert best_available_model(openai).model_id == "openai:gpt-4o-mini"
    local = ModelsConfig.model_validate({"local": {"model": "hf:./my-model"}})
    assert best_available_model(local).model_id == "hf:./my-model" and best_available_model(local).note is None


def test_without_any_model_the_tiny_offline_model_runs_and_says_its_text_is_meaningless(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIGC_MODELS_DIR", str(tmp_path / "models"))
    choice = best_available_model(ModelsConfig())
    assert choice.kind == "tiny" and choice.model_id == f"hf:{TINY_MODEL_NAME}" and choice.note == TINY_MODEL_NOTE
    assert (tmp_path / "models" / TINY_MODEL_NAME / "config.json").is_file()
    assert "meaningless" in TINY_MODEL_NOTE and "aigc models pull smollm2" in TINY_MODEL_NOTE
    lib = tagline_library(tmp_path / "lib")
    suite = EvalSuite.model_validate(suite_data(2) | {"models": ["auto"], "params": {"max_tokens": 8}})
    with ResultsStore(tmp_path / "results.db") as store:
        results = run_suite(
            suite, config=ModelsConfig(), store=store, options=RunOptions(prompts_dirs=[lib], quiet=True)
        )
    assert results.info.status == "finished" and list(results.info.models) == [f"hf:{TINY_MODEL_NAME}"]
    assert TINY_MODEL_NOTE in results.info.notes
    assert all(c.error is None and c.tokens_out > 0 and c.backend == f"hf:{TINY_MODEL_NAME}" for c in results.cases)


@pytest.mark.parametrize("model", ["hf:smollm2", "hf:smollm2-135m-instruct"])
def test_the_pulled_model_is_accepted_by_name_or_alias(model, smollm2_path) -> None:
    from aigc_app.runner.models import check_model_id

    check_model_id(model, ["openai", "hf"], "here")
