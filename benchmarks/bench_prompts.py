"""Prompt engine speed: renders per second of a chat prompt with three partials, and CLI cold-start times."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prompts import PromptRegistry

PARTIALS = {
    "brand_safety.jinja": (
        "Follow these brand-safety rules:\n- No claims you cannot back up.\n- No guarantees of results.\n"
        "- Inclusive language. Brand: {{ brand }}.\n"
    ),
    "json_output.jinja": (
        "{% macro json_only(n) %}Return only JSON: an array of exactly {{ n }} objects with keys "
        "headline, body, cta.{% endmacro %}\n"
    ),
    "audience.jinja": "Audience: {{ audience }}{% if tone %}, tone {{ tone }}{% endif %}.\n",
}
PROMPT = """\
---
name: ad_copy
version: 1.0.0
task: marketing
description: Ad copy variants for A/B tests.
inputs:
  brand: {type: string, max_length: 60}
  product: {type: string, max_length: 120}
  audience: {type: string, max_length: 200}
  tone: {type: string, enum: [playful, formal, bold], default: playful}
  variants: {type: integer, default: 3}
  features: {type: list, items: string, max_length: 8, default: []}
changelog: Benchmark prompt.
---
{% import "_partials/json_output.jinja" as fmt %}
{% message "system" %}
You are a senior copywriter.
{% include "_partials/brand_safety.jinja" %}
{% endmessage %}
{% message "user" %}
Product: Trail shoes
{% endmessage %}
{% message "assistant" %}
[{"headline": "Run further", "body": "Grip that holds.", "cta": "Shop now"}]
{% endmessage %}
{% message "user" %}
Write {{ variants }} ad variants for {{ product }}.
{% include "_partials/audience.jinja" %}
{% for feature in features %}
- {{ feature }}
{% endfor %}
{{ fmt.json_only(variants) }}
{% endmessage %}
"""
VALUES = {
    "brand": "Aurora",
    "product": "Aurora running jacket",
    "audience": "urban runners who train before work",
    "tone": "bold",
    "variants": 3,
    "features": ["waterproof", "reflective", "packs into its pocket"],
}


def renders_per_second(seconds: float = 3.0) -> dict[str, float]:
    """Render the benchmark prompt repeatedly for ``seconds`` on one thread."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, text in PARTIALS.items():
            (root / "_partials").mkdir(exist_ok=True)
            (root / "_partials" / name).write_text(text)
        (root / "marketing/ad_copy").mkdir(parents=True)
        (root / "marketing/ad_copy/1.0.0.jinja").write_text(PROMPT)
        prompt = PromptRegistry([root], include_builtin=False).get("ad_copy@1.0.0")
        assert len(prompt.partials) == 3 and len(prompt.render(**VALUES)) == 4
        for _ in range(500):
            prompt.render(**VALUES)
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(1000):
                prompt.render(**VALUES)
            count += 1000
        return {"renders_per_s": count / elapsed, "us_per_render": elapsed / count * 1e6}


def cold_start(args: list[str], runs: int = 7) -> float:
    """Median wall time of a fresh ``aigc`` process (seconds)."""
    command = [sys.executable, "-m", "aigc_app.cli", *args]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run() -> list[tuple[str, float, str, str]]:
    """All figures as (metric, value, unit, goal)."""
    speed = renders_per_second()
    return [
        ("render: chat prompt, 3 partials, 4 messages", speed["renders_per_s"], "renders/s", ">= 20000"),
        ("render: time per render", speed["us_per_render"], "us", ""),
        ("cold start: aigc --help", cold_start(["--help"]), "s", "< 0.5"),
        ("cold start: aigc prompts list", cold_start(["prompts", "list"]), "s", "< 0.5"),
    ]
