"""Statements of the operations API (semantics.md §14): metrics, health, recovery, dead letters,
cleanup.

Message states follow semantics.md §7.1 at `:now` with `:max_read_ct` as the poison threshold.
Every metrics statement reads unarchived rows through the partial hot-path index and archived
rows through the partial archived index, so a queue's history never costs a table scan.
"""

from __future__ import annotations

from ..._clock import db_to_api
from ...types import QueueMetrics, SystemStats, WorkerHealthStats
from .columns import MESSAGE, Column, Shape, count, latest_time
from .messages import QUEUE_LIMIT
from .spelling import read

# -- message states (semantics.md §7.1); each assumes `archived_at IS NULL` ----------------------
# `{limit}` is the row's poison threshold: the queue's own `max_read_ct`, else :max_read_ct.
_LEASED = "consumer_worker_id IS NOT NULL AND TS(vt) > :now"
_NOT_LEASED = "(consumer_worker_id IS NULL OR vt IS NULL OR TS(vt) <= :now)"
_PENDING = "COALESCE(read_ct, 0) < {limit} AND (vt IS NULL OR TS(vt) <= :now)"
_DELAYED = "COALESCE(read_ct, 0) < {limit} AND TS(vt) > :now AND consumer_worker_id IS NULL"
_POISON = "COALESCE(read_ct, 0) >= {limit} AND " + _NOT_LEASED

# The threshold of queue :queue_id (one queue), of the joined queue `lq` (every queue), and of
# the message row's own queue (`queue_id` is the outer row's: pgqrs_queues has no such column).
_ONE_QUEUE = QUEUE_LIMIT
_JOINED = "COALESCE(lq.max_read_ct, :max_read_ct)"
_ROW_QUEUE = (
    "COALESCE((SELECT mq.max_read_ct FROM {s}pgqrs_queues mq WHERE mq.id = queue_id), :max_read_ct)"
)


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


# Aggregates over unarchived rows: total, pending, delayed, leased, poison, oldest pending
# enqueue, newest enqueue.
def _live_aggregates(limit: str) -> str:
    pending = _PENDING.format(limit=limit)
    return (
        "COUNT(*) AS live_total, "
        f"{_count(pending)} AS pending, {_count(_DELAYED.format(limit=limit))} AS delayed, "
        f"{_count(_LEASED)} AS locked, {_count(_POISON.format(limit=limit))} AS poison, "
        f"MIN(CASE WHEN {pending} THEN enqueued_at END) AS oldest_pending, "
        "MAX(enqueued_at) AS live_newest"
    )


_DONE_AGGREGATES = "COUNT(*) AS archived, MAX(enqueued_at) AS done_newest"

# The row every queue-metrics statement returns (from `q`, `live` and `done`).
METRICS = Shape(
    QueueMetrics,
    Column("name", sql="q.queue_name"),
    Column(
        "total_messages", count, sql="COALESCE(live.live_total, 0) + COALESCE(done.archived, 0)"
    ),
    Column("pending_messages", count, sql="live.pending"),
    Column("delayed_messages", count, sql="live.delayed"),
    Column("locked_messages", count, sql="live.locked"),
    Column("poison_messages", count, sql="live.poison"),
    Column("archived_messages", count, sql="done.archived"),
    Column("oldest_pending_message", db_to_api, sql="live.oldest_pending"),
    Column("live_newest", field=None, sql="live.live_newest"),
    Column("done_newest", field=None, sql="done.done_newest"),
    combined={"newest_message": (latest_time, ("live_newest", "done_newest"))},
)
_METRICS_SELECT = f"SELECT {METRICS.select}"

# The row of SYSTEM_STATS (from `live` and `done`).
STATS = Shape(
    SystemStats,
    Column("total_queues", count, sql="(SELECT COUNT(*) FROM {s}pgqrs_queues)"),
    Column("total_workers", count, sql="(SELECT COUNT(*) FROM {s}pgqrs_workers)"),
    Column(
        "active_workers",
        count,
        sql="(SELECT COUNT(*) FROM {s}pgqrs_workers WHERE status IN ('ready', 'polling'))",
    ),
    Column("total_messages", count, sql="live.live_total + done.archived"),
    Column("pending_messages", count, sql="live.pending"),
    Column("delayed_messages", count, sql="live.delayed"),
    Column("locked_messages", count, sql="live.locked"),
    Column("poison_messages", count, sql="live.poison"),
    Column("archived_messages", count, sql="done.archived"),
    Column(
        "schema_version",
        lambda version: str(count(version)),
        sql="(SELECT MAX(version) FROM {s}pgqrs_py_migrations)",
    ),
)

