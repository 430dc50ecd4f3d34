"""The judge tier through the router: logprob-weighted scores, parsed scores, retries, errors, local backend."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from chains import ChatTransformers, ModelsConfig, Router
from chains.testing import Answer
from evaluators.base import Sample, safe_score
from evaluators.judge import EVALUATORS, LLMJudge, expected_digit

TEXT = "The jacket keeps you dry. Its hood fits over a helmet, and the zips work with gloves on."


@pytest.fixture
def router(openai_server) -> Router:
    openai_server.clear()
    config = ModelsConfig.model_validate(
        {"openai": {"base_url": openai_server.base_url, "api_key": "sk-judge", "model": "gpt-test"}}
    )
    return Router.from_config(config)


def test_expected_score_weights_digits_by_probability(router: Router, openai_server) -> None:
    openai_server.script(Answer(content="4", top_logprobs={"4": math.log(0.6), "5": math.log(0.3), "3": math.log(0.1)}))
    score = EVALUATORS["geval_fluency"](model=router).score(Sample(output=TEXT))
    expected = 4 * 0.6 + 5 * 0.3 + 3 * 0.1
    assert score.value == pytest.approx((expected - 1) / 4, abs=1e-6)
    assert (
        score.details["judge_prompt"] == "other/judge_fluency@1.0.0" and len(score.details["judge_prompt_hash"]) == 64
    )
    body = openai_server.requests[-1].body
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["temperature"] == 0
    assert TEXT in body["messages"][-1]["content"]


def test_parsed_score_when_no_logprobs_and_samples_are_averaged(router: Router, openai_server) -> None:
    openai_server.script("Score: 2", "5")
    judge = LLMJudge("geval_fluency", "other/judge_fluency@1.0.0", router, n_samples=2)
    assert expected_digit(None, "Score: 2") == 2.0
    score = judge.score(Sample(output=TEXT))
    assert score.value == pytest.approx(((2 + 5) / 2 - 1) / 4)
    assert [r.body["temperature"] for r in openai_server.requests] == [1.0, 1.0]


def test_unparseable_output_is_retried_then_recorded_as_an_error(router: Router, openai_server) -> None:
    openai_server.script("I think it is quite good.", "Fluent overall.")
    score = EVALUATORS["judge_rubric"](model=router, criteria="Mentions the hood.").score(
        Sample(output=TEXT, messages=[{"role": "user", "content": "Describe the jacket."}])
    )
    assert score.error is not None and "unparseable judge output after 2 tries" in score.error
    assert len(openai_server.requests) == 2
    assert "Mentions the hood." in openai_server.requests[0].body["messages"][-1]["content"]


def test_judge_that_raises_becomes_a_score_with_the_error(router: Router, openai_server) -> None:
    from chains.testing import Fault

    openai_server.script(Fault.unauthorized())
    score = safe_score(EVALUATORS["judge_safety"](model=router), Sample(output=TEXT))
    assert score.error is not None and "AuthenticationFailed" in score.error and score.value == 0.0


def test_local_backend_judge_uses_its_logits(tiny_model_path: Path) -> None:
    model = ChatTransformers(model=str(tiny_model_path))
    judge = LLMJudge("geval_fluency", "other/judge_fluency@1.0.0", model, retries=0)
    with pytest.raises(Exception, match="context window"):  # the 1,024-token toy model cannot read the prompt
        judge.score(Sample(output=TEXT * 200))
    answer = model.invoke(judge.prompt.to_langchain(text="Fine."), logprobs=True, top_logprobs=5, max_tokens=2)
    assert len(answer.response_metadata["logprobs"]["content"][0]["top_logprobs"]) == 5
    score = judge.score(Sample(output="Fine."))  # a random model rarely answers with a digit: both outcomes are data
    assert (score.error is None and 0 <= score.value <= 1) or "unparseable" in (score.error or "")


def test_empty_output_is_not_sent_to_the_judge(router: Router, openai_server) -> None:
    score = EVALUATORS["geval_fluency"](model=router).score(Sample(output=""))
    assert score.value == 0.0 and score.reason == "empty output" and not openai_server.requests


def test_moderation_tier_uses_the_endpoint_on_the_openai_route(openai_server) -> None:
    openai_server.clear()
    config = ModelsConfig.model_validate({"openai": {"base_url": openai_server.base_url, "api_key": "sk-judge"}})
    tier = EVALUATORS["moderation_tier"](config=config)
    calm, threat = tier.score_batch([Sample(output="A calm note."), Sample(output="I will kill you.")])
    assert calm.passed and not threat.passed
    assert [r.path for r in openai_server.requests] == ["/v1/moderations"]


def test_moderation_tier_falls_back_to_the_safety_rubric_judge(tiny_model_path: Path, openai_server) -> None:
    openai_server.clear()
    config = ModelsConfig.model_validate({"local": {"model": f"hf:{tiny_model_path}"}})
    tier = EVALUATORS["moderation_tier"](config=config, retries=0)
    assert isinstance(tier, LLMJudge) and tier.prompt.ref == "other/judge_safety@1.0.0"
    score = tier.score(Sample(output="A calm note."))  # the random model answers; digit or not, it is recorded
    assert score.error is None or "unparseable" in score.error
    assert not openai_server.requests


def test_expected_digit_reads_the_first_digit_token_or_the_first_tokens_alternatives() -> None:
    def entry(token: str, logprob: float, **alternatives: float) -> dict:
        top = [{"token": t, "logprob": math.log(p)} for t, p in alternatives.items()]
        return {"token": token, "logprob": logprob, "top_logprobs": top}

    opened_with_a_word = {"content": [entry("The", math.log(0.5), The=0.5, **{"4": 0.3, "2": 0.1})]}
    assert expected_digit(opened_with_a_word, "The text") == pytest.approx((4 * 0.3 + 2 * 0.1) / 0.4)
    labelled = {"content": [entry("Score", -0.1, Score=0.9, **{"1": 0.01}), entry(":", -0.1),
                            entry(" 4", math.log(0.7), **{" 4": 0.7, "5": 0.2})]}  # fmt: skip
    assert expected_digit(labelled, "Score: 4") == pytest.approx((4 * 0.7 + 5 * 0.2) / 0.9)
    assert expected_digit({"content": [entry("Good", -0.1, Good=0.9, Fine=0.1)]}, "Good") is None
    assert expected_digit({"content": [entry("Good", -0.1)]}, "Good, 3 of 5") == 3.0
