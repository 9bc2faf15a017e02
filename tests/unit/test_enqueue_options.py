"""The checks of an enqueue's priority, deduplication keys and window (validation/enqueue.py):
pure, made before anything is written (semantics.md §7.2, §7.8)."""

from __future__ import annotations

from typing import Any

import pytest

import pgqrs
from pgqrs.validation import PLAIN, EnqueueOptions, check_message_id, enqueue_options


def test_priority_defaults_and_range() -> None:
    assert enqueue_options(0, None, None, 1, batch=False) is PLAIN
    assert enqueue_options(-(2**31), None, None, 1, batch=False).priority == -(2**31)
    assert enqueue_options(2**31 - 1, None, None, 3, batch=True).priority == 2**31 - 1


@pytest.mark.parametrize("bad", [True, False, 1.0, "1", None, 2**31, -(2**31) - 1])
def test_priority_bad_values(bad: Any) -> None:
    with pytest.raises(pgqrs.ValidationError, match=r"^Validation failed: priority "):
        enqueue_options(bad, None, None, 1, batch=False)


def test_dedup_single_key_and_batch_keys() -> None:
    assert enqueue_options(0, "k", None, 1, batch=False) == EnqueueOptions(0, ("k",), None)
    assert enqueue_options(2, ["a", None, "a"], 5, 3, batch=True) == EnqueueOptions(
        2, ("a", None, "a"), 5.0
    )
    # A list without any key is no key at all (and its window is moot).
    assert enqueue_options(0, [None, None], 10, 2, batch=True) is PLAIN
    assert enqueue_options(1, [None, None], 10, 2, batch=True) == EnqueueOptions(1, None, 10.0)
    assert enqueue_options(0, ("x" * 255,), None, 1, batch=True).keys == ("x" * 255,)


@pytest.mark.parametrize(
    ("keys", "window", "batch", "message"),
    [
        ("", None, False, "dedup_key must not be empty"),
        ("x" * 256, None, False, "dedup_key is 256 characters long; at most 255"),
        (b"k", None, False, "dedup_key must be a str or None, not bytes"),
        ("a\x00", None, False, "must not contain the character U\\+0000"),
        (None, 5, False, "dedup_window_seconds applies to deduplication keys; give dedup_key"),
        (None, 5, True, "give dedup_keys too"),
        ("k", -1, False, "dedup_window_seconds must be from 0"),
        ("k", float("inf"), False, "dedup_window_seconds must be from 0"),
        ("k", 2**32, False, "dedup_window_seconds must be from 0"),
        ("k", True, False, "dedup_window_seconds must be a number of seconds or None, not bool"),
        ("ab", None, True, "dedup_keys must be a list of str or None, not str"),
        (["a"], None, True, "dedup_keys has 1 entries for 2 payloads"),
        (["a", 1], None, True, r"dedup_keys\[1\] must be a str or None, not int"),
    ],
)
def test_dedup_bad_values(keys: Any, window: Any, batch: bool, message: str) -> None:
    count = 2 if batch else 1
    with pytest.raises(pgqrs.ValidationError, match=message):
        enqueue_options(0, keys, window, count, batch=batch)


def test_cancel_message_id_check() -> None:
    assert check_message_id(5) == 5
    assert type(check_message_id(pgqrs.EnqueuedId(5, duplicate=True))) is int
    for bad in (True, 5.0, "5", None):
        with pytest.raises(pgqrs.ValidationError, match="message_id must be an int"):
            check_message_id(bad)
