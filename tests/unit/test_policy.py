"""Retry and backoff formulas (api.md §14, semantics.md §13)."""

from __future__ import annotations

import dataclasses
import random
import time

import pytest

from pgqrs.policy import BackoffStrategy, StepRetryPolicy, message_backoff_seconds
from pgqrs.validation import MAX_DURATION_SECONDS


@pytest.mark.parametrize(
    ("read_ct", "expected"),
    [(-3, 1), (0, 1), (1, 1), (2, 2), (3, 4), (4, 8), (6, 32), (7, 60), (8, 60), (10**12, 60)],
)
def test_message_backoff(read_ct: int, expected: int) -> None:
    assert message_backoff_seconds(read_ct) == expected


def test_fixed() -> None:
    strategy = BackoffStrategy.fixed(5)
    assert strategy.kind == "fixed"
    assert strategy.delay_seconds == 5
    assert strategy.base_seconds is None
    assert strategy.max_seconds is None
    assert [strategy.calculate_delay(a) for a in (0, 1, 50, 10**9)] == [5, 5, 5, 5]
    assert BackoffStrategy.fixed(0).calculate_delay(3) == 0
    assert repr(strategy) == "Fixed { delay_seconds: 5 }"


def test_exponential() -> None:
    strategy = BackoffStrategy.exponential(1, 10)
    assert strategy.kind == "exponential"
    assert strategy.delay_seconds is None
    assert (strategy.base_seconds, strategy.max_seconds) == (1, 10)
    assert [strategy.calculate_delay(a) for a in range(6)] == [1, 2, 4, 8, 10, 10]
    assert BackoffStrategy.exponential(3, 100).calculate_delay(2) == 12
    assert BackoffStrategy.exponential(0, 100).calculate_delay(50) == 0
    assert BackoffStrategy.exponential(5, 0).calculate_delay(0) == 0
    assert BackoffStrategy.exponential(7, 3).calculate_delay(0) == 3
    assert repr(strategy) == "Exponential { base_seconds: 1, max_seconds: 10 }"


def test_huge_attempt_is_capped_without_building_a_huge_number() -> None:
    started = time.perf_counter()
    assert BackoffStrategy.exponential(1, 10).calculate_delay(10**15) == 10
    longest = MAX_DURATION_SECONDS  # the largest cap a backoff may have
    assert BackoffStrategy.exponential(3, longest).calculate_delay(10**15) == longest
    assert BackoffStrategy.exponential(3, longest).calculate_delay(31) == longest
    assert BackoffStrategy.exponential(3, longest).calculate_delay(30) == 3 * 2**30
    assert BackoffStrategy.exponential_with_jitter(1, 3).calculate_delay(10**15) == 3
    assert time.perf_counter() - started < 1


def test_jitter_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    strategy = BackoffStrategy.exponential_with_jitter(1, 60)
    assert strategy.kind == "exponential_with_jitter"
    assert repr(strategy) == "ExponentialWithJitter { base_seconds: 1, max_seconds: 60 }"
    calls: list[tuple[int, int]] = []

    def fake_randint(low: int, high: int) -> int:
        calls.append((low, high))
        return high

    monkeypatch.setattr(random, "randint", fake_randint)
    # c < 4 gives j == 0: exactly c, and randint is not consulted.
    assert strategy.calculate_delay(0) == 1
    assert strategy.calculate_delay(1) == 2
    assert calls == []
    assert strategy.calculate_delay(2) == 5  # c=4, j=1
    assert strategy.calculate_delay(5) == 40  # c=32, j=8
    assert strategy.calculate_delay(9) == 75  # c=60 (capped), j=15
    assert calls == [(-1, 1), (-8, 8), (-15, 15)]


def test_jitter_floor_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "randint", lambda low, high: -1000)
    assert BackoffStrategy.exponential_with_jitter(4, 60).calculate_delay(0) == 1


def test_default_policy_delays_match_the_spec() -> None:
    backoff = StepRetryPolicy().backoff
    for _ in range(200):
        assert backoff.calculate_delay(0) == 1
        assert backoff.calculate_delay(1) == 2
        assert 3 <= backoff.calculate_delay(2) <= 5
        assert 45 <= backoff.calculate_delay(20) <= 75


