"""Rate limits: the token bucket's arithmetic, the paced limit in real time, ``router.rate_limits`` in the config
and the local executor keeping a configured requests-per-minute against the local OpenAI server."""

from __future__ import annotations

import asyncio
import time

import pytest

from aigc_app.runner import EvalSuite, RunOptions, run_suite
from aigc_app.runner.ratelimit import AdaptiveLimit, PacedLimit, TokenBucket, limit_for
from aigc_app.store import ResultsStore
from chains import ModelsConfig
from chains.config import RateLimit, validate_config
from chains.errors import InvalidConfig
from chains.testing import Answer, OpenAIServer, default_responder
from tests.test_runner import suite_data, tagline_library


def assert_paced(times: list[float], per_second: float, burst: float, jitter_s: float = 0.25) -> None:
    """What a token bucket promises, seen by the server: between any two requests i < j, at most
    ``burst + per_second * (t_j - t_i)`` started, give or take ``jitter_s`` of delivery (a fresh worker's first
    call also opens its connection, so it can arrive late, together with the next)."""
    times = sorted(times)
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            allowed = burst + per_second * (times[j] - times[i] + jitter_s)
            assert j - i + 1 <= allowed + 1e-9, (i, j, times[j] - times[i], j - i + 1, allowed)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_spends_its_burst_then_spaces_reservations_by_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(600, capacity=3, clock=clock)  # 10 a second
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    waits = [bucket.reserve() for _ in range(3)]
    assert waits == pytest.approx([0.1, 0.2, 0.3])
    clock.now = 10.0  # idle for long: refilled up to its capacity, not beyond
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0] and bucket.reserve() == pytest.approx(0.1)


def test_a_large_reservation_waits_in_proportion_to_its_size() -> None:
    clock = Clock()
    tokens = TokenBucket(6000, clock=clock)  # 100 tokens a second, capacity one second's worth
    assert tokens.capacity == 100 and tokens.reserve(100) == 0
    assert tokens.reserve(250) == pytest.approx(2.5)


async def test_a_paced_limit_holds_its_rate_in_real_time() -> None:
    limit = PacedLimit(AdaptiveLimit(8), RateLimit(requests_per_minute=1200, burst=1))  # 20 a second
    starts: list[float] = []

    async def call() -> None:
        async with limit.slot() as _:
            starts.append(time.monotonic())

    began = time.monotonic()
    await asyncio.gather(*(call() for _ in range(21)))
    span = starts[-1] - starts[0]
    assert 0.95 <= span <= 1.3, span
    assert time.monotonic() - began < 1.5


def test_limit_for_paces_only_the_models_the_config_names() -> None:
    config = ModelsConfig.model_validate({"router": {"rate_limits": {"openai:a": {"tokens_per_minute": 1000}}}})
    assert isinstance(limit_for(config, "openai:a", 4), PacedLimit)
    assert type(limit_for(config, "openai:b", 4)) is AdaptiveLimit


def test_rate_limit_config_errors_name_the_key_and_the_near_name() -> None:
    with pytest.raises(InvalidConfig, match=r"models\.router\.rate_limits\.openai:a\.requests_per_minute: .*greater"):
        validate_config({"router": {"rate_limits": {"openai:a": {"requests_per_minute": 0}}}}, source="aigc.yaml")
    with pytest.raises(InvalidConfig, match=r"unknown key; did you mean requests_per_minute\?"):
        validate_config({"router": {"rate_limits": {"openai:a": {"request_per_minute": 60}}}}, source="aigc.yaml")
    with pytest.raises(InvalidConfig, match=r"models\.router\.rate_limit: unknown key; did you mean rate_limits\?"):
        validate_config({"router": {"rate_limit": {}}}, source="aigc.yaml")


def test_the_local_executor_keeps_a_configured_requests_per_minute(tmp_path) -> None:
    times: list[float] = []

    def stamp(request: dict) -> Answer:
        times.append(time.monotonic())
        return default_responder(request)

    lib = tagline_library(tmp_path / "lib")
    with OpenAIServer(models=("gpt-test",), responder=stamp) as server, ResultsStore(tmp_path / "r.db") as store:
        config = ModelsConfig.model_validate({
            "openai": {"base_url": server.base_url, "api_key": "sk-test"},
            "router": {"rate_limits": {"openai:gpt-test": {"requests_per_minute": 600, "burst": 1}}},
        })  # fmt: skip
        suite = EvalSuite.model_validate(suite_data(16))
        began = time.monotonic()
        results = run_suite(suite, config=config, store=store, options=RunOptions(prompts_dirs=[lib], quiet=True))
        elapsed = time.monotonic() - began
    assert results.info.status == "finished" and len(results.cases) == 16
    assert 1.5 <= elapsed <= 4.0, elapsed  # 10 a second at concurrency 8: the 16th call starts at 1.5 s
    assert_paced(times, 10, 1)
