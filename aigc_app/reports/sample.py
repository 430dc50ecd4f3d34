"""A realistic synthetic run (several variants and evaluators, repeats, errors, advisory and not-applicable
scores, hostile text) for demos, report tests and benchmarks: ``sample_results(20_000)``."""

from __future__ import annotations

import random
import zlib

from aigc_app.results import CaseResult, RunInfo, RunResults, ScoreRow

__all__ = ["sample_results"]

_BRANDS = ["Acme", "Northwind", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Soylent", "Tyrell"]
_PRODUCTS = ["trail shoes", "oat milk", "a budgeting app", "noise-cancelling headphones", "a bike lock", "solar lamps"]
_PROMPTS = [("marketing/ad_copy", "1.0.0"), ("marketing/ad_copy", "1.1.0")]
_MODELS = ["openai:gpt-4o-mini", "hf:SmolLM2-135M-Instruct"]
_EVALUATORS = [  # name, threshold, advisory
    ("fluency", 0.6, False),
    ("adherence", 0.7, False),
    ("toxicity", 0.5, False),
    ("readability", 0.5, True),
    ("pii", 0.5, False),
]


def _output(rng: random.Random, brand: str, product: str) -> str:
    lines = [f"{brand} {product}: built for the way you move.", "Try it free for 30 days.", "Made to last."]
    if rng.random() < 0.02:
        lines.append("<script>alert('x')</script> </script><b>bold</b> & \"quotes\" | pipe")
    return "\n".join(rng.sample(lines, k=rng.randint(1, 3))) * rng.randint(1, 4)


def _score(rng: random.Random, name: str, threshold: float, advisory: bool, quality: float) -> ScoreRow:
    if name == "pii" and rng.random() < 0.3:
        return ScoreRow(name, "1", 1.0, None, threshold, "no contact details expected here", applicable=False)
    if rng.random() < 0.005:
        return ScoreRow(name, "1", 0.0, None, threshold, "", error="EvaluatorError: model file missing")
    value = min(1.0, max(0.0, rng.gauss(quality, 0.15)))
    passed = value >= threshold
    reason = "ok" if passed else f"{name} {value:.2f} < {threshold}: the copy drifts from the brief"
    return ScoreRow(name, "2" if name == "toxicity" else "1", value, passed, threshold, reason, advisory=advisory)


def _case(rng: random.Random, run_id: str, index: int, prompt: tuple[str, str], model: str, repeat: int) -> CaseResult:
    brand, product = _BRANDS[index % len(_BRANDS)], _PRODUCTS[index % len(_PRODUCTS)]
    inputs = {"brand": brand, "product": product, "n": 3, "tone": "playful" if index % 2 else "formal"}
    messages = (
        {"role": "system", "content": f"You write ads. Never make claims you cannot back up. Brand: {brand}."},
        {"role": "user", "content": f"Write 3 {inputs['tone']} ads for {product}. Return JSON only."},
    )
    quality = 0.8 if model.startswith("openai") else 0.55
    quality += 0.05 if prompt[1] == "1.1.0" else 0.0
    failed = rng.random() < 0.01
    scores = () if failed else tuple(_score(rng, *e, quality) for e in _EVALUATORS)
    if not failed and rng.random() < 0.05:  # a judge scored twice: rescores never gate
        scores += (ScoreRow("adherence", "1", rng.random(), True, 0.7, "rescored", rescore=1),)
    return CaseResult(
        run_id=run_id,
        case_id=f"case-{index:05d}",
        prompt_name=prompt[0],
        prompt_version=prompt[1],
        prompt_hash=f"sha256:{zlib.crc32('@'.join(prompt).encode()):08x}",
        model=model,
        sample_index=repeat,
        params={"temperature": 0.7, "max_tokens": 256},
        seed=1234 + repeat,
        inputs=inputs,
        messages=messages,
        tags=("marketing", "a/b"),
        output="" if failed else _output(rng, brand, product),
        error="RateLimited: 429 from openai after 3 retries" if failed else None,
        latency_s=rng.lognormvariate(-0.5, 0.5),
        tokens_in=60,
        tokens_out=rng.randint(20, 200),
        cost_usd=0.0001 if model.startswith("openai") else None,
        cached=rng.random() < 0.1,
        backend=model.split(":")[0],
        scores=scores,
        key=f"g{index}-{repeat}",
        created_at=1_796_130_000.0 + index,
    )


def sample_results(
    cases: int = 200, *, repeats: int = 2, seed: int = 7, run_id: str = "r-20261201-demo01"
) -> RunResults:
    """About ``cases`` case rows spread over 2 prompt versions x 2 models x ``repeats`` repeats."""
    rng = random.Random(seed)
    per_case = len(_PROMPTS) * len(_MODELS) * repeats
    rows = [
        _case(rng, run_id, index, prompt, model, repeat)
        for index in range(max(1, cases // per_case))
        for prompt in _PROMPTS
        for model in _MODELS
        for repeat in range(repeats)
    ]
    info = RunInfo(
        run_id=run_id,
        suite="marketing-ab",
        status="finished",
        started_at=1_796_130_000.0,
        finished_at=1_796_130_000.0 + 600,
        suite_path="aigc_app/runner/suites/marketing-ab.yaml",
        prompts=tuple(f"{n}@{v}" for n, v in _PROMPTS),
        models=tuple(_MODELS),
        evaluators=tuple(e[0] for e in _EVALUATORS),
        planned=len(rows),
        done=len(rows),
        failed=sum(r.error is not None for r in rows),
        cost_usd=sum(r.cost_usd or 0.0 for r in rows),
        options={"concurrency": 16, "repeat": repeats},
        notes=("hf:SmolLM2-135M-Instruct is a 135M model: expect weak adherence",),
    )
    return RunResults(info=info, cases=rows)
