"""Runs that wait and talk (semantics.md §18): signals, events, child runs, deadlines, and
waking a waiting run's trigger message (store/sql/waits.py says why the run's row is locked
first). Functions that take a lock are meant to run inside `db.transaction()`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .._clock import db_to_api, format_time
from ..records import Event, Signal
from ..store.executor import Queryable
from ..store.sql.columns import RUN, json_value
from ..types import RunRecord, WorkflowStatus


async def lock_run(db: Queryable, run_id: int) -> tuple[int, WorkflowStatus] | None:
    """Lock an open run's row: its trigger message and status; None when missing or finished."""
    row = await db.fetchone(db.sql.RUN_LOCK, {"id": run_id})
    return None if row is None else (int(row[0]), WorkflowStatus.parse(row[1]))


async def wake_message(db: Queryable, message_id: int, now: datetime) -> int | None:
    """Make a waiting trigger message visible now; the queue woken, or None (held, archived
    or already visible)."""
    row = await db.fetchone(db.sql.MSG_WAKE, {"id": message_id, "now": now})
    return None if row is None else int(row[0])


async def wake_run(db: Queryable, run_id: int, now: datetime) -> int | None:
    """Lock the run, then wake its trigger message (`wake_message`); None also when the run
    has finished."""
    locked = await lock_run(db, run_id)
    return None if locked is None else await wake_message(db, locked[0], now)


async def insert_signal(db: Queryable, run_id: int, topic: str, payload: str, now: datetime) -> int:
    params = {"run_id": run_id, "topic": topic, "payload": payload, "now": now}
    row = await db.fetchone(db.sql.SIGNAL_INSERT, params)
    assert row is not None
    return int(row[0])


async def consume_signal(
    db: Queryable, run_id: int, topic: str, step: str, now: datetime
) -> Signal | None:
    """Consume the oldest unconsumed signal of the topic for step `step`."""
    params = {"run_id": run_id, "topic": topic, "step": step, "now": now}
    row = await db.fetchone(db.sql.SIGNAL_CONSUME, params)
    if row is None:
        return None
    return Signal(int(row[0]), str(row[1]), json_value(row[2]), db_to_api(row[3]) or "")


async def signal_pending(db: Queryable, run_id: int, topic: str) -> bool:
    params = {"run_id": run_id, "topic": topic}
    return await db.fetchone(db.sql.SIGNAL_PENDING, params) is not None


async def set_event(db: Queryable, run_id: int, key: str, value: str, now: datetime) -> None:
    params = {"run_id": run_id, "key": key, "value": value, "now": now}
    await db.execute(db.sql.EVENT_SET, params)


async def get_event(db: Queryable, run_id: int, key: str) -> Event | None:
    row = await db.fetchone(db.sql.EVENT_GET, {"run_id": run_id, "key": key})
    if row is None:
        return None
    return Event(str(row[0]), json_value(row[1]), db_to_api(row[2]) or "")


async def create_run(
    db: Queryable,
    workflow_id: int,
    message_id: int,
    input_text: str,
    now: datetime,
    *,
    parent_run_id: int | None = None,
    deadline_at: datetime | None = None,
) -> RunRecord:
    """The run of a trigger message enqueued in the same transaction, created before any
    delivery so it can carry a parent and a deadline."""
    params = {
        "workflow_id": workflow_id,
        "message_id": message_id,
        "input": input_text,
        "parent_run_id": parent_run_id,
        "deadline_at": deadline_at,
        "now": now,
    }
    row = await db.fetchone(db.sql.RUN_CREATE, params)
    assert row is not None
    return RUN.build(row)


async def outcomes(
    db: Queryable, run_ids: Sequence[int]
) -> dict[int, tuple[WorkflowStatus, Any, Any]]:
    """Status, output and error of each run found."""
    rows = await db.fetch(db.sql.RUN_OUTCOMES, {"ids": list(run_ids)})
    return {
        int(r[0]): (WorkflowStatus.parse(r[1]), json_value(r[2]), json_value(r[3])) for r in rows
    }


async def cancel_past_deadline(db: Queryable, run_id: int, now: datetime, error: str) -> bool:
    """End an open run CANCELLED because its deadline passed (`error` says so, see
    `deadline_reason`); False when it had finished."""
    params = {"id": run_id, "error": error, "now": now}
    return await db.fetchone(db.sql.RUN_CANCEL_PAST_DEADLINE, params) is not None


def deadline_reason(deadline: datetime) -> dict[str, Any]:
    """What a run cancelled by its deadline stores as its error (and `result()` reports)."""
    return {"reason": "deadline_exceeded", "message": f"deadline {format_time(deadline)} passed"}
