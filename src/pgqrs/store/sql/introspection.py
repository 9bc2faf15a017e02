"""Reads for operators and dashboards (semantics.md §19.2): runs by workflow, status and time of
creation; one run's steps, signals, events and child runs. Nothing here writes.

A step's attempts and the duration of its last attempt are derived from its row as it is read
(`attempts`, `last_attempt_seconds`), so every reader counts them the same way.
"""

from __future__ import annotations

from typing import Any

from ..._clock import db_to_api, from_db
from ...records import EventInfo, SignalInfo, TimelineStep
from ...types import WorkflowStatus
from .columns import RUN, Column, Shape, json_value
from .spelling import read


def attempts(status: Any, retry_count: Any, retry_at: Any) -> int:
    """Executions of a step started so far. `retry_count` counts the failures that scheduled
    another attempt (semantics.md §12.6); while that attempt has not started (ERROR with a
    `retry_at`), it is not one yet."""
    scheduled = retry_at is not None and WorkflowStatus.parse(status) == WorkflowStatus.Error
    return int(retry_count or 0) + (0 if scheduled else 1)


def last_attempt_seconds(
    status: Any, started_at: Any, completed_at: Any, updated_at: Any
) -> float | None:
    """How long the last attempt ran: until it succeeded (`completed_at`) or until its failure
    was recorded (`updated_at`); None while it runs."""
    parsed = WorkflowStatus.parse(status)
    if parsed == WorkflowStatus.Success:
        end = from_db(completed_at)
    elif parsed == WorkflowStatus.Error:
        end = from_db(updated_at)
    else:
        return None
    start = from_db(started_at)
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


TIMELINE_STEP = Shape(
    TimelineStep,
    Column("id", int),
    Column("step_name"),
    Column("status", WorkflowStatus.parse),
    Column("output", json_value),
    Column("error", json_value, field="last_error"),
    Column("retry_count", field=None),
    Column("retry_at", db_to_api),
    Column("started_at", db_to_api),
    Column("completed_at", db_to_api),
    Column("updated_at", field=None),
    combined={
        "attempts": (attempts, ("status", "retry_count", "retry_at")),
        "duration_seconds": (
            last_attempt_seconds,
            ("status", "started_at", "completed_at", "updated_at"),
        ),
    },
)

SIGNAL_INFO = Shape(
    SignalInfo,
    Column("id", int),
    Column("topic"),
    Column("payload", json_value),
    Column("created_at", db_to_api, field="sent_at", otherwise=""),
    Column("consumed_at", db_to_api),
    Column("consumed_by"),
)

EVENT_INFO = Shape(
    EventInfo,
    Column("key"),
    Column("value", json_value),
    Column("created_at", db_to_api, otherwise=""),
    Column("updated_at", db_to_api, otherwise=""),
)


def _runs_created_between(since: str, until: str) -> str:
    """Runs of some workflows in some statuses created in [since, until), newest first; each
    filter matches every run when its switch (`:any_workflow`, ...) is true."""
    return (
        f"SELECT {RUN.select} FROM {{s}}pgqrs_workflow_runs "
        "WHERE (:any_workflow OR workflow_id IN_LIST(:workflow_ids)) "
        "AND (:any_status OR CAST(status AS TEXT) IN_LIST(:statuses)) "
        f"AND ({since} IS NULL OR TS(created_at) >= :since) "
        f"AND ({until} IS NULL OR TS(created_at) < :until) "
        "ORDER BY created_at DESC, id DESC LIMIT :limit"
    )


class IntrospectionSql:
    RUN_LIST_CREATED = read(_runs_created_between(":since", ":until"))
    # The run with its workflow's name after its own columns.
    TIMELINE_RUN = read(
        f"SELECT {RUN.qualified('r')}, w.name FROM {{s}}pgqrs_workflow_runs r "
        "JOIN {s}pgqrs_workflows w ON w.id = r.workflow_id WHERE r.id = :id"
    )
    TIMELINE_STEPS = read(
        f"SELECT {TIMELINE_STEP.select} FROM {{s}}pgqrs_workflow_steps WHERE run_id = :run_id "
        "ORDER BY id"
    )
    TIMELINE_SIGNALS = read(
        f"SELECT {SIGNAL_INFO.select} FROM {{s}}pgqrs_workflow_signals "
        "WHERE run_id = :run_id ORDER BY id"
    )
    TIMELINE_EVENTS = read(
        f"SELECT {EVENT_INFO.select} FROM {{s}}pgqrs_workflow_events WHERE run_id = :run_id "
        "ORDER BY created_at, key"
    )
    TIMELINE_CHILDREN = read(
        f"SELECT {RUN.select} FROM {{s}}pgqrs_workflow_runs WHERE parent_run_id = :run_id "
        "ORDER BY id"
    )


class IntrospectionPostgres(IntrospectionSql):
    # A NULL parameter tested on its own has no type PostgreSQL can infer: say it.
    RUN_LIST_CREATED = read(
        _runs_created_between("CAST(:since AS timestamptz)", "CAST(:until AS timestamptz)")
    )
