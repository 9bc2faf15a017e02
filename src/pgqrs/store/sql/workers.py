"""Statements on `pgqrs_workers`: registration and guarded status changes."""

from __future__ import annotations

WORKER_COLS = "id, name, status, queue_id, heartbeat_at, started_at, shutdown_at"


class WorkerSql:
    WORKER_INSERT = (
        "INSERT INTO {s}pgqrs_workers (name, queue_id, started_at, heartbeat_at, status) "
        f"VALUES (:name, :queue_id, :now, :now, 'ready') RETURNING {WORKER_COLS}"
    )
    WORKER_REREGISTER = (
        "UPDATE {s}pgqrs_workers SET status = 'ready', queue_id = :queue_id, started_at = :now, "
        "heartbeat_at = :now, shutdown_at = NULL WHERE id = :id AND status = 'stopped' "
        f"RETURNING {WORKER_COLS}"
    )
    WORKER_BY_NAME = f"SELECT {WORKER_COLS} FROM {{s}}pgqrs_workers WHERE name = :name"
    WORKER_BY_ID = f"SELECT {WORKER_COLS} FROM {{s}}pgqrs_workers WHERE id = :id"
    WORKER_LIST = f"SELECT {WORKER_COLS} FROM {{s}}pgqrs_workers ORDER BY started_at DESC, id DESC"
    WORKER_COUNT = "SELECT COUNT(*) FROM {s}pgqrs_workers"
    WORKER_STATUS = "SELECT status FROM {s}pgqrs_workers WHERE id = :id"
    WORKER_SET_STATUS = (
        "UPDATE {s}pgqrs_workers SET status = :to WHERE id = :id AND status IN_LIST(:allowed) "
        "RETURNING status"
    )
    WORKER_SET_STATUS_BEAT = (
        "UPDATE {s}pgqrs_workers SET status = :to, heartbeat_at = :now "
        "WHERE id = :id AND status IN_LIST(:allowed) RETURNING status"
    )
    WORKER_STOP = (
        "UPDATE {s}pgqrs_workers SET status = 'stopped', shutdown_at = :now "
        "WHERE id = :id AND status IN_LIST(:allowed) RETURNING status"
    )
    WORKER_HEARTBEAT = "UPDATE {s}pgqrs_workers SET heartbeat_at = :now WHERE id = :id"
    WORKER_HELD_COUNT = (
        "SELECT COUNT(*) FROM {s}pgqrs_messages "
        "WHERE consumer_worker_id = :id AND archived_at IS NULL"
    )
