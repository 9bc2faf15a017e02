"""Queue metrics, system statistics and worker health (semantics §14): one statement each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .._clock import db_to_api, from_db
from ..errors import QueueNotFoundError
from ..store.executor import Queryable
from ..types import QueueMetrics, SystemStats, WorkerHealthStats
from . import queues

ADMIN_GROUP = "Admin"  # the health record of workers without a queue
GLOBAL_GROUP = "Global"  # the health record of every worker together


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


def _newest(*stored: Any) -> str | None:
    """The latest of stored timestamps (text on SQLite, datetimes on Postgres), API form."""
    moments = [m for m in (from_db(s) for s in stored) if m is not None]
    return db_to_api(max(moments)) if moments else None


def _metrics(row: Sequence[Any]) -> QueueMetrics:
    return QueueMetrics(
        name=row[0],
        total_messages=_int(row[1]),
        pending_messages=_int(row[2]),
        delayed_messages=_int(row[3]),
        locked_messages=_int(row[4]),
        poison_messages=_int(row[5]),
        archived_messages=_int(row[6]),
        oldest_pending_message=db_to_api(row[7]),
        newest_message=_newest(row[8], row[9]),
    )


def _params(now: datetime | None, max_read_ct: int, **extra: Any) -> dict[str, Any]:
    return {"now": now, "max_read_ct": max_read_ct, **extra}


async def queue_metrics(
    db: Queryable, name: str, now: datetime | None, max_read_ct: int
) -> QueueMetrics:
    queue = await queues.get_by_name(db, name)
    row = await db.fetchone(db.sql.QUEUE_METRICS, _params(now, max_read_ct, queue_id=queue.id))
    if row is None:  # deleted since the lookup
        raise QueueNotFoundError(f"Queue '{name}' not found")
    return _metrics(row)


async def all_queue_metrics(
    db: Queryable, now: datetime | None, max_read_ct: int
) -> list[QueueMetrics]:
    """Every queue, by name, empty ones included."""
    return [
        _metrics(row) for row in await db.fetch(db.sql.QUEUE_METRICS_ALL, _params(now, max_read_ct))
    ]


async def system_stats(db: Queryable, now: datetime | None, max_read_ct: int) -> SystemStats:
    row = await db.fetchone(db.sql.SYSTEM_STATS, _params(now, max_read_ct))
    assert row is not None  # aggregates without GROUP BY always give one row
    return SystemStats(
        total_queues=_int(row[0]),
        total_workers=_int(row[1]),
        active_workers=_int(row[2]),
        total_messages=_int(row[3]),
        pending_messages=_int(row[4]),
        delayed_messages=_int(row[5]),
        locked_messages=_int(row[6]),
        poison_messages=_int(row[7]),
        archived_messages=_int(row[8]),
        schema_version=str(_int(row[9])),
    )


def _health(name: str, counts: Sequence[Any]) -> WorkerHealthStats:
    total, ready, polling, interrupted, suspended, stopped, stale = (_int(c) for c in counts)
    return WorkerHealthStats(
        queue_name=name,
        total_workers=total,
        ready_workers=ready,
        polling_workers=polling,
        interrupted_workers=interrupted,
        suspended_workers=suspended,
        stopped_workers=stopped,
        stale_workers=stale,
    )


async def worker_health(
    db: Queryable, cutoff: datetime, *, group_by_queue: bool
) -> list[WorkerHealthStats]:
    """Per-status counts; stale = `ready`/`polling` workers whose last beat is before `cutoff`.

    Grouped: one record per queue that has workers, plus "Admin" for workers without a queue,
    ordered by name. Not grouped: one "Global" record.
    """
    params = {"cutoff": cutoff}
    if not group_by_queue:
        row = await db.fetchone(db.sql.WORKER_HEALTH_GLOBAL, params)
        assert row is not None
        return [_health(GLOBAL_GROUP, row)]
    rows = await db.fetch(db.sql.WORKER_HEALTH_BY_QUEUE, params)
    stats = [_health(ADMIN_GROUP if r[0] is None else r[1], r[2:]) for r in rows]
    return sorted(stats, key=lambda s: s.queue_name)


async def throughput(db: Queryable, since: datetime) -> dict[str, tuple[int, int]]:
    """Per queue name: (messages archived, messages enqueued) since `since`."""
    rows = await db.fetch(db.sql.QUEUE_THROUGHPUT, {"since": since})
    return {row[0]: (_int(row[1]), _int(row[2])) for row in rows}
