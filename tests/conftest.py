"""Shared fixtures: real prompt libraries in temp folders, a tiny transformers model built offline."""

from __future__ import annotations

import os

# Nothing may come from the Hugging Face hub in tests: fail at once instead of waiting on a network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import textwrap
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prompts import PromptRegistry

AD_COPY = """\
---
name: ad_copy
version: 1.0.0
task: marketing
description: Ad copy variants.
inputs:
  brand: {type: string, max_length: 40, example: Acme}
  n: {type: integer, default: 3}
  tone: {type: string, enum: [formal, playful], default: formal}
  keywords: {type: list, items: string, default: [], max_length: 5}
changelog: First version.
---
{% import "_partials/fmt.jinja" as fmt %}
{% message "system" %}
You write ads. {% include "_partials/brand.jinja" %}
{% endmessage %}
{% message "user" %}
Write {{ n }} {{ tone }} ads.
{% if keywords %}
Use: {{ keywords | join(", ") }}.
{% endif %}
{{ fmt.json_only(n) }}
{% endmessage %}
"""

PARTIALS = {
    "brand.jinja": "Never make claims you cannot back up. Brand: {{ brand }}.\n",
    "fmt.jinja": "{% macro json_only(n) %}Return JSON only, with exactly {{ n }} items.{% endmacro %}\n",
}

PLAIN = """\
---
name: haiku
version: 1.0.0
task: writing
description: A haiku.
inputs:
  topic: {type: string}
changelog: First version.
---
Write a haiku about {{ topic }}.
"""


def write_library(root: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: text}`` under ``root`` and return root."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if text.startswith("\n") else text, encoding="utf-8")
    return root


@pytest.fixture
def make_library(tmp_path: Path) -> Callable[..., Path]:
    """Build a library root from files; the default holds ad_copy 1.0.0, haiku 1.0.0 and two partials."""

    def build(files: dict[str, str] | None = None, *, name: str = "lib", defaults: bool = True) -> Path:
        base: dict[str, str] = {}
        if defaults:
            base = {"marketing/ad_copy/1.0.0.jinja": AD_COPY, "writing/haiku/1.0.0.jinja": PLAIN}
            base.update({f"_partials/{k}": v for k, v in PARTIALS.items()})
        base.update(files or {})
        return write_library(tmp_path / name, base)

    return build


@pytest.fixture
def registry(make_library: Callable[..., Path]) -> PromptRegistry:
    """A registry over the default test library only (no built-in prompts)."""
    return PromptRegistry([make_library()], include_builtin=False)


def version_file(
    name: str = "haiku",
    version: str = "1.0.0",
    task: str = "writing",
    *,
    inputs: str = "",
    body: str = "Write about {{ topic }}.",
    extra: str = "",
) -> str:
    """A version file with the given parts; inputs default to one string input ``topic``."""
    inputs = inputs or "inputs:\n  topic: {type: string}\n"
    return (
        f"---\nname: {name}\nversion: {version}\ntask: {task}\ndescription: Test prompt.\n{inputs}{extra}"
        f"changelog: Test.\n---\n{body}\n"
    )


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~360K-parameter Llama with a trained BPE tokenizer and a chat template, saved with save_pretrained."""
    from chains.testing.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llm")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The real SmolLM2-135M-Instruct folder from aigc's model cache (``aigc models pull smollm2``).

    Absent from the cache, the test is skipped, or fails where ``AIGC_REQUIRE_REAL_MODEL=1`` (CI pulls it first).
    """
    from chains.model_store import cached_path

    path = cached_path("smollm2-135m-instruct")
    if path is None:
        message = "SmolLM2 is not in the model cache: run `aigc models pull smollm2`"
        if os.environ.get("AIGC_REQUIRE_REAL_MODEL") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def aigc_server(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory, serve_hermetic):
    """`aigc serve` on a free 127.0.0.1 port (no API key) serving the tiny model as ``hf:<tiny_model_path>`` and
    ``aigc:router`` (default: the tiny model); a temp store and suites folder. Yields the RunningServer
    (``.base_url``); the served model id is ``f"hf:{tiny_model_path}"``. The models config is read at start with
    the OpenAI and AIGC_* environment variables cleared, so later monkeypatches do not change what it serves."""
    import yaml

    from aigc_app.server import ServeSettings

    folder = tmp_path_factory.mktemp("aigc-serve")
    model = f"hf:{tiny_model_path}"
    config = folder / "aigc.yaml"
    config.write_text(yaml.safe_dump({"models": {"local": {"model": model}, "router": {"default": model}}}))
    settings = ServeSettings(config=config, port=0, store=folder / "results.db", suites_dir=folder / "suites")
    with serve_hermetic(settings) as server:
        yield server


@pytest.fixture(scope="session")
def serve_hermetic():
    """``running_server`` as a context manager factory whose models config is read at start (by a first request)
    without the OpenAI and AIGC_* environment variables: neither a developer's OPENAI_API_KEY nor a later
    monkeypatch changes which models the server serves."""
    import contextlib

    import httpx

    from aigc_app.server.testing import running_server

    @contextlib.contextmanager
    def start(settings):
        with running_server(settings) as server, pytest.MonkeyPatch.context() as env:
            for variable in (
                "OPENAI_API_KEY",
                "OPENAI_BASE_URL",
                "AIGC_OPENAI_MODEL",
                "AIGC_LOCAL_MODEL",
                "AIGC_MODEL",
            ):
                env.delenv(variable, raising=False)
            key = settings.api_key.get_secret_value() if settings.api_key else "unused"
            headers = {"Authorization": f"Bearer {key}"}
            httpx.get(server.base_url + "/v1/models", headers=headers, timeout=30).raise_for_status()
            env.undo()
            yield server

    return start


@pytest.fixture(scope="session")
def openai_server():
    """A real HTTP server on 127.0.0.1 speaking the OpenAI API, with scripted answers and faults."""
    from chains.testing import OpenAIServer

    with OpenAIServer(models=("gpt-test", "gpt-big")) as server:
        yield server


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    """A real ``chroma run`` server on 127.0.0.1 (free port, temp folder), stopped at the end; yields its URL."""
    import shutil
    import socket
    import subprocess
    import sys
    import time

    import httpx

    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if chroma is None:
        pytest.fail("the `chroma` command (installed with chromadb, the rag extra) is missing")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("chroma-server")
    args = [chroma, "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
            if process.poll() is not None:
                pytest.fail(f"chroma run exited: {process.stderr.read().decode()[-1000:] if process.stderr else ''}")
        else:
            pytest.fail(f"chroma run did not answer on {url} within 30 s")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def pytest_collection_modifyitems(items: Iterable[pytest.Item]) -> None:
    """Skip standard-suite tests a class lists in ``content_skips`` ({test name: reason}).

    langchain-tests forbids overriding its test methods, so the few tests that check answer content a scripted or
    random-weight model cannot produce are skipped here, each with the reason written beside it.
    """
    for item in items:
        skips = getattr(getattr(item, "cls", None), "content_skips", None)
        reason = skips.get(item.name.split("[", 1)[0]) if skips else None
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


CHROMIUM = Path("/usr/bin/chromium")


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -c constraints.txt playwright)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (never `playwright install`); one per test module. Skips
    when it is missing, unless AIGC_REQUIRE_BROWSER=1 (CI), where that is a failure."""
    reason = _browser_missing()
    if reason:
        if os.environ.get("AIGC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"AIGC_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()
