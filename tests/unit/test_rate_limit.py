"""The enqueue token bucket (semantics.md §8.3), driven by an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from pgqrs.errors import RateLimitedError, ValidationError
from pgqrs.rate_limit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_starts_full_with_capacity_equal_to_rate(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=2, burst=None, clock=clock)
    assert bucket.capacity == 2
    assert bucket.rate == 2
    bucket.take(2)
    with pytest.raises(RateLimitedError) as info:
        bucket.take(1)
    assert str(info.value) == "Rate limit exceeded, retry after 0.5s"
    assert info.value.retry_after == pytest.approx(0.5)
    assert isinstance(info.value.retry_after, float)


def test_burst_sets_capacity(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1, burst=5, clock=clock)
    bucket.take(3)
    bucket.take(2)
    with pytest.raises(RateLimitedError):
        bucket.take(1)


def test_retry_after_is_rounded_in_the_message_only(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=3, burst=None, clock=clock)
    bucket.take(3)
    with pytest.raises(RateLimitedError) as info:
        bucket.take(1)
    assert str(info.value) == "Rate limit exceeded, retry after 0.333s"
    assert info.value.retry_after == pytest.approx(1 / 3)


def test_retry_after_counts_partial_tokens(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=10, burst=10, clock=clock)
    bucket.take(10)
    clock.advance(0.25)  # 2.5 tokens back
    with pytest.raises(RateLimitedError) as info:
        bucket.take(4)
    assert info.value.retry_after == pytest.approx(0.15)
    assert str(info.value) == "Rate limit exceeded, retry after 0.15s"


def test_refill_is_continuous_and_capped(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=4, burst=8, clock=clock)
    bucket.take(8)
    clock.advance(0.5)
    assert bucket.available() == pytest.approx(2)
    bucket.take(2)
    clock.advance(3600)
    assert bucket.available() == pytest.approx(8)
    bucket.take(8)
    with pytest.raises(RateLimitedError):
        bucket.take(1)


def test_retrying_after_retry_after_succeeds(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=3, burst=None, clock=clock)
    bucket.take(3)
    with pytest.raises(RateLimitedError) as info:
        bucket.take(1)
    assert info.value.retry_after is not None
    clock.advance(info.value.retry_after)
    bucket.take(1)


def test_a_refused_call_takes_no_tokens(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=10, burst=10, clock=clock)
    bucket.take(7)
    with pytest.raises(RateLimitedError):
        bucket.take(5)
    bucket.take(3)


def test_batch_larger_than_the_burst_is_a_validation_error(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=100, burst=5, clock=clock)
    with pytest.raises(ValidationError) as info:
        bucket.take(6)
    assert str(info.value) == (
        "Validation failed: batch of 6 messages exceeds the enqueue burst limit of 5"
    )
    bucket.take(5)  # nothing was taken by the refused call


def test_burst_defaults_to_rate_for_the_batch_limit(clock: FakeClock) -> None:
    with pytest.raises(ValidationError, match=r"burst limit of 3$"):
        TokenBucket(rate=3, burst=None, clock=clock).take(4)


def test_zero_tokens_is_a_no_op(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    bucket.take(1)
    bucket.take(0)


def test_a_clock_stepping_back_neither_drains_nor_double_counts(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    bucket.take(2)
    clock.advance(-10)
    assert bucket.available() == 0
    clock.advance(11)  # one second past the last reading
    assert bucket.available() == pytest.approx(1)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=None)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0)
    with pytest.raises(TypeError):
        TokenBucket(rate=1.5, burst=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=None).take(-1)


def test_default_clock_is_monotonic() -> None:
    bucket = TokenBucket(rate=1000, burst=2)
    bucket.take(2)
    with pytest.raises(RateLimitedError):
        bucket.take(2)


async def test_check_and_take_is_atomic_between_coroutines(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=5, burst=5, clock=clock)

    async def attempt() -> bool:
        await asyncio.sleep(0)
        try:
            bucket.take(1)
        except RateLimitedError:
            return False
        return True

    results = await asyncio.gather(*(attempt() for _ in range(20)))
    assert results.count(True) == 5
