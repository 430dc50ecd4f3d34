"""Evaluator speed: the offline suite (fluency + adherence + safety, no judge) on 150-word outputs.

Models load once (warm-up), then the suite scores every sample batched per evaluator; samples per second.
"""

from __future__ import annotations

import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

SAMPLES = 400
SENTENCES = [
    "Our new trail shoe keeps its grip on wet rock and loose gravel.",
    "The wide toe box leaves room for feet that swell on long runs.",
    "Students compare the water cycle with a kettle boiling in a kitchen.",
    "Each question checks one idea and explains why the other answers are wrong.",
    "The press release names the date, the place and the people involved.",
    "A short dialogue shows how to order coffee and ask for the bill politely.",
    "Reviewers noticed that the jacket packs into its own pocket.",
    "The lesson ends with a quick exit ticket so the teacher can see who needs help.",
    "Customers can return the product within sixty days for any reason.",
    "The article explains the main keyword early and answers common questions at the end.",
]
REFS = ["writing/product_description", "marketing/social_post", "education/quiz", "writing/press_release"]


def samples(n: int) -> list:
    """n samples of about 150 words each, spread over prompts with different expect blocks."""
    from evaluators.base import Sample
    from prompts import PromptRegistry

    registry = PromptRegistry()
    rng = random.Random(0)
    prompts = [registry.get(ref) for ref in REFS]
    out = []
    for i in range(n):
        prompt = prompts[i % len(prompts)]
        inputs = {k: s.example for k, s in prompt.meta.inputs.items() if s.example is not None}
        text = " ".join(rng.choice(SENTENCES) for _ in range(12))
        out.append(Sample.from_prompt(prompt, inputs, text))
    return out


def run() -> list[tuple[str, float, str, str]]:
    """All figures as (metric, value, unit, goal)."""
    from evaluators.suite import load_suite

    suite = load_suite("offline")
    batch = samples(SAMPLES)
    words = sum(len(s.output.split()) for s in batch) / len(batch)
    suite.score(batch[:32])  # warm-up: load models, compile patterns
    start = time.perf_counter()
    scores = suite.score(batch)
    elapsed = time.perf_counter() - start
    errors = sum(1 for row in scores for s in row if s.error)
    assert errors == 0, f"{errors} evaluator errors"
    per_evaluator = len(scores[0])
    return [
        (
            f"offline suite ({per_evaluator} evaluators), {words:.0f}-word outputs",
            SAMPLES / elapsed,
            "samples/s",
            ">= 200",
        ),
    ]
