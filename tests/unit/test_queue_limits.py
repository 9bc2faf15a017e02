"""A queue's own payload limits as pure code: precedence over Config, the checks of the values,
and what a refusal says (semantics.md §7.6, §8.1)."""

from __future__ import annotations

import pytest

from pgqrs import Config, QueueSettings, ValidationError
from pgqrs.validation import (
    MAX_QUEUE_LIMIT,
    PayloadRules,
    check_queue_limits,
    encode_payloads,
)


def refusal(payload: object, rules: PayloadRules, *, batch: bool = False) -> str:
    with pytest.raises(ValidationError) as caught:
        encode_payloads([payload], rules, batch=batch)
    return str(caught.value)


def test_the_queue_limit_wins_over_config_both_ways() -> None:
    config = Config("sqlite::memory:", max_string_length=50, forbidden_keys=["secret"])
    own = QueueSettings("q", None, max_string_length=4096, max_object_depth=1)
    rules = PayloadRules.for_queue(config, own)
    assert (rules.max_payload_size_bytes, rules.max_string_length, rules.max_object_depth) == (
        1048576,
        4096,
        1,
    )
    assert rules.forbidden_keys == ("secret",)  # keys stay Config's
    assert rules.origin is not None
    assert rules.origin.from_queue == {"max_string_length", "max_object_depth"}
    # Equal to the same limits from anywhere: where they come from only changes messages.
    assert rules == PayloadRules(1048576, 4096, 1, ("secret",), ())
    assert hash(rules) == hash(PayloadRules(1048576, 4096, 1, ("secret",), ()))
    strict = PayloadRules.for_queue(config, QueueSettings("q", None, max_string_length=5))
    assert strict.max_string_length == 5


def test_a_refusal_names_the_limit_its_value_its_source_and_the_fix() -> None:
    config = Config("sqlite::memory:")
    rules = PayloadRules.for_queue(config, QueueSettings("jobs", 3, max_object_depth=1))
    assert refusal({"a": [1]}, rules) == (
        "Validation failed: Object depth 2 exceeds limit 1 at $.a[0] (max_object_depth = 1 set "
        "on queue 'jobs'; change it with Admin.update_queue(\"jobs\", max_object_depth=N) or "
        "`pgqrs queue update jobs --max-depth N`)"
    )
    assert refusal("x" * 1025, rules) == (
        "Validation failed: String length 1025 exceeds limit 1024 at $ (max_string_length = "
        "1024 from this process's Config, pgqrs's default; change it for queue 'jobs' with "
        'Admin.update_queue("jobs", max_string_length=N) or `pgqrs queue update jobs '
        "--max-string-length N`, or for this process with Config.max_string_length)"
    )
    small = PayloadRules.for_queue(
        Config("sqlite::memory:", max_payload_size_bytes=4), QueueSettings("jobs", None)
    )
    assert refusal("abcd", small, batch=True) == (
        "Validation failed: Payload at index 0 too large: 6 bytes exceeds limit 4 "
        "(max_payload_size_bytes = 4 from this process's Config; change it for queue 'jobs' "
        'with Admin.update_queue("jobs", max_payload_size_bytes=N) or `pgqrs queue update '
        "jobs --max-payload-bytes N`, or for this process with Config.max_payload_size_bytes)"
    )
    # Keys are refused by the string length too; forbidden keys are not a limit.
    assert "max_string_length = 1024" in refusal({"k" * 1025: 1}, rules)
    assert refusal({"__proto__": 1}, rules) == (
        "Validation failed: Forbidden key '__proto__' found in payload at $"
    )
    # Rules that do not know their queue say what pgqrs says, and nothing more.
    assert refusal("x" * 1025, PayloadRules()) == (
        "Validation failed: String length 1025 exceeds limit 1024 at $"
    )


def test_limit_values_are_checked_like_config() -> None:
    assert check_queue_limits(
        {"max_payload_size_bytes": 1, "max_string_length": None, "max_object_depth": 0}
    ) == {"max_payload_size_bytes": 1, "max_string_length": None, "max_object_depth": 0}
    assert check_queue_limits({"max_string_length": MAX_QUEUE_LIMIT}) == {
        "max_string_length": 2**31 - 1
    }
    for name, bad in (
        ("max_payload_size_bytes", 0),
        ("max_string_length", -5),
        ("max_object_depth", -1),
        ("max_object_depth", MAX_QUEUE_LIMIT + 1),
    ):
        with pytest.raises(ValidationError, match=f"^Validation failed: {name} must be between"):
            check_queue_limits({name: bad})
    for bad_type in (True, 1.5, "10"):
        with pytest.raises(TypeError, match="max_string_length must be an int or None"):
            check_queue_limits({"max_string_length": bad_type})
