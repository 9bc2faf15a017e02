"""The per-producer token bucket of semantics.md §8.3. Pure: time comes from an injected clock."""

from __future__ import annotations

import time
from collections.abc import Callable

from .errors import RateLimitedError, ValidationError
from .validation import require_int

__all__ = ["TokenBucket"]

# Float refill arithmetic can leave a bucket a hair short of a whole token at exactly the moment
# a caller was told to retry; this tolerance keeps such a retry from being refused again.
_EPSILON = 1e-9


class TokenBucket:
    """`rate` tokens per second up to `burst` (or `rate` when None); starts full; never sleeps.

    `take` has no `await`, so its check-and-take cannot interleave with another coroutine.
    """

    __slots__ = ("_capacity", "_clock", "_rate", "_tokens", "_updated")

    def __init__(
        self, rate: int, burst: int | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = require_int("rate", rate, 1)
        self._capacity = self._rate if burst is None else require_int("burst", burst, 1)
        self._clock = clock
        self._tokens = float(self._capacity)
        self._updated = clock()

    @property
    def rate(self) -> int:
        return self._rate

    @property
    def capacity(self) -> int:
        return self._capacity

    def available(self) -> float:
        """Tokens in the bucket now (refilled up to this instant)."""
        self._refill()
        return self._tokens

    def take(self, n: int) -> None:
        """Take `n` tokens, or raise without taking any."""
        n = require_int("n", n, 0)
        if n > self._capacity:
            raise ValidationError(
                f"Validation failed: batch of {n} messages exceeds the enqueue burst limit of "
                f"{self._capacity}"
            )
        self._refill()
        if self._tokens + _EPSILON >= n:
            self._tokens = max(0.0, self._tokens - n)
            return
        retry_after = (n - self._tokens) / self._rate
        raise RateLimitedError(
            f"Rate limit exceeded, retry after {round(retry_after, 3)}s", retry_after=retry_after
        )

    def _refill(self) -> None:
        now = self._clock()
        # Only an injected clock can step back; ignoring that keeps the bucket from draining or
        # later counting the same interval twice.
        if now > self._updated:
            elapsed = now - self._updated
            self._tokens = min(float(self._capacity), self._tokens + elapsed * self._rate)
            self._updated = now
