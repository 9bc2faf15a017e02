"""Statements on `pgqrs_workers`: registration and guarded status changes.

`fence` is drawn anew each time a name registers (a fresh row or a stopped one brought back);
statements given a `:fence` act only while the row is still that registration, so a handle left
over from an earlier one (a process that was cut off, then replaced) changes nothing. Admin
handles pass NULL and act on whatever registration the row has.
"""

from __future__ import annotations

from .columns import WORKER
from .spelling import read

_THIS_REGISTRATION = "(CAST(:fence AS BIGINT) IS NULL OR fence = :fence)"


class WorkerSql:
    WORKER_INSERT = (
        "INSERT INTO {s}pgqrs_workers (name, queue_id, started_at, heartbeat_at, status, fence) "
        f"VALUES (:name, :queue_id, :now, :now, 'ready', :fence) RETURNING {WORKER.select}"
    )
    WORKER_REREGISTER = (
        "UPDATE {s}pgqrs_workers SET status = 'ready', queue_id = :queue_id, started_at = :now, "
        "heartbeat_at = :now, shutdown_at = NULL, fence = :fence, "
        "heartbeat_interval_seconds = NULL WHERE id = :id AND status = 'stopped' "
        f"RETURNING {WORKER.select}"
    )
    WORKER_BY_NAME = read(f"SELECT {WORKER.select} FROM {{s}}pgqrs_workers WHERE name = :name")
    WORKER_BY_ID = read(f"SELECT {WORKER.select} FROM {{s}}pgqrs_workers WHERE id = :id")
    WORKER_LIST = read(
        f"SELECT {WORKER.select} FROM {{s}}pgqrs_workers ORDER BY started_at DESC, id DESC"
    )
    WORKER_COUNT = read("SELECT COUNT(*) FROM {s}pgqrs_workers")
    # (status, fence): read by position where it is used.
    WORKER_STATUS = read("SELECT status, fence FROM {s}pgqrs_workers WHERE id = :id")
    WORKER_SET_STATUS = (
        "UPDATE {s}pgqrs_workers SET status = :to WHERE id = :id AND status IN_LIST(:allowed) "
        f"AND {_THIS_REGISTRATION} RETURNING status"
    )
    WORKER_SET_STATUS_BEAT = (
        "UPDATE {s}pgqrs_workers SET status = :to, heartbeat_at = :now "
        f"WHERE id = :id AND status IN_LIST(:allowed) AND {_THIS_REGISTRATION} RETURNING status"
    )
    # A poll loop starts: `polling`, a fresh beat, and the interval it promises to beat at,
    # by which every sweep judges it (docs/guarantees.md, "Worker lifecycle").
    WORKER_START_POLLING = (
        "UPDATE {s}pgqrs_workers SET status = 'polling', heartbeat_at = :now, "
        "heartbeat_interval_seconds = :interval WHERE id = :id AND status IN ('ready', 'polling') "
        f"AND {_THIS_REGISTRATION} RETURNING status"
    )
    WORKER_STOP = (
        "UPDATE {s}pgqrs_workers SET status = 'stopped', shutdown_at = :now "
        f"WHERE id = :id AND status IN_LIST(:allowed) AND {_THIS_REGISTRATION} RETURNING status"
    )
    WORKER_HEARTBEAT = (
        "UPDATE {s}pgqrs_workers SET heartbeat_at = :now "
        f"WHERE id = :id AND {_THIS_REGISTRATION} RETURNING status"
    )
    # A producer's beat, written as it sends (semantics.md §9.3): a producer that sends is
    # live, so one stopped meanwhile (an idle producer a sweep judged stale) is `ready` again.
    PRODUCER_BEAT = (
        "UPDATE {s}pgqrs_workers SET heartbeat_at = :now, "
        "shutdown_at = CASE WHEN status = 'stopped' THEN NULL ELSE shutdown_at END, "
        "status = CASE WHEN status = 'stopped' THEN 'ready' ELSE status END "
        f"WHERE id = :id AND fence = :fence RETURNING {WORKER.select}"
    )
    WORKER_HELD_COUNT = read(
        "SELECT COUNT(*) FROM {s}pgqrs_messages "
        "WHERE consumer_worker_id = :id AND archived_at IS NULL"
    )
