"""Checks of the arguments callers pass: types, numbers and durations, sizes and intervals.

Each check raises the error the API documents for that argument (TypeError for a wrong type,
ValueError or ValidationError for a value out of range) before anything touches storage. This
package is a leaf, so a check against a library class (`pgqrs.Consumer`, `pgqrs.Run`, ...) is
given the class by its caller, together with the message that names it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import ValidationError

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# Types


def require_str(what: str, value: object) -> str:
    """`value` if it is a str; `what` names it in the message (`step name must be a str, ...`)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def require_type(value: object, expected: type[T], message: str) -> T:
    """`value` if it is an instance of `expected`, else TypeError(`message`), in which `{type}`
    stands for the value's type and `{type.__name__}` for its name."""
    if not isinstance(value, expected):
        raise TypeError(message.format(type=type(value)))
    return value


def require_type_or_none(value: object, expected: type[T], message: str) -> T | None:
    """`require_type`, with None accepted too (an optional argument)."""
    return None if value is None else require_type(value, expected, message)


def require_callable(value: object, message: str) -> Callable[..., Any]:
    """`value` if it can be called (a handler, a decorated function); `message` as above."""
    if not callable(value):
        raise TypeError(message.format(type=type(value)))
    return value


# --------------------------------------------------------------------------------------------
# Numbers and durations


def require_int(name: str, value: object, minimum: int | None = None) -> int:
    """`value` as an int of at least `minimum`; `bool` is refused although it is an int subclass."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


# The longest duration any argument may name: pgqrs takes durations as u32 seconds, and a time
# this far ahead still fits every backend's timestamps (PostgreSQL reads back nothing past year
# 294276, Python nothing past 9999), so no accepted value can store a row that cannot be read.
MAX_DURATION_SECONDS = 2**32 - 1


def require_duration(name: str, value: object) -> float:
    """`value` as a finite float between 0 and MAX_DURATION_SECONDS (NaN would slip through a
    plain `< 0` test), checked before anything is written."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if number > MAX_DURATION_SECONDS:
        raise ValueError(
            f"{name} must be at most {MAX_DURATION_SECONDS} seconds (about 136 years), "
            f"got {value!r}"
        )
    return number


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    return value


def check_builder_seconds(name: str, value: object, *, allow_zero: bool) -> float:
    """The dequeue builder's `lease()` (more than 0 seconds) and `until()` (0 or more)."""
    seconds = _seconds(name, value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "more than 0"
        raise ValueError(f"{name} must be {bound} seconds, got {value}")
    return require_duration(name, seconds)


def check_lease(value: object, name: str = "vt") -> float:
    """The lease of a claim by hand (`dequeue_many_with_delay`, `dequeue_at`): at least 1 s."""
    seconds = _seconds(name, value)
    if not math.isfinite(seconds) or seconds < 1:
        raise ValueError(f"{name} must be at least 1 second, got {value}")
    return require_duration(name, seconds)


def check_retry_after(value: object) -> float | None:
    """`fail_transient(..., retry_after)`: None, or seconds from 0 to MAX_DURATION_SECONDS,
    returned as given (an int stays an int)."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError("Invalid retry_after")
    require_duration("retry_after", value)
    return value


def check_result_timeout(timeout: Any) -> Any:
    """`RunBuilder.result(timeout)`: None (wait for ever) or seconds >= 0. Anything that cannot
    be compared with 0 fails as the comparison does (TypeError)."""
    if timeout is not None and (isinstance(timeout, bool) or timeout < 0):
        raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
    return timeout


# --------------------------------------------------------------------------------------------
# Batch sizes, intervals, collections


def check_batch_size(size: object, limit: int, name: str = "batch_size") -> int:
    """A claim's batch size: an int from 1 to `limit` (the store's `default_max_batch_size`)."""
    count = require_int(name, size, 1)
    if count > limit:
        raise ValidationError(
            f"Validation failed: batch size {size} exceeds default_max_batch_size {limit}"
        )
    return count


def check_builder_batch(size: object) -> int:
    """The dequeue builder's `batch()`: an int (the builder raises a value below 1 to 1)."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"batch() needs an int, got {type(size).__name__}")
    return size


def check_builder_poll_interval(interval_ms: object) -> int:
    """The dequeue builder's `poll_interval()`: whole milliseconds, at least 1."""
    if isinstance(interval_ms, bool) or not isinstance(interval_ms, int):
        raise TypeError(f"poll_interval() needs milliseconds as an int, got {interval_ms!r}")
    if interval_ms < 1:
        raise ValueError(f"poll_interval() must be at least 1 ms, got {interval_ms}")
    return interval_ms


def check_iterator_poll_interval(interval_ms: Any) -> Any:
    """`store.consume_iter(queue, poll_interval_ms)`: None (the default) or at least 1."""
    if interval_ms is not None and interval_ms < 1:
        raise ValueError(f"poll_interval_ms must be at least 1, got {interval_ms}")
    return interval_ms


def check_some_builders(builders: Sequence[T]) -> Sequence[T]:
    """`run_workers(store, builders)`: at least one builder."""
    if not builders:
        raise ValueError("run_workers() needs at least one DequeueBuilder")
    return builders