@pytest.mark.parametrize(
    "build",
    [
        lambda: BackoffStrategy.fixed(-1),
        lambda: BackoffStrategy.exponential(-1, 10),
        lambda: BackoffStrategy.exponential(1, -10),
        lambda: BackoffStrategy.exponential_with_jitter(-1, 10),
        lambda: BackoffStrategy.exponential_with_jitter(1, -1),
    ],
)
def test_negative_values_are_value_errors(build: object) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        build()  # type: ignore[operator]


@pytest.mark.parametrize("bad", [1.5, "1", None, True])
def test_non_int_values_are_type_errors(bad: object) -> None:
    with pytest.raises(TypeError):
        BackoffStrategy.fixed(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        BackoffStrategy.exponential(1, bad)  # type: ignore[arg-type]


def test_calculate_delay_rejects_bad_attempts() -> None:
    with pytest.raises(ValueError):
        BackoffStrategy.exponential(1, 10).calculate_delay(-1)
    with pytest.raises(TypeError):
        BackoffStrategy.exponential(1, 10).calculate_delay(1.0)  # type: ignore[arg-type]


def test_direct_construction_is_checked() -> None:
    assert BackoffStrategy("fixed", delay_seconds=5) == BackoffStrategy.fixed(5)
    with pytest.raises(ValueError, match="unknown backoff kind"):
        BackoffStrategy("linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no other parameters"):
        BackoffStrategy("fixed", delay_seconds=1, base_seconds=2)
    with pytest.raises(TypeError):
        BackoffStrategy("exponential", base_seconds=1)


def test_strategy_is_an_immutable_value() -> None:
    assert BackoffStrategy.fixed(5) == BackoffStrategy.fixed(5)
    assert BackoffStrategy.fixed(5) != BackoffStrategy.fixed(6)
    assert BackoffStrategy.exponential(1, 10) != BackoffStrategy.exponential_with_jitter(1, 10)
    assert len({BackoffStrategy.fixed(5), BackoffStrategy.fixed(5)}) == 1
    strategy = BackoffStrategy.fixed(5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        strategy.delay_seconds = 6  # type: ignore[misc]


def test_policy_defaults_and_repr() -> None:
    policy = StepRetryPolicy()
    assert policy.max_attempts == 3
    assert policy.backoff == BackoffStrategy.exponential_with_jitter(1, 60)
    assert repr(policy) == (
        "StepRetryPolicy(max_attempts=3, "
        "backoff=ExponentialWithJitter { base_seconds: 1, max_seconds: 60 })"
    )
    assert StepRetryPolicy(3, None) == policy
    custom = StepRetryPolicy(max_attempts=5, backoff=BackoffStrategy.fixed(2))
    assert repr(custom) == "StepRetryPolicy(max_attempts=5, backoff=Fixed { delay_seconds: 2 })"


def test_should_retry() -> None:
    policy = StepRetryPolicy(max_attempts=3)
    assert [policy.should_retry(a) for a in range(5)] == [True, True, True, False, False]
    assert not StepRetryPolicy(max_attempts=0).should_retry(0)


def test_policy_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        StepRetryPolicy(max_attempts=-1)
    with pytest.raises(TypeError):
        StepRetryPolicy(max_attempts=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        StepRetryPolicy(max_attempts=True)
    with pytest.raises(TypeError):
        StepRetryPolicy(backoff="fixed")  # type: ignore[arg-type]


def test_policy_compares_by_value_and_is_read_only() -> None:
    a = StepRetryPolicy(4, BackoffStrategy.fixed(1))
    b = StepRetryPolicy(4, BackoffStrategy.fixed(1))
    assert a == b
    assert hash(a) == hash(b)
    assert a != StepRetryPolicy(4, BackoffStrategy.fixed(2))
    assert a != StepRetryPolicy(5, BackoffStrategy.fixed(1))
    assert a != "policy"
    with pytest.raises(AttributeError):
        a.max_attempts = 1  # type: ignore[misc]
