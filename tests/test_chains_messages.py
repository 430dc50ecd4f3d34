"""Mistakes in the models configuration and local-model setup get one clear line naming the fix, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aigc_app.settings import ConfigError, models_config
from chains import InvalidConfig, ModelRegistry, ModelsConfig, ModelUnavailable, load_config
from chains.config import validate_config

ROOT = Path(__file__).parent.parent


def test_a_key_typo_names_the_file_the_key_and_the_nearest_key(tmp_path: Path) -> None:
    file = tmp_path / "aigc.yaml"
    file.write_text("models:\n  openai: {modle: gpt-x}\n  router:\n    cahce: {path: c.db}\n")
    with pytest.raises(ConfigError) as info:
        models_config(file, env={"OPENAI_API_KEY": "sk-SECRET", "AIGC_LOCAL_MODEL": "hf:./m"})
    message = str(info.value)
    assert message.startswith(f"{file}: models.openai.modle: unknown key; did you mean model?")
    assert "models.router.cahce: unknown key; did you mean cache?" in message
    assert "OPENAI_API_KEY" not in message and "AIGC_LOCAL_MODEL" not in message and "sk-SECRET" not in message
    with pytest.raises(InvalidConfig, match=r"models\.openai\.modle: unknown key; did you mean model\?"):
        load_config(file)


def test_a_bad_value_from_the_environment_names_the_variable() -> None:
    with pytest.raises(InvalidConfig) as info:
        validate_config({"openai": {"timeout": "soon"}}, source="env", origins={("openai", "timeout"): "AIGC_T"})
    assert "models.openai.timeout:" in str(info.value) and "environment variable AIGC_T" in str(info.value)


def test_a_rule_with_an_unknown_task_is_refused_with_the_allowed_tasks(tmp_path: Path) -> None:
    file = tmp_path / "aigc.yaml"
    file.write_text("models:\n  router:\n    rules:\n      - {use: 'openai:gpt-4o-mini', task: [marketng]}\n")
    with pytest.raises(ConfigError) as info:
        models_config(file, env={})
    assert "models.router.rules.0.task: unknown task 'marketng'; did you mean marketing?" in str(info.value)
    assert "(tasks: writing, marketing, education, other)" in str(info.value)
    assert ModelsConfig.model_validate({"router": {"rules": [{"use": "x:y", "task": ["education"]}]}})


def test_a_control_character_in_aigc_yaml_is_one_error_with_file_and_line(tmp_path: Path) -> None:
    file = tmp_path / "aigc.yaml"
    file.write_text("models:\n  openai:\n    model: 'gpt\x07x'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        models_config(file, env={})
    assert str(info.value).startswith(f"{file}:3: malformed YAML: the control character U+0007 is not allowed")
    with pytest.raises(InvalidConfig, match=r"aigc.yaml:3: malformed YAML"):
        load_config(file)


def test_a_path_like_hf_id_says_the_folder_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as info:
        ModelRegistry().create("hf:./does-not-exist")
    assert f"{Path.cwd() / 'does-not-exist'} does not exist" in str(info.value)
    assert "huggingface-cli download" not in str(info.value) and "hf:/path/to/model" in str(info.value)
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelUnavailable, match="is a file, not a model folder"):
        ModelRegistry().create(f"hf:{tmp_path / 'weights.bin'}")


def _core_install(code: str, missing: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` where importing ``missing`` fails, as in an install without the local extra."""
    prelude = f"import sys; sys.modules[{missing!r}] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.parametrize("missing", ["transformers", "torch", "huggingface_hub"])
def test_a_core_install_given_an_hf_model_names_the_extra(tiny_model_path: Path, missing: str) -> None:
    code = (
        "from aigc_app.cli import run\n"
        f"sys.exit(run(['generate', 'writing/rewrite', '--example', '--model', 'hf:{tiny_model_path}']))"
    )
    done = _core_install(code, missing)
    assert done.returncode == 1
    assert "needs the local extra" in done.stderr and "pip install 'aigc[local]'" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_core_install_loading_a_chat_transformers_names_the_extra(tiny_model_path: Path) -> None:
    code = (
        "from chains import ChatTransformers, ModelUnavailable\n"
        "try:\n"
        f"    ChatTransformers(model={str(tiny_model_path)!r}).invoke('hi')\n"
        "except ModelUnavailable as exc:\n"
        "    print(exc)\n"
    )
    done = _core_install(code, "torch")
    assert "needs the local extra" in done.stdout and "pip install 'aigc[local]'" in done.stdout, done.stderr


def test_the_tiny_model_module_in_a_core_install_is_one_line(tmp_path: Path) -> None:
    code = (
        f"sys.argv = ['tiny_model', {str(tmp_path / 'tiny')!r}]\n"
        "import runpy; runpy.run_module('chains.testing.tiny_model', run_name='__main__')"
    )
    done = _core_install(code, "torch")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "python -m chains.testing.tiny_model needs the local extra (import of torch halted; None in sys.modules): "
        "pip install 'aigc[local]'"
    ]


_LOAD = """
import sys
from chains import ChatTransformers
ChatTransformers(model=sys.argv[1], max_tokens=2, show_progress=sys.argv[2] == "1").invoke("hi")
"""


def test_loading_a_local_model_writes_nothing_to_the_terminal(tiny_model_path: Path, capfd) -> None:
    # A fresh process without the quieting variables the test suite sets for itself: what a user's terminal sees.
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")}
    capfd.readouterr()
    subprocess.run([sys.executable, "-c", _LOAD, str(tiny_model_path), "0"], env=env, cwd=ROOT, check=True)
    assert capfd.readouterr().err == ""
    subprocess.run([sys.executable, "-c", _LOAD, str(tiny_model_path), "1"], env=env, cwd=ROOT, check=True)
    assert "Loading weights" in capfd.readouterr().err  # asked for, the progress bar is there
