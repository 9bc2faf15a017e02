"""A cron schedule's arguments (semantics.md §17.1), checked before anything is written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from .names import validate_queue_name

# A tick's deduplication key is `schedule:<name>:<tick>` (a 25-character RFC 3339 time), and
# keys hold at most 255 characters (semantics.md §7.8): names stay well inside that.
MAX_SCHEDULE_NAME_LENGTH = 200
# The most missed ticks one firing enqueues: they go in one transaction.
MAX_CATCH_UP = 1000

_NAME_BAD_CHAR = re.compile(r"[^A-Za-z0-9_.:\-]")


def check_schedule_name(name: object) -> str:
    """A schedule name: 1-200 characters of ASCII letters, digits and `_ . : -`."""
    if not isinstance(name, str):
        raise ValidationError(
            f"Validation failed: schedule name must be a str, not {type(name).__name__}"
        )
    reason = None
    if not 1 <= len(name) <= MAX_SCHEDULE_NAME_LENGTH:
        reason = f"must be 1-{MAX_SCHEDULE_NAME_LENGTH} characters (got {len(name)})"
    elif (bad := _NAME_BAD_CHAR.search(name)) is not None:
        reason = f"contains {bad.group()!r} (allowed: ASCII letters, digits, _ . : -)"
    if reason is not None:
        shown = name if len(name) <= 64 else name[:64] + "…"
        raise ValidationError(f"Validation failed: invalid schedule name {shown!r}: {reason}")
    return name


def check_catch_up(value: object) -> int:
    """How many missed ticks to enqueue: an int from 0 to MAX_CATCH_UP."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"Validation failed: catch_up must be an int (0: skip missed ticks), "
            f"not {type(value).__name__}"
        )
    if not 0 <= value <= MAX_CATCH_UP:
        raise ValidationError(
            f"Validation failed: catch_up must be from 0 (skip missed ticks) to {MAX_CATCH_UP}, "
            f"got {value}"
        )
    return value


@dataclass(frozen=True)
class ScheduleTarget:
    """What a schedule enqueues: on `queue` (a queue's name), or a trigger of `workflow`."""

    queue: str | None
    workflow: str | None
    value: Any  # the payload, or the workflow's input


def check_target(queue: object, payload: Any, workflow: object, input: Any) -> ScheduleTarget:
    """Exactly one target: `queue` (with `payload`, default `{}`) or `workflow` (with
    `input`)."""
    if (queue is None) == (workflow is None):
        given = "both" if queue is not None else "neither"
        raise ValidationError(
            f"Validation failed: a schedule needs a queue or a workflow, got {given}: pass "
            "queue=... (and payload=...) or workflow=... (and input=...)"
        )
    if queue is not None:
        if input is not None:
            raise ValidationError(
                "Validation failed: input is a workflow's argument: with queue=..., pass "
                "payload=... instead"
            )
        return ScheduleTarget(validate_queue_name(queue), None, {} if payload is None else payload)
    if payload is not None:
        raise ValidationError(
            "Validation failed: payload goes with queue=...: with workflow=..., pass input=..."
        )
    return ScheduleTarget(None, validate_queue_name(workflow, "workflow"), input)
