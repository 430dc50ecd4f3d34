"""The ``vllm:`` provider on a machine without vLLM or a GPU: registered through the entry point, and failing at
once with what to install and the exact ``openai:`` + ``base_url`` config that reaches a ``vllm serve`` instead."""

from __future__ import annotations

import importlib.util

import pytest

from chains import ModelsConfig
from chains.errors import ModelUnavailable
from chains.registry import ModelRegistry
from chains.vllm import SERVER_HINT

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="vllm is installed here: the GPU benchmark exercises it"
)


def test_vllm_is_a_registered_provider() -> None:
    assert "vllm" in ModelRegistry().providers


def test_without_vllm_the_error_says_what_to_install_and_how_to_use_a_server_instead() -> None:
    with pytest.raises(ModelUnavailable) as err:
        ModelRegistry().create("vllm:Qwen/Qwen2.5-0.5B-Instruct", ModelsConfig())
    text = str(err.value)
    assert err.value.model == "vllm:Qwen/Qwen2.5-0.5B-Instruct" and err.value.provider == "vllm"
    assert "pip install 'aigc[vllm]'" in text and "CUDA GPU" in text
    assert "vllm serve Qwen/Qwen2.5-0.5B-Instruct --port 8000" in text
    assert "openai:Qwen/Qwen2.5-0.5B-Instruct" in text
    assert "models: {openai: {base_url: http://GPU-HOST:8000/v1, api_key: EMPTY}}" in text


def test_the_suggested_config_is_valid_and_routes_to_the_server() -> None:
    import yaml

    from chains.config import validate_config

    hint = SERVER_HINT.format(name="Qwen/Qwen2.5-0.5B-Instruct")
    config_text = hint.rsplit(" with ", 1)[1].removesuffix(" in aigc.yaml")
    config = validate_config(yaml.safe_load(config_text)["models"], source="hint")
    assert config.openai.base_url == "http://GPU-HOST:8000/v1" and config.openai.configured


def test_an_eval_plan_accepts_a_vllm_model_and_the_run_records_the_reason(tmp_path) -> None:
    from aigc_app.runner import EvalSuite, RunOptions, build_plan, run_suite
    from aigc_app.store import ResultsStore
    from tests.test_runner import suite_data, tagline_library

    lib = tagline_library(tmp_path / "lib")
    suite = EvalSuite.model_validate(suite_data(1, models=["vllm:Qwen/Qwen2.5-0.5B-Instruct"]))
    options = RunOptions(prompts_dirs=[lib], quiet=True)
    plan = build_plan(suite, config=ModelsConfig(), options=options)
    assert plan.models == ["vllm:Qwen/Qwen2.5-0.5B-Instruct"]
    with ResultsStore(tmp_path / "r.db") as store, pytest.raises(ModelUnavailable, match=r"aigc\[vllm\]"):
        run_suite(suite, config=ModelsConfig(), store=store, options=options, plan=plan)
