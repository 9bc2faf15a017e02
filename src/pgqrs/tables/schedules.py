"""Schedule rows (`pgqrs_schedules`): creation, lookups, pause and resume, and the
compare-and-set by which a scheduler claims a firing (semantics.md §17)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .._clock import from_db
from ..errors import NotFoundError, ValidationError
from ..records import ScheduleInfo
from ..store.executor import Queryable, UniqueViolation
from ..store.sql.columns import SCHEDULE


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(f"Schedule '{name}' not found")


async def create(
    db: Queryable,
    *,
    name: str,
    cron: str,
    timezone: str,
    queue: str | None,
    payload: str | None,
    workflow: str | None,
    input: str | None,
    catch_up: int,
    next_fire_at: datetime,
    now: datetime | None,
) -> ScheduleInfo:
    """Insert a schedule (arguments checked; `payload` and `input` stored JSON text)."""
    params: dict[str, Any] = {
        "name": name,
        "cron": cron,
        "timezone": timezone,
        "queue_name": queue,
        "payload": payload,
        "workflow_name": workflow,
        "input": input,
        "catch_up": catch_up,
        "paused": False,
        "next_fire_at": next_fire_at,
        "now": now,
    }
    try:
        row = await db.fetchone(db.sql.SCHEDULE_INSERT, params)
    except UniqueViolation as err:
        raise ValidationError(
            f"Validation failed: schedule '{name}' already exists: choose another name, or "
            "delete it first"
        ) from err
    assert row is not None
    return SCHEDULE.build(row)


async def find(db: Queryable, name: str) -> ScheduleInfo | None:
    row = await db.fetchone(db.sql.SCHEDULE_BY_NAME, {"name": name})
    return SCHEDULE.build(row) if row else None


async def get(db: Queryable, name: str) -> ScheduleInfo:
    found = await find(db, name)
    if found is None:
        raise _not_found(name)
    return found


async def list_all(db: Queryable) -> list[ScheduleInfo]:
    return [SCHEDULE.build(row) for row in await db.fetch(db.sql.SCHEDULE_LIST)]


async def due(db: Queryable, at: datetime) -> list[ScheduleInfo]:
    """Schedules not paused whose next tick is at or before `at`, the earliest first."""
    return [SCHEDULE.build(row) for row in await db.fetch(db.sql.SCHEDULE_DUE, {"at": at})]


async def next_fire(db: Queryable) -> datetime | None:
    """The earliest next tick of any schedule not paused; None when there is none."""
    row = await db.fetchone(db.sql.SCHEDULE_NEXT_FIRE)
    return from_db(row[0]) if row else None


async def set_paused(
    db: Queryable, name: str, paused: bool, next_fire_at: datetime | None = None
) -> ScheduleInfo:
    """Pause or resume; `next_fire_at` (resuming) replaces the next tick."""
    params = {"name": name, "paused": paused, "next": next_fire_at}
    row = await db.fetchone(db.sql.SCHEDULE_SET_PAUSED, params)
    if row is None:
        raise _not_found(name)
    return SCHEDULE.build(row)


async def delete(db: Queryable, name: str) -> bool:
    return await db.execute(db.sql.SCHEDULE_DELETE, {"name": name}) > 0


async def advance(
    db: Queryable, name: str, expected: datetime, next_fire_at: datetime, fired: datetime | None
) -> bool:
    """Move the schedule's next tick from `expected` to `next_fire_at` (and its last firing to
    `fired`, unless None); True when this call did it. Run it in the transaction that enqueues
    the ticks: of schedulers racing for the same tick, exactly one gets True."""
    params = {"name": name, "expected": expected, "next": next_fire_at, "fired": fired}
    return await db.execute(db.sql.SCHEDULE_ADVANCE, params) == 1
