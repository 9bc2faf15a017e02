"""A run timeline's rows as records (store/sql/introspection.py): a step's attempts and the
duration of its last attempt are derived from the stored row (semantics.md §19.2)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pgqrs.records import EventInfo, SignalInfo, TimelineStep
from pgqrs.store.sql.columns import Shape
from pgqrs.store.sql.introspection import (
    EVENT_INFO,
    SIGNAL_INFO,
    TIMELINE_STEP,
    attempts,
    last_attempt_seconds,
)
from pgqrs.types import WorkflowStatus

START = "2024-05-06 07:08:09.000000"  # as SQLite stores it
END = datetime(2024, 5, 6, 7, 8, 11, 500000, tzinfo=UTC)  # as Postgres returns it


def row_of(shape: Shape[Any], stored: dict[str, Any]) -> tuple[Any, ...]:
    assert set(stored) == set(shape.names)
    return tuple(stored[name] for name in shape.names)


@pytest.mark.parametrize(
    ("status", "retry_count", "retry_at", "expected"),
    [
        ("RUNNING", 0, None, 1),  # the first attempt, running
        ("SUCCESS", 0, None, 1),
        ("ERROR", 0, None, 1),  # failed for good at once
        ("ERROR", 1, START, 1),  # failed once, the retry is only planned
        ("RUNNING", 1, None, 2),  # the retry runs
        ("ERROR", 3, None, 4),  # retries exhausted: semantics.md §13's four executions
        ("SUCCESS", 2, None, 3),
    ],
)
def test_attempts(status: str, retry_count: int, retry_at: str | None, expected: int) -> None:
    assert attempts(status, retry_count, retry_at) == expected


def test_the_last_attempt_lasts_until_it_succeeded_or_its_failure_was_recorded() -> None:
    assert last_attempt_seconds("SUCCESS", START, END, None) == 2.5
    assert last_attempt_seconds("ERROR", START, None, END) == 2.5
    assert last_attempt_seconds("RUNNING", START, None, END) is None
    assert last_attempt_seconds("SUCCESS", None, END, END) is None


def test_rows_become_records() -> None:
    step = {
        "id": 3,
        "step_name": "charge",
        "status": "ERROR",
        "output": None,
        "error": '{"code":"HTTP_503"}',
        "retry_count": 1,
        "retry_at": END,
        "started_at": START,
        "completed_at": None,
        "updated_at": END,
    }
    assert TIMELINE_STEP.build(row_of(TIMELINE_STEP, step)) == TimelineStep(
        id=3,
        step_name="charge",
        status=WorkflowStatus.Error,
        attempts=1,
        output=None,
        last_error={"code": "HTTP_503"},
        retry_at="2024-05-06T07:08:11.500000+00:00",
        started_at="2024-05-06T07:08:09+00:00",
        completed_at=None,
        duration_seconds=2.5,
    )
    signal = {
        "id": 1,
        "topic": "go",
        "payload": "[1]",
        "created_at": START,
        "consumed_at": None,
        "consumed_by": None,
    }
    assert SIGNAL_INFO.build(row_of(SIGNAL_INFO, signal)) == SignalInfo(
        1, "go", [1], "2024-05-06T07:08:09+00:00", None, None
    )
    event = {"key": "k", "value": "null", "created_at": START, "updated_at": END}
    assert EVENT_INFO.build(row_of(EVENT_INFO, event)) == EventInfo(
        "k", None, "2024-05-06T07:08:09+00:00", "2024-05-06T07:08:11.500000+00:00"
    )
