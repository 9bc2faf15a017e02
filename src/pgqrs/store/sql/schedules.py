"""Statements on `pgqrs_schedules` (this library's table): cron schedules (semantics.md §17).

The one that matters is `SCHEDULE_ADVANCE`, the compare-and-set every scheduler runs before it
enqueues a tick: it changes the row only while `next_fire_at` is still the tick the scheduler
read, so of several schedulers firing the same tick exactly one sees a row changed (on
PostgreSQL the others wait on the row lock and then match nothing; on SQLite the write lock
serializes them).
"""

from __future__ import annotations

from .columns import SCHEDULE
from .spelling import read

_COLUMNS = (
    "name, cron, timezone, queue_name, payload, workflow_name, input, catch_up, paused, "
    "next_fire_at, created_at"
)


class ScheduleSql:
    SCHEDULE_INSERT = (
        f"INSERT INTO {{s}}pgqrs_schedules ({_COLUMNS}) VALUES (:name, :cron, :timezone, "
        ":queue_name, :payload, :workflow_name, :input, :catch_up, :paused, :next_fire_at, "
        f":now) RETURNING {SCHEDULE.select}"
    )
    SCHEDULE_BY_NAME = read(
        f"SELECT {SCHEDULE.select} FROM {{s}}pgqrs_schedules WHERE name = :name"
    )
    SCHEDULE_LIST = read(f"SELECT {SCHEDULE.select} FROM {{s}}pgqrs_schedules ORDER BY name")
    # Due at `:at`, the earliest first; paused schedules never fire.
    SCHEDULE_DUE = read(
        f"SELECT {SCHEDULE.select} FROM {{s}}pgqrs_schedules "
        "WHERE NOT paused AND TS(next_fire_at) <= :at ORDER BY next_fire_at, name"
    )
    SCHEDULE_NEXT_FIRE = read("SELECT MIN(next_fire_at) FROM {s}pgqrs_schedules WHERE NOT paused")
    # The compare-and-set of a firing: 1 row changed means this scheduler fires the ticks.
    SCHEDULE_ADVANCE = (
        "UPDATE {s}pgqrs_schedules SET next_fire_at = :next, "
        "last_fire_at = COALESCE(:fired, last_fire_at) "
        "WHERE name = :name AND next_fire_at = :expected AND NOT paused"
    )
    # Pausing keeps the next tick; resuming starts again from the tick after "now" (`:next`).
    SCHEDULE_SET_PAUSED = (
        "UPDATE {s}pgqrs_schedules SET paused = :paused, "
        "next_fire_at = COALESCE(:next, next_fire_at) "
        f"WHERE name = :name RETURNING {SCHEDULE.select}"
    )
    SCHEDULE_DELETE = "DELETE FROM {s}pgqrs_schedules WHERE name = :name"
