"""`aigc serve` as a real subprocess (starts, prints its URL and models, answers, stops on SIGINT) and its refusals
(a non-loopback host without a key, a bad config) as one red line each."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
import yaml

from aigc_app.cli import run
from aigc_app.server.testing import free_port


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a backgrounded test run ignores SIGINT; children inherit it


def _config(folder: Path, tiny: Path, **serve: object) -> Path:
    data: dict = {"models": {"local": {"model": f"hf:{tiny}"}}}
    if serve:
        data["serve"] = serve
    path = folder / "aigc.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_serve_starts_answers_and_stops_on_sigint(tmp_path: Path, openai_server) -> None:
    """Served: an openai: model on the scripted server (no local weights to load: the process starts in seconds)."""
    config = tmp_path / "aigc.yaml"
    models = {"openai": {"base_url": openai_server.base_url, "model": "gpt-test"}, "router": {"fallbacks": []}}
    config.write_text(yaml.safe_dump({"models": models, "serve": {"max_queue": 8}}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AIGC_"))}  # models: the file alone
    env.update({"OMP_NUM_THREADS": "1", "AIGC_SERVE_API_KEY": "sk-cli-key"})
    args = [sys.executable, "-m", "aigc_app.cli", "serve", "--config", str(config), "--port", str(port)]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    process = subprocess.Popen(args, cwd=tmp_path, env=env, preexec_fn=_default_sigint, **pipes)
    try:
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/v1" in line and "API key required" in line, line
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-cli-key", max_retries=0)
        for _ in range(100):  # the line is printed just before uvicorn binds
            try:
                ids = [m.id for m in client.models.list()]
                break
            except openai.APIConnectionError:
                time.sleep(0.1)
        assert ids == ["openai:gpt-test", "aigc:router"]
        openai_server.clear()
        openai_server.script("Hello through aigc serve")
        answer = client.chat.completions.create(model="aigc:router", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "Hello through aigc serve"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        err = process.stderr.read()
        assert "model openai:gpt-test" in err
        assert "Traceback" not in err and "sk-cli-key" not in err
    finally:
        openai_server.clear()
        if process.poll() is None:
            process.kill()
            process.wait()


def test_non_loopback_host_without_a_key_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIGC_SERVE_API_KEY", raising=False)
    config = _config(tmp_path, tmp_path / "model")  # refused before any model is looked at
    assert run(["serve", "--config", str(config), "--host", "0.0.0.0"]) == 1
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0 without an API key" in err and "--api-key" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3


def test_bad_config_is_one_red_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIGC_SERVE_API_KEY", raising=False)
    bad_models = tmp_path / "models.yaml"
    bad_models.write_text("models:\n  lokal: {model: hf:./x}\n")
    assert run(["serve", "--config", str(bad_models), "--port", str(free_port())]) == 1
    err = capsys.readouterr().err
    assert "models.lokal: unknown key; did you mean local?" in err and "Traceback" not in err
    bad_serve = tmp_path / "serve.yaml"
    bad_serve.write_text("serve:\n  api_key: sk-hidden-value\n  max_queue: -3\n  prot: 1\n")
    assert run(["serve", "--config", str(bad_serve)]) == 1
    err = capsys.readouterr().err
    assert "serve.max_queue" in err and "serve.prot" in err and "sk-hidden-value" not in err
    assert run(["serve", "--config", str(bad_models), "--max-queue", "0"]) == 1
    err = capsys.readouterr().err
    assert "--max-queue: Input should be greater than 0" in err and "serve.max_queue" not in err  # the flag
    assert run(["serve", "--config", str(bad_models), "--prompts-dir", str(tmp_path / "nowhere")]) == 1
    assert f"--prompts-dir: {tmp_path / 'nowhere'} is not a folder" in capsys.readouterr().err  # not ignored


def test_a_port_in_use_is_one_line_before_any_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.delenv("AIGC_SERVE_API_KEY", raising=False)
    config = _config(tmp_path, tmp_path / "no-model-here")  # never looked at: the bind fails first
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert run(["serve", "--config", str(config), "--port", str(port)]) == 1
    captured = capsys.readouterr()
    assert f"127.0.0.1:{port} is in use: pass another --port" in captured.err
    assert "Traceback" not in captured.err and "no-model-here" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "aigc serve on" not in captured.out
