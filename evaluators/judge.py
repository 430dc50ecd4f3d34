"""The judge tier: G-Eval-style scoring by a chat model through the router, with judge prompts versioned in
``prompts/`` (``other/judge_fluency``, ``other/judge_rubric``, ``other/judge_safety``).

When the backend returns token log-probabilities (OpenAI's ``top_logprobs``, our local backend's logits; 20
alternatives asked for), the score is the expected value of the digit at the score position, weighted by the
probabilities of the candidate digits (G-Eval, Liu et al. 2023); a small local model that opens its answer with a
word still gives the digits probability at that first token, and those are read. Otherwise the digit is parsed
from the text. On SmolLM2-135M the judges run but barely agree with experts (``CALIBRATION.md``).
``n_samples`` answers are averaged. An unparseable answer is asked again (``retries``), then recorded as a Score
with the error. value maps the 1..5 scale onto 0..1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from evaluators.base import Sample, Score
from evaluators.errors import EvaluatorError

__all__ = ["EVALUATORS", "LLMJudge", "expected_digit"]

TOP_LOGPROBS = 20
"""Alternatives asked for at each answer token (the most OpenAI allows): a small model spreads its probability
over list markers and words ("1.", "The", "Your"), and with only 5 alternatives most score digits went unseen."""
_DIGIT = re.compile(r"(?<!\d)([1-9])(?!\d)")


def _digit_weights(entry: Mapping[str, Any], low: int, high: int) -> dict[int, float]:
    """Probability of each score digit at one answer token: the chosen token and its top_logprobs alternatives."""
    candidates = [(entry.get("token", ""), entry.get("logprob", -math.inf))]
    candidates += [(t["token"], t["logprob"]) for t in entry.get("top_logprobs") or []]
    weights: dict[int, float] = {}
    for token, logprob in candidates:
        token = str(token).strip()
        if token.isdigit() and low <= int(token) <= high:
            weights[int(token)] = max(weights.get(int(token), 0.0), math.exp(logprob))
    return weights


def expected_digit(logprobs: Mapping[str, Any] | None, text: str, low: int = 1, high: int = 5) -> float | None:
    """The probability-weighted score (G-Eval) at the answer's first digit token, from its top_logprobs; when no
    answer token is a digit, at the first token, if its alternatives hold digits (a small model that opens with
    "The" while giving the digits some probability); else the first digit in the text; else None."""
    entries = [e for e in (logprobs or {}).get("content") or [] if str(e.get("token", "")).strip()]
    chosen = [e for e in entries if str(e["token"]).strip().isdigit() and low <= int(str(e["token"]).strip()) <= high]
    for entry in chosen[:1] or entries[:1]:
        weights = _digit_weights(entry, low, high)
        total = sum(weights.values())
        if total > 0:
            return sum(d * p for d, p in weights.items()) / total
    match = _DIGIT.search(text)
    if match and low <= int(match.group(1)) <= high:
        return float(match.group(1))
    return None


class LLMJudge:
    """Scores a sample with a versioned judge prompt and a chat model (a Router, ChatOpenAI, ChatTransformers...)."""

    version = "1"

    def __init__(
        self,
        name: str,
        prompt_ref: str,
        model: Any,
        *,
        n_samples: int = 1,
        retries: int = 1,
        threshold: float | None = None,
        criteria: str | None = None,
        low: int = 1,
        high: int = 5,
    ) -> None:
        from prompts import load_prompt

        self.name = name
        self.prompt = load_prompt(prompt_ref)
        self.model = model
        self.n_samples = n_samples
        self.retries = retries
        self.threshold = threshold
        self.criteria = criteria
        self.low, self.high = low, high

    def _inputs(self, sample: Sample) -> dict[str, Any]:
        text = sample.output[:20000]
        names = set(self.prompt.meta.inputs)
        inputs: dict[str, Any] = {"text": text} if "text" in names else {"response": text}
        if "brief" in names:
            inputs["brief"] = (sample.prompt_text or str(dict(sample.inputs)))[:20000]
        if "criteria" in names and self.criteria:
            inputs["criteria"] = self.criteria
        if "audience" in names and sample.inputs.get("audience"):
            inputs["audience"] = str(sample.inputs["audience"])[:300]
        return inputs

    def _ask(self, messages: list[Any], seed: int) -> tuple[float | None, str]:
        options = self.prompt.meta.model.model_dump(exclude={"id"}, exclude_none=True)
        if self.n_samples > 1:
            options["temperature"] = 1.0
        answer = self.model.invoke(messages, logprobs=True, top_logprobs=TOP_LOGPROBS, seed=seed, **options)
        return expected_digit(answer.response_metadata.get("logprobs"), answer.text, self.low, self.high), answer.text

    def score(self, sample: Sample) -> Score:
        if not sample.output.strip():
            return Score(self.name, 0.0, False, self.threshold, "empty output", evaluator_version=self.version)
        messages = self.prompt.to_langchain(**self._inputs(sample))
        values, answers = [], []
        for index in range(self.n_samples):
            for attempt in range(self.retries + 1):
                value, text = self._ask(messages, seed=index * 100 + attempt)
                answers.append(text)
                if value is not None:
                    values.append(value)
                    break
        if not values:
            return Score(
                self.name,
                0.0,
                None,
                self.threshold,
                "the judge's answers held no score",
                {"answers": answers[:5]},
                self.version,
                error=f"unparseable judge output after {self.retries + 1} tries: {answers[-1][:80]!r}",
            )
        mean = sum(values) / len(values)
        value = (mean - self.low) / (self.high - self.low)
        passed = None if self.threshold is None else value >= self.threshold
        details = {
            "judge_prompt": self.prompt.ref,
            "judge_prompt_hash": self.prompt.hash,
            "scores": values,
            "samples": self.n_samples,
        }
        return Score(
            self.name,
            value,
            passed,
            self.threshold,
            f"judge score {mean:.2f} on {self.low}-{self.high}",
            details,
            self.version,
        )


_NO_MODEL_HINT = (
    "set models.router.default, models.openai or models.local in the project config (aigc.yaml, or the file given "
    "with --config), or the environment: OPENAI_API_KEY (with OPENAI_BASE_URL for a compatible server), "
    "AIGC_LOCAL_MODEL=hf:<folder>, or AIGC_MODEL=<provider:model>"
)
"""What makes a model available to the judge tier (``aigc evaluators score`` has no ``--model`` option)."""


def _factory(name: str, prompt_ref: str) -> Any:
    def build(model: Any = None, model_id: str | None = None, config: Any = None, **params: Any) -> LLMJudge:
        if model is None:
            from chains import ModelsConfig, Router
            from chains.errors import UnknownModel

            config = config or ModelsConfig()
            if model_id:
                config.router.default = model_id
            try:
                model = Router.from_config(config)
            except UnknownModel as exc:
                if exc.model is not None:  # a configured id that names no backend: the router's message is exact
                    raise
                raise EvaluatorError(f"evaluator {name!r} judges with a chat model, and none is configured: "
                                     f"{_NO_MODEL_HINT}") from None  # fmt: skip
        return LLMJudge(name, params.pop("prompt_ref", prompt_ref), model, **params)

    return build


def moderation_tier(model: Any = None, config: Any = None, **params: Any) -> Any:
    """The model tier of safety: OpenAI's moderation endpoint when the route is OpenAI (credentials or a
    compatible server configured and no other model given), else the judge's safety rubric through the router."""
    from chains import ModelsConfig

    config = config or ModelsConfig()
    if (
        model is None
        and config.openai.configured
        and config.router.default in ("auto", f"openai:{config.openai.model}")
    ):
        from evaluators.safety import ModerationEvaluator

        return ModerationEvaluator(config.openai, **params)
    return _factory("judge_safety", "other/judge_safety@^1")(model=model, config=config, **params)


EVALUATORS = {
    "moderation_tier": moderation_tier,
    "geval_fluency": _factory("geval_fluency", "other/judge_fluency@^1"),
    "judge_rubric": _factory("judge_rubric", "other/judge_rubric@^1"),
    "judge_safety": _factory("judge_safety", "other/judge_safety@^1"),
}
