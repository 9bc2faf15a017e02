"""Retry and backoff: the pure formulas of semantics.md §13 (api.md §14).

This module must not import `pgqrs.types`: `types` re-exports these classes and imports us.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from .validation import require_duration, require_int, require_type_or_none

__all__ = ["BackoffStrategy", "StepRetryPolicy", "message_backoff_seconds"]

BackoffKind = Literal["fixed", "exponential", "exponential_with_jitter"]

# semantics.md §13: a failed message waits at most a minute before it is visible again.
_MESSAGE_BACKOFF_CAP = 60


def _capped_exponential(base: int, attempt: int, cap: int) -> int:
    """`min(base * 2**attempt, cap)` without building a huge integer for a huge `attempt`."""
    if base == 0:
        return 0
    # base >= 1, so base * 2**attempt >= 2**attempt, which exceeds cap once attempt reaches
    # cap.bit_length(); past that point the shift would only allocate.
    if attempt >= cap.bit_length():
        return cap
    return min(base << attempt, cap)


def message_backoff_seconds(read_ct: int) -> int:
    """Seconds a message stays invisible after its handler failed: `min(2**(read_ct-1), 60)`."""
    exponent = max(read_ct, 1) - 1
    return _capped_exponential(1, exponent, _MESSAGE_BACKOFF_CAP)


@dataclass(frozen=True, slots=True, repr=False)
class BackoffStrategy:
    """How long a failed step waits before its next attempt. Build it with the static constructors.

    Immutable, equal by value and hashable, so policies can be shared and used as dict keys.
    """

    kind: BackoffKind
    delay_seconds: int | None = None
    base_seconds: int | None = None
    max_seconds: int | None = None

    def __post_init__(self) -> None:
        # Checked here rather than in the static constructors so that no instance, however it
        # was built, holds a combination `calculate_delay` cannot handle.
        if self.kind == "fixed":
            require_int("delay_seconds", self.delay_seconds, 0)
            unused: tuple[int | None, ...] = (self.base_seconds, self.max_seconds)
        elif self.kind in ("exponential", "exponential_with_jitter"):
            require_int("base_seconds", self.base_seconds, 0)
            require_int("max_seconds", self.max_seconds, 0)
            unused = (self.delay_seconds,)
        else:
            raise ValueError(f"unknown backoff kind {self.kind!r}")
        if any(value is not None for value in unused):
            raise ValueError(f"a {self.kind} backoff takes no other parameters")
        for name in ("delay_seconds", "base_seconds", "max_seconds"):
            value = getattr(self, name)
            if value is not None:
                require_duration(name, value)

    @staticmethod
    def fixed(delay_seconds: int) -> BackoffStrategy:
        return BackoffStrategy("fixed", delay_seconds=delay_seconds)

    @staticmethod
    def exponential(base_seconds: int, max_seconds: int) -> BackoffStrategy:
        return BackoffStrategy("exponential", base_seconds=base_seconds, max_seconds=max_seconds)

    @staticmethod
    def exponential_with_jitter(base_seconds: int, max_seconds: int) -> BackoffStrategy:
        return BackoffStrategy(
            "exponential_with_jitter", base_seconds=base_seconds, max_seconds=max_seconds
        )

    def calculate_delay(self, attempt: int) -> int:
        """Whole seconds to wait after failed attempt number `attempt` (0 for the first failure)."""
        attempt = require_int("attempt", attempt, 0)
        if self.delay_seconds is not None:
            return self.delay_seconds
        # __post_init__ guarantees both are ints for the two exponential kinds.
        assert self.base_seconds is not None
        assert self.max_seconds is not None
        capped = _capped_exponential(self.base_seconds, attempt, self.max_seconds)
        if self.kind == "exponential":
            return capped
        jitter = capped // 4
        if jitter == 0:
            return capped
        return max(1, capped + random.randint(-jitter, jitter))

    def __repr__(self) -> str:
        # pgqrs's (Rust Debug) spelling, kept so logs read the same in both libraries.
        if self.kind == "fixed":
            return f"Fixed {{ delay_seconds: {self.delay_seconds} }}"
        name = "Exponential" if self.kind == "exponential" else "ExponentialWithJitter"
        return f"{name} {{ base_seconds: {self.base_seconds}, max_seconds: {self.max_seconds} }}"


_DEFAULT_BACKOFF = BackoffStrategy.exponential_with_jitter(1, 60)


class StepRetryPolicy:
    """How many transient failures a step may have, and how long to wait after each."""

    __slots__ = ("_backoff", "_max_attempts")

    def __init__(self, max_attempts: int = 3, backoff: BackoffStrategy | None = None) -> None:
        require_type_or_none(
            backoff, BackoffStrategy, "backoff must be a BackoffStrategy, not {type.__name__}"
        )
        self._max_attempts = require_int("max_attempts", max_attempts, 0)
        self._backoff = _DEFAULT_BACKOFF if backoff is None else backoff

    @property
    def max_attempts(self) -> int:
        return self._max_attempts

    @property
    def backoff(self) -> BackoffStrategy:
        return self._backoff

    def should_retry(self, attempt: int) -> bool:
        """Whether a step whose `retry_count` is `attempt` may be scheduled again."""
        return attempt < self._max_attempts

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StepRetryPolicy):
            return NotImplemented
        return (self._max_attempts, self._backoff) == (other._max_attempts, other._backoff)

    def __hash__(self) -> int:
        return hash((self._max_attempts, self._backoff))

    def __repr__(self) -> str:
        return f"StepRetryPolicy(max_attempts={self._max_attempts}, backoff={self._backoff!r})"
