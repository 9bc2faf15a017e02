"""Queue metrics, system statistics and worker health (semantics.md §14): one statement each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import QueueNotFoundError
from ..store.executor import Queryable
from ..store.sql.columns import count
from ..store.sql.operations import HEALTH, HEALTH_BY_QUEUE, METRICS, STATS
from ..types import QueueMetrics, SystemStats, WorkerHealthStats
from . import queues

ADMIN_GROUP = "Admin"  # the health record of workers without a queue
GLOBAL_GROUP = "Global"  # the health record of every worker together
_QUEUE_ID, _QUEUE = HEALTH_BY_QUEUE.index("queue_id"), HEALTH_BY_QUEUE.index("queue")


def _params(now: datetime | None, max_read_ct: int, **extra: Any) -> dict[str, Any]:
    return {"now": now, "max_read_ct": max_read_ct, **extra}


async def queue_metrics(
    db: Queryable, name: str, now: datetime | None, max_read_ct: int
) -> QueueMetrics:
    queue = await queues.get_by_name(db, name)
    row = await db.fetchone(db.sql.QUEUE_METRICS, _params(now, max_read_ct, queue_id=queue.id))
    if row is None:  # deleted since the lookup
        raise QueueNotFoundError(f"Queue '{name}' not found")
    return METRICS.build(row)


async def all_queue_metrics(
    db: Queryable, now: datetime | None, max_read_ct: int
) -> list[QueueMetrics]:
    """Every queue, by name, empty ones included."""
    rows = await db.fetch(db.sql.QUEUE_METRICS_ALL, _params(now, max_read_ct))
    return [METRICS.build(row) for row in rows]


async def system_stats(db: Queryable, now: datetime | None, max_read_ct: int) -> SystemStats:
    row = await db.fetchone(db.sql.SYSTEM_STATS, _params(now, max_read_ct))
    assert row is not None  # aggregates without GROUP BY always give one row
    return STATS.build(row)


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
        return [HEALTH.build(row, GLOBAL_GROUP)]
    rows = await db.fetch(db.sql.WORKER_HEALTH_BY_QUEUE, params)
    stats = [
        HEALTH_BY_QUEUE.build(r, ADMIN_GROUP if r[_QUEUE_ID] is None else r[_QUEUE]) for r in rows
    ]
    return sorted(stats, key=lambda s: s.queue_name)


async def throughput(db: Queryable, since: datetime) -> dict[str, tuple[int, int]]:
    """Per queue name: (messages archived, messages enqueued) since `since`."""
    rows = await db.fetch(db.sql.QUEUE_THROUGHPUT, {"since": since})
    return {row[0]: (count(row[1]), count(row[2])) for row in rows}