# A message was a dead letter when it reached the poison threshold and was not leased: now for
# an unarchived row, at its archive time for an archived one (what `dlq()` archives).
_DEAD_LETTER = (
    "COALESCE(read_ct, 0) >= {limit} AND (consumer_worker_id IS NULL OR vt IS NULL "
    "OR TS(vt) <= COALESCE(TS(archived_at), :now))"
)

# Nothing may still point at a worker that is deleted.
_WORKER_UNREFERENCED = (
    "NOT EXISTS (SELECT 1 FROM {s}pgqrs_messages m WHERE m.producer_worker_id = "
    "{s}pgqrs_workers.id) "
    "AND NOT EXISTS (SELECT 1 FROM {s}pgqrs_messages m WHERE m.consumer_worker_id = "
    "{s}pgqrs_workers.id) "
    "AND NOT EXISTS (SELECT 1 FROM {s}pgqrs_workflow_runs r WHERE r.worker_id = "
    "{s}pgqrs_workers.id)"
)

# How long a worker may stay silent: :window when the caller names one (an admin sweep), else
# :factor heartbeats of the interval the worker's own loop promised (:interval for workers that
# never said). A sweeping poll loop also passes :healthy_for, how long its own database calls
# have succeeded without a gap: a worker is judged only on a silence the sweeper saw in full,
# so after an outage that stalled everyone nobody is stopped for the outage itself.
_SILENCE = (
    "COALESCE(CAST(:window AS DOUBLE PRECISION), "
    ":factor * COALESCE(heartbeat_interval_seconds, :interval))"
)
# `:statuses` are the statuses a sweep may stop (every one but `stopped` for an admin call).
_STALE = (
    "status IN_LIST(:statuses) AND id <> :exclude "
    f"AND TS(heartbeat_at) < {{s}}pgqrs_add_seconds(:now, -{_SILENCE}) "
    f"AND (CAST(:healthy_for AS DOUBLE PRECISION) IS NULL OR :healthy_for >= {_SILENCE})"
)

# Worker counts by status (of the workers `w`); stale: `ready`/`polling` workers whose last
# beat is before :cutoff. The caller names the group (`given`).
_HEALTH = (
    Column("total_workers", count, sql="COUNT(w.id)"),
    *(
        Column(f"{status}_workers", count, sql=_count(f"w.status = '{status}'"))
        for status in ("ready", "polling", "interrupted", "suspended", "stopped")
    ),
    Column(
        "stale_workers",
        count,
        sql=_count("w.status IN ('ready', 'polling') AND TS(w.heartbeat_at) < :cutoff"),
    ),
)
HEALTH = Shape(WorkerHealthStats, *_HEALTH, given=("queue_name",))
# ... grouped by queue: the queue's id and name first (no queue: the admin group).
HEALTH_BY_QUEUE = Shape(
    WorkerHealthStats,
    Column("queue_id", field=None, sql="w.queue_id"),
    Column("queue", field=None, sql="q.queue_name"),
    *_HEALTH,
    given=("queue_name",),
)


