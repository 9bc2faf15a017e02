"""Statements on `pgqrs_queues` (and what deleting or purging a queue takes with it)."""

from __future__ import annotations

from .columns import QUEUE, SETTINGS
from .spelling import read

# The settings a queue row stores (semantics.md §7.6), in SETTINGS's order after its name.
_SETTINGS = ("max_read_ct", "max_payload_size_bytes", "max_string_length", "max_object_depth")
_INSERT = (
    "INSERT INTO {s}pgqrs_queues (queue_name, created_at, "
    + ", ".join(_SETTINGS)
    + ") VALUES (:name, :now, "
    + ", ".join(f":{name}" for name in _SETTINGS)
    + ") "
)


class QueueSql:
    QUEUE_INSERT = _INSERT + f"RETURNING {QUEUE.select}"
    QUEUE_INSERT_IF_ABSENT = (
        _INSERT + f"ON CONFLICT (queue_name) DO NOTHING RETURNING {QUEUE.select}"
    )
    QUEUE_SETTINGS = read(f"SELECT {SETTINGS.select} FROM {{s}}pgqrs_queues WHERE id = :id")
    QUEUE_SETTINGS_BY_NAME = read(
        f"SELECT {SETTINGS.select} FROM {{s}}pgqrs_queues WHERE queue_name = :name"
    )
    # One statement for any subset of the settings: `:set_<name>` is 1 for those to change
    # (to `:<name>`, NULL included), 0 for those to keep.
    QUEUE_UPDATE_SETTINGS = (
        "UPDATE {s}pgqrs_queues SET "
        + ", ".join(
            f"{name} = CASE WHEN :set_{name} = 1 THEN :{name} ELSE {name} END" for name in _SETTINGS
        )
        + f" WHERE id = :id RETURNING {SETTINGS.select}"
    )
    QUEUE_BY_NAME = read(f"SELECT {QUEUE.select} FROM {{s}}pgqrs_queues WHERE queue_name = :name")
    QUEUE_BY_ID = read(f"SELECT {QUEUE.select} FROM {{s}}pgqrs_queues WHERE id = :id")
    QUEUE_LIST = read(f"SELECT {QUEUE.select} FROM {{s}}pgqrs_queues ORDER BY id")
    QUEUE_COUNT = read("SELECT COUNT(*) FROM {s}pgqrs_queues")
    QUEUE_DELETE = "DELETE FROM {s}pgqrs_queues WHERE id = :id"
    QUEUE_HAS_MESSAGES = read(
        "SELECT EXISTS (SELECT 1 FROM {s}pgqrs_messages WHERE queue_id = :id)"
    )
    QUEUE_ACTIVE_WORKERS = read(
        "SELECT COUNT(*) FROM {s}pgqrs_workers WHERE queue_id = :id AND status <> 'stopped'"
    )
    QUEUE_HAS_WORKFLOW = read(
        "SELECT EXISTS (SELECT 1 FROM {s}pgqrs_workflows WHERE queue_id = :id)"
    )
    QUEUE_IS_WORKFLOW_QUEUE = read(
        "SELECT EXISTS (SELECT 1 FROM {s}pgqrs_workflows WHERE queue_id = :id)"
    )
    # Stopped workers go with their queue, unless a message elsewhere still names them.
    QUEUE_DELETE_STOPPED_WORKERS = (
        "DELETE FROM {s}pgqrs_workers WHERE queue_id = :id AND status = 'stopped' "
        "AND NOT EXISTS (SELECT 1 FROM {s}pgqrs_messages m WHERE m.producer_worker_id = "
        "{s}pgqrs_workers.id) "
        "AND NOT EXISTS (SELECT 1 FROM {s}pgqrs_messages m WHERE m.consumer_worker_id = "
        "{s}pgqrs_workers.id) "
        "AND NOT EXISTS (SELECT 1 FROM {s}pgqrs_workflow_runs r WHERE r.worker_id = "
        "{s}pgqrs_workers.id)"
    )
    QUEUE_PURGE_STEPS = (
        "DELETE FROM {s}pgqrs_workflow_steps WHERE run_id IN (SELECT r.id FROM "
        "{s}pgqrs_workflow_runs r JOIN {s}pgqrs_messages m ON m.id = r.message_id "
        "WHERE m.queue_id = :id)"
    )
    QUEUE_PURGE_RUNS = (
        "DELETE FROM {s}pgqrs_workflow_runs WHERE message_id IN "
        "(SELECT id FROM {s}pgqrs_messages WHERE queue_id = :id)"
    )
    QUEUE_PURGE_MESSAGES = "DELETE FROM {s}pgqrs_messages WHERE queue_id = :id"
