"""Evaluator speed: the offline suite (fluency + adherence + safety, no judge) on 150-word outputs, and SLOR
under SmolLM2 (when it is in the model cache) batched and one sample at a time.

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


SLOR_SAMPLES = 48


def slor_rows(n: int = SLOR_SAMPLES) -> list[tuple[str, float, str, str]]:
    """SLOR samples/s under SmolLM2 on one thread (as suites score), 12-word sentences and 150-word outputs,
    batched (score_batch) and one by one (score); nothing when SmolLM2 is not in the model cache."""
    from evaluators.base import Sample
    from evaluators.fluency.slor import SlorEvaluator
    from evaluators.threads import DEFAULT_THREADS, limit_threads

    scorer = SlorEvaluator()
    if scorer.model is None:
        return []
    rng = random.Random(1)
    inputs = {
        "sentences": [Sample(output=rng.choice(SENTENCES)) for _ in range(n)],
        "150-word outputs": [Sample(output=" ".join(rng.choice(SENTENCES) for _ in range(12))) for _ in range(n)],
    }
    rows = []
    with limit_threads(DEFAULT_THREADS):
        scorer.score_batch(inputs["sentences"][:4])  # warm-up: load the model and the unigram table
        for kind, batch in inputs.items():
            start = time.perf_counter()
            scorer.score_batch(batch)
            batched = n / (time.perf_counter() - start)
            start = time.perf_counter()
            for sample in batch[: n // 4]:
                scorer.score(sample)
            alone = (n // 4) / (time.perf_counter() - start)
            rows.append((f"slor (SmolLM2-135M, 1 thread), {kind}: batched", batched, "samples/s", ""))
            rows.append((f"slor (SmolLM2-135M, 1 thread), {kind}: one by one", alone, "samples/s", ""))
            rows.append((f"slor, {kind}: batched / one by one", batched / alone, "x", ""))
    return rows


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
        *slor_rows(),
    ]
