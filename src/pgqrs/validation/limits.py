"""A queue's or a key's concurrency and rate limits (semantics.md §7.10), and message keys."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ValidationError
from .enqueue import check_dedup_key

# The most any limit may say: a 32-bit column on every backend.
MAX_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class Limits:
    """Checked limits; None: no limit of that kind. `burst` is set exactly when the rate is."""

    max_in_flight: int | None = None
    rate_per_second: float | None = None
    burst: int | None = None

    @property
    def empty(self) -> bool:
        return self.max_in_flight is None and self.rate_per_second is None


def _fail(detail: str) -> ValidationError:
    return ValidationError(f"Validation failed: {detail}")


def _count(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{name} must be an int from 1 to {MAX_LIMIT} or None, not {value!r}")
    if not 1 <= value <= MAX_LIMIT:
        raise _fail(f"{name} must be from 1 to {MAX_LIMIT}, got {value}")
    return int(value)


def check_limits(max_in_flight: object, rate_per_second: object, burst: object) -> Limits:
    """The limits of one `set_queue_limits` / `set_key_limits` call. A burst needs a rate; a
    rate without one gets a burst of one second's worth (at least 1)."""
    in_flight = _count("max_in_flight", max_in_flight)
    rate: float | None = None
    if rate_per_second is not None:
        if isinstance(rate_per_second, bool) or not isinstance(rate_per_second, int | float):
            raise _fail(f"rate_per_second must be a number > 0 or None, not {rate_per_second!r}")
        rate = float(rate_per_second)
        if not math.isfinite(rate) or not 0 < rate <= MAX_LIMIT:
            raise _fail(
                f"rate_per_second must be > 0 and at most {MAX_LIMIT}, got {rate_per_second!r}"
            )
    checked_burst = _count("burst", burst)
    if checked_burst is not None and rate is None:
        raise _fail("burst applies to a rate limit; give rate_per_second too")
    if rate is not None and checked_burst is None:
        checked_burst = max(1, min(MAX_LIMIT, math.ceil(rate)))
    return Limits(in_flight, rate, checked_burst)


def check_limit_key(value: object) -> str:
    """A message key that limits apply to: a str of 1 to 255 characters, without U+0000."""
    return check_dedup_key(value, "key")
