"""What an enqueue may ask besides its payloads (beyond pgqrs): a priority, deduplication keys
and their window (semantics.md §7.2, §7.8).

Every value is checked here, before anything is written: a bad one raises `ValidationError`
whose message says what to fix. The checks are made before the payloads' own (semantics.md
§8.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ValidationError
from .arguments import MAX_DURATION_SECONDS

# A priority is any value of the column (a 32-bit INTEGER on every backend): higher is claimed
# first, 0 is the default and what rows written by pgqrs's own workers get.
MIN_PRIORITY = -(2**31)
MAX_PRIORITY = 2**31 - 1
# A deduplication key: 1 to 255 characters (an index key on every backend), no U+0000 (which
# PostgreSQL's text refuses).
MAX_DEDUP_KEY_LENGTH = 255


@dataclass(frozen=True)
class EnqueueOptions:
    """One enqueue call's checked options: `keys` has one entry per payload (None: no key),
    or is None when no payload has a key."""

    priority: int = 0
    keys: tuple[str | None, ...] | None = None
    window: float | None = None
    limit_key: str | None = None  # the key limits count every message of the call against


PLAIN = EnqueueOptions()


def _fail(detail: str) -> ValidationError:
    return ValidationError(f"Validation failed: {detail}")


def _shown(value: object) -> str:
    text = repr(value)
    return (text[:60] + "...") if len(text) > 63 else text


def check_priority(value: object) -> int:
    """An int from MIN_PRIORITY to MAX_PRIORITY (a bool is not a priority)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(
            f"priority must be an int from {MIN_PRIORITY} to {MAX_PRIORITY}, "
            f"not {type(value).__name__} {_shown(value)}"
        )
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise _fail(f"priority must be from {MIN_PRIORITY} to {MAX_PRIORITY}, got {value}")
    return int(value)


def check_dedup_key(value: object, where: str = "dedup_key") -> str:
    """A deduplication key: a str of 1 to MAX_DEDUP_KEY_LENGTH characters, without U+0000."""
    if not isinstance(value, str):
        raise _fail(f"{where} must be a str or None, not {type(value).__name__} {_shown(value)}")
    if not value:
        raise _fail(f"{where} must not be empty (pass None for no key)")
    if len(value) > MAX_DEDUP_KEY_LENGTH:
        raise _fail(
            f"{where} is {len(value)} characters long; at most {MAX_DEDUP_KEY_LENGTH} are allowed"
        )
    if "\x00" in value:
        raise _fail(f"{where} must not contain the character U+0000")
    return value


def check_dedup_keys(keys: object, count: int) -> tuple[str | None, ...] | None:
    """A batch's keys: None, or a list with one key (or None) per payload."""
    if keys is None:
        return None
    if not isinstance(keys, list | tuple):
        raise _fail(f"dedup_keys must be a list of str or None, not {type(keys).__name__}")
    if len(keys) != count:
        raise _fail(
            f"dedup_keys has {len(keys)} entries for {count} payloads; give one per payload"
        )
    checked = tuple(
        None if key is None else check_dedup_key(key, f"dedup_keys[{i}]")
        for i, key in enumerate(keys)
    )
    return checked if any(key is not None for key in checked) else None


def check_dedup_window(value: object) -> float | None:
    """None, or seconds from 0 to MAX_DURATION_SECONDS."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(
            f"dedup_window_seconds must be a number of seconds or None, "
            f"not {type(value).__name__} {_shown(value)}"
        )
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_DURATION_SECONDS:
        raise _fail(
            f"dedup_window_seconds must be from 0 to {MAX_DURATION_SECONDS} seconds, got {value!r}"
        )
    return seconds


def enqueue_options(
    priority: object,
    keys: object,
    window: object,
    count: int,
    *,
    batch: bool,
    key: object = None,
) -> EnqueueOptions:
    """Check one call's options: `keys` is the one `dedup_key` of a single enqueue, or the
    `dedup_keys` list of a batch of `count` payloads. A window needs a key to apply to. `key`:
    the limits key of every message of the call (semantics.md §7.10)."""
    checked_priority = check_priority(priority)
    if batch:
        checked_keys = check_dedup_keys(keys, count)
    else:
        checked_keys = None if keys is None else (check_dedup_key(keys),)
    checked_window = check_dedup_window(window)
    if checked_window is not None and keys is None:
        name = "dedup_keys" if batch else "dedup_key"
        raise _fail(f"dedup_window_seconds applies to deduplication keys; give {name} too")
    limit_key = None if key is None else check_dedup_key(key, "key")
    if checked_priority == 0 and checked_keys is None and limit_key is None:
        return PLAIN
    return EnqueueOptions(checked_priority, checked_keys, checked_window, limit_key)


def check_message_id(value: object) -> int:
    """The id of a message to cancel: an int (a bool is not an id)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"message_id must be an int, not {type(value).__name__} {_shown(value)}")
    return int(value)


def key_list(keys: Sequence[str | None]) -> list[str]:
    """The distinct keys of a batch, in order of first appearance."""
    return list(dict.fromkeys(key for key in keys if key is not None))