class OperationsSql:
    # -- metrics -----------------------------------------------------------------------------
    # The queue id is a bound value, not a subquery, so PostgreSQL plans for that queue's own
    # row counts: a small queue inside a big table gets a plain index scan, no parallel workers.
    QUEUE_METRICS = (
        f"WITH live AS (SELECT {_live_aggregates(_ONE_QUEUE)} FROM {{s}}pgqrs_messages "
        "WHERE queue_id = :queue_id AND archived_at IS NULL), "
        f"done AS (SELECT {_DONE_AGGREGATES} FROM {{s}}pgqrs_messages "
        "WHERE queue_id = :queue_id AND archived_at IS NOT NULL) "
        f"{_METRICS_SELECT} FROM {{s}}pgqrs_queues q, live, done WHERE q.id = :queue_id"
    )
    QUEUE_METRICS_ALL = (
        f"WITH live AS (SELECT queue_id, {_live_aggregates(_JOINED)} FROM {{s}}pgqrs_messages "
        "JOIN {s}pgqrs_queues lq ON lq.id = queue_id "
        "WHERE archived_at IS NULL GROUP BY queue_id), "
        f"done AS (SELECT queue_id, {_DONE_AGGREGATES} FROM {{s}}pgqrs_messages "
        "WHERE archived_at IS NOT NULL GROUP BY queue_id) "
        f"{_METRICS_SELECT} FROM {{s}}pgqrs_queues q "
        "LEFT JOIN live ON live.queue_id = q.id LEFT JOIN done ON done.queue_id = q.id "
        "ORDER BY q.queue_name"
    )
    SYSTEM_STATS = (
        f"WITH live AS (SELECT {_live_aggregates(_JOINED)} FROM {{s}}pgqrs_messages "
        "JOIN {s}pgqrs_queues lq ON lq.id = queue_id WHERE archived_at IS NULL), "
        "done AS (SELECT COUNT(*) AS archived FROM {s}pgqrs_messages "
        "WHERE archived_at IS NOT NULL) "
        f"SELECT {STATS.select} FROM live, done"
    )
    # Per queue: messages archived and messages enqueued since :since (throughput). Each count
    # is an index range scan of that queue: (queue_id, archived_at) for the archived side,
    # (queue_id, enqueued_at) of archived rows and the hot-path index of live rows for arrivals.
    QUEUE_THROUGHPUT = read(
        "SELECT q.queue_name, "
        "(SELECT COUNT(*) FROM {s}pgqrs_messages m WHERE m.queue_id = q.id "
        "AND m.archived_at IS NOT NULL AND TS(m.archived_at) >= :since), "
        "(SELECT COUNT(*) FROM {s}pgqrs_messages m WHERE m.queue_id = q.id "
        "AND m.archived_at IS NOT NULL AND TS(m.enqueued_at) >= :since) + "
        "(SELECT COUNT(*) FROM {s}pgqrs_messages m WHERE m.queue_id = q.id "
        "AND m.archived_at IS NULL AND TS(m.enqueued_at) >= :since) "
        "FROM {s}pgqrs_queues q ORDER BY q.queue_name"
    )
    WORKER_HEALTH_GLOBAL = read(f"SELECT {HEALTH.select} FROM {{s}}pgqrs_workers w")
    WORKER_HEALTH_BY_QUEUE = read(
        f"SELECT {HEALTH_BY_QUEUE.select} FROM {{s}}pgqrs_workers w "
        "LEFT JOIN {s}pgqrs_queues q ON q.id = w.queue_id GROUP BY w.queue_id, q.queue_name"
    )

    # -- recovery ----------------------------------------------------------------------------
    # Oldest heartbeat first: the longest-silent worker gives its messages back first.
    STALE_WORKERS = read(
        f"SELECT id FROM {{s}}pgqrs_workers WHERE {_STALE} ORDER BY heartbeat_at, id"
    )
    STALE_WORKERS_OF_QUEUE = read(
        f"SELECT id FROM {{s}}pgqrs_workers WHERE queue_id = :queue_id AND {_STALE} "
        "ORDER BY heartbeat_at, id"
    )
    # Re-checks staleness under the row lock: a worker that beat meanwhile is left alone.
    STOP_STALE_WORKER = (
        "UPDATE {s}pgqrs_workers SET status = 'stopped', shutdown_at = :now "
        f"WHERE id = :id AND {_STALE} RETURNING id"
    )

    # -- dead letters ------------------------------------------------------------------------
    DLQ_ARCHIVE = (
        "UPDATE {s}pgqrs_messages SET archived_at = :now "
        f"WHERE archived_at IS NULL AND {_POISON.format(limit=_ROW_QUEUE)} RETURNING id"
    )
    DLQ_ARCHIVE_QUEUE = (
        "UPDATE {s}pgqrs_messages SET archived_at = :now WHERE queue_id = :queue_id "
        f"AND archived_at IS NULL AND {_POISON.format(limit=_ONE_QUEUE)} RETURNING id"
    )
    # One dead letter by id (an operator's choice per message); its read count names the
    # deliveries in the reason its workflow run ends with.
    DLQ_ARCHIVE_ONE = (
        "UPDATE {s}pgqrs_messages SET archived_at = :now WHERE id = :id "
        f"AND archived_at IS NULL AND {_POISON.format(limit=_ROW_QUEUE)} RETURNING id, read_ct"
    )
    DLQ_LIST = read(
        f"SELECT {MESSAGE.select} FROM {{s}}pgqrs_messages "
        f"WHERE {_DEAD_LETTER.format(limit=_ROW_QUEUE)} ORDER BY id"
    )
    DLQ_LIST_QUEUE = read(
        f"SELECT {MESSAGE.select} FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id "
        f"AND {_DEAD_LETTER.format(limit=_ONE_QUEUE)} ORDER BY id"
    )
    DLQ_REPLAY = (
        "UPDATE {s}pgqrs_messages SET read_ct = 0, vt = :now, enqueued_at = :now, "
        "archived_at = NULL, consumer_worker_id = NULL, dequeued_at = NULL "
        f"WHERE id = :id AND (archived_at IS NOT NULL OR ({_POISON.format(limit=_ROW_QUEUE)})) "
        f"RETURNING {MESSAGE.select}"
    )

    # -- cleanup -----------------------------------------------------------------------------
    WORKER_DELETE_STOPPED = (
        "DELETE FROM {s}pgqrs_workers WHERE id = :id AND status = 'stopped' "
        f"AND {_WORKER_UNREFERENCED} RETURNING id"
    )
    WORKER_REFERENCES = read(
        "SELECT (SELECT COUNT(*) FROM {s}pgqrs_messages WHERE producer_worker_id = :id), "
        "(SELECT COUNT(*) FROM {s}pgqrs_messages WHERE consumer_worker_id = :id), "
        "(SELECT COUNT(*) FROM {s}pgqrs_workflow_runs WHERE worker_id = :id)"
    )
    # Purging stopped workers (semantics.md §14), a chunk at a time by id: those stopped before
    # :cutoff that hold no unarchived message (a stopped worker may still settle what it holds
    # under a running lease) and that no run names. What else names them (the producer of any
    # message, the consumer of an archived one) is cleared first, in the same transaction.
    WORKERS_PURGEABLE = (
        "SELECT id FROM {s}pgqrs_workers WHERE status = 'stopped' AND id > :after "
        "AND (TS(shutdown_at) < :cutoff OR (shutdown_at IS NULL AND TS(heartbeat_at) < :cutoff)) "
        "AND NOT EXISTS (SELECT 1 FROM {s}pgqrs_messages m WHERE m.consumer_worker_id = "
        "{s}pgqrs_workers.id AND m.archived_at IS NULL) "
        "AND NOT EXISTS (SELECT 1 FROM {s}pgqrs_workflow_runs r WHERE r.worker_id = "
        "{s}pgqrs_workers.id) ORDER BY id LIMIT :limit"
    )
    WORKERS_UNLINK_PRODUCED = (
        "UPDATE {s}pgqrs_messages SET producer_worker_id = NULL "
        "WHERE producer_worker_id IN_LIST(:ids)"
    )
    WORKERS_UNLINK_ARCHIVED = (
        "UPDATE {s}pgqrs_messages SET consumer_worker_id = NULL "
        "WHERE archived_at IS NOT NULL AND consumer_worker_id IN_LIST(:ids)"
    )
    WORKERS_DELETE_PURGEABLE = (
        "DELETE FROM {s}pgqrs_workers WHERE id IN_LIST(:ids) AND status = 'stopped' "
        f"AND {_WORKER_UNREFERENCED}"
    )
    WORKER_MESSAGES = read(
        f"SELECT {MESSAGE.select} FROM {{s}}pgqrs_messages WHERE consumer_worker_id = :id "
        "AND archived_at IS NULL ORDER BY id"
    )
    # One bounded chunk, oldest archive first; a message a workflow run points at is kept.
    PURGE_ARCHIVED_CHUNK = (
        "DELETE FROM {s}pgqrs_messages WHERE id IN (SELECT m.id FROM {s}pgqrs_messages m "
        "WHERE m.queue_id = :queue_id AND m.archived_at IS NOT NULL "
        "AND TS(m.archived_at) < :cutoff "
        "AND NOT EXISTS (SELECT 1 FROM {s}pgqrs_workflow_runs r WHERE r.message_id = m.id) "
        "ORDER BY m.archived_at LIMIT :limit)"
    )


class OperationsPostgres(OperationsSql):
    # Concurrent purgers skip each other's chunks instead of queueing on row locks.
    PURGE_ARCHIVED_CHUNK = (
        "DELETE FROM {s}pgqrs_messages WHERE id IN (SELECT m.id FROM {s}pgqrs_messages m "
        "WHERE m.queue_id = :queue_id AND m.archived_at IS NOT NULL "
        "AND TS(m.archived_at) < :cutoff "
        "AND NOT EXISTS (SELECT 1 FROM {s}pgqrs_workflow_runs r WHERE r.message_id = m.id) "
        "ORDER BY m.archived_at LIMIT :limit FOR UPDATE OF m SKIP LOCKED)"
    )
