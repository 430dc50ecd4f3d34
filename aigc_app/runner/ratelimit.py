"""How fast one backend is called: an adaptive concurrency limit (halved on 429, grown back on success) and token
buckets for requests and tokens per minute, from ``models.router.rate_limits`` in the config.

    limit = limit_for(config, "openai:gpt-4o-mini", concurrency=16)     # in one process (the local executor)
    async with limit.slot(tokens=700) as epoch:                          # a place, then paced by the buckets
        ...; limit.succeeded()                                           # or limit.rate_limited(epoch)

The Ray executor keeps the same state in one actor per backend (:mod:`aigc_app.runner.ray_executor`), so every
worker of a cluster draws from one bucket and backs off together.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chains.config import ModelsConfig, RateLimit

__all__ = ["AdaptiveLimit", "PacedLimit", "TokenBucket", "call_tokens", "limit_for"]


class AdaptiveLimit:
    """At most ``limit`` calls in flight: halved on a rate limit (once per wave of calls), one more after each
    ``limit`` successes in a row, never above ``maximum``."""

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.lowest = self.maximum
        self.halvings = 0
        self.active = 0
        self._epoch = 0
        self._streak = 0
        self._cond = asyncio.Condition()

    @property
    def epoch(self) -> int:
        """Which wave of calls is current: :meth:`rate_limited` halves once per epoch."""
        return self._epoch

    async def acquire(self) -> int:
        """Wait for one of the ``limit`` places; returns the epoch to pass to :meth:`rate_limited`."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.active < self.limit)
            self.active += 1
        return self._epoch

    async def release(self) -> None:
        """Give a place back."""
        async with self._cond:
            self.active -= 1
            self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def slot(self, tokens: int = 0) -> AsyncIterator[int]:
        """Hold one of the ``limit`` places; yields the epoch to pass to :meth:`rate_limited`. ``tokens`` (the
        call's estimated size) weighs nothing here: :class:`PacedLimit` paces by it."""
        epoch = await self.acquire()
        try:
            yield epoch
        finally:
            await self.release()

    def rate_limited(self, epoch: int) -> bool:
        """A call started in ``epoch`` was refused with 429: halve, unless a later refusal already did."""
        self._streak = 0
        if epoch != self._epoch:
            return False
        self._epoch += 1
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self.halvings += 1
        return True

    def succeeded(self) -> None:
        """A call succeeded: after ``limit`` in a row, allow one more."""
        self._streak += 1
        if self._streak >= self.limit and self.limit < self.maximum:
            self.limit += 1
            self._streak = 0


class TokenBucket:
    """``per_minute`` units a minute, at most ``capacity`` saved up (default: one second's worth). A reservation
    always succeeds and says how long to wait before using it, so waiting callers keep their order."""

    def __init__(self, per_minute: float, capacity: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = capacity if capacity is not None else max(1.0, self.rate)
        self.level = self.capacity
        self._clock = clock
        self._stamp = clock()

    def reserve(self, amount: float = 1.0) -> float:
        """Take ``amount`` now (the level may go below zero); returns the seconds until it is covered."""
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level / self.rate


class PacedLimit:
    """An :class:`AdaptiveLimit` whose calls are also paced by request and token buckets."""

    def __init__(self, adaptive: AdaptiveLimit, rate: RateLimit) -> None:
        self.adaptive = adaptive
        self.requests = _bucket(rate.requests_per_minute, rate.burst)
        self.tokens = _bucket(rate.tokens_per_minute, None)

    def reserve(self, tokens: int) -> float:
        """Seconds to wait before a call of about ``tokens`` tokens may start (both buckets are charged now)."""
        delays = [b.reserve(n) for b, n in ((self.requests, 1), (self.tokens, tokens)) if b is not None]
        return max(delays, default=0.0)

    @contextlib.asynccontextmanager
    async def slot(self, tokens: int = 0) -> AsyncIterator[int]:
        """A place under the adaptive limit, then the wait the buckets ask for."""
        async with self.adaptive.slot() as epoch:
            delay = self.reserve(tokens)
            if delay > 0:
                await asyncio.sleep(delay)
            yield epoch

    def rate_limited(self, epoch: int) -> bool:
        """See :meth:`AdaptiveLimit.rate_limited`."""
        return self.adaptive.rate_limited(epoch)

    def succeeded(self) -> None:
        """See :meth:`AdaptiveLimit.succeeded`."""
        self.adaptive.succeeded()

    @property
    def halvings(self) -> int:
        """How often the limit was halved."""
        return self.adaptive.halvings

    @property
    def lowest(self) -> int:
        """The lowest concurrency the limit fell to."""
        return self.adaptive.lowest


def _bucket(per_minute: float | None, burst: float | None) -> TokenBucket | None:
    return None if per_minute is None else TokenBucket(per_minute, burst)


def limit_for(config: ModelsConfig, model: str, concurrency: int) -> AdaptiveLimit | PacedLimit:
    """The limit of one model in one process: paced when the config gives it a rate limit."""
    adaptive = AdaptiveLimit(concurrency)
    rate = config.router.rate_limits.get(model)
    return adaptive if rate is None else PacedLimit(adaptive, rate)


def call_tokens(messages_tokens: int, max_tokens: int | None) -> int:
    """What a call counts against tokens per minute before it is made: the prompt plus the completion it may
    produce (what OpenAI's limiter counts too)."""
    return messages_tokens + (max_tokens if max_tokens is not None else 512)
