"""Statements of runs that wait and talk (semantics.md §18): signals, events, child runs, run
deadlines, and the wake-up of a waiting run's trigger message.

A run waits with its trigger message given back, invisible until a planned time. Whoever
changes what it waits for (a signal sent, a child finished) locks the run's row
(`RUN_LOCK`), then makes the message visible if no consumer holds it (`MSG_WAKE`); the
worker that gives a waiting run's message back locks the same row first and looks again at
what it waits for. The lock orders the two, so a wake-up is never lost between them.
"""

from __future__ import annotations

from .columns import RUN
from .spelling import read

_OPEN_RUN = "status IN ('QUEUED', 'RUNNING', 'PAUSED', 'CANCELLING')"


class WaitSql:
    # -- the run as a point of synchronisation --------------------------------------------------
    # Locks an open run's row (Postgres holds it to the end of the transaction; SQLite has one
    # writer); its trigger message and status, or nothing when the run is missing or finished.
    RUN_LOCK = (
        "UPDATE {s}pgqrs_workflow_runs SET updated_at = updated_at "
        f"WHERE id = :id AND {_OPEN_RUN} RETURNING message_id, status"
    )
    RUN_LOCK_ANY = (
        "UPDATE {s}pgqrs_workflow_runs SET updated_at = updated_at WHERE id = :id "
        "RETURNING message_id, status"
    )
    # The trigger message of a waiting run, visible now; unchanged while a consumer holds it
    # (that consumer looks again before giving it back) or once it is archived.
    MSG_WAKE = (
        "UPDATE {s}pgqrs_messages SET vt = :now WHERE id = :id AND archived_at IS NULL "
        "AND consumer_worker_id IS NULL AND (vt IS NULL OR TS(vt) > :now) RETURNING queue_id"
    )

    # -- signals -------------------------------------------------------------------------------
    SIGNAL_INSERT = (
        "INSERT INTO {s}pgqrs_workflow_signals (run_id, topic, payload, created_at) "
        "VALUES (:run_id, :topic, :payload, :now) RETURNING id, created_at"
    )
    # The oldest unconsumed signal of the topic, consumed by step :step. (The outer test of
    # `consumed_at` makes a concurrent second consumer of the same row change nothing.)
    SIGNAL_CONSUME = (
        "UPDATE {s}pgqrs_workflow_signals SET consumed_at = :now, consumed_by = :step "
        "WHERE id = (SELECT id FROM {s}pgqrs_workflow_signals WHERE run_id = :run_id "
        "AND topic = :topic AND consumed_at IS NULL ORDER BY id LIMIT 1) "
        "AND consumed_at IS NULL "
        "RETURNING id, topic, payload, created_at"
    )
    SIGNAL_PENDING = read(
        "SELECT id FROM {s}pgqrs_workflow_signals WHERE run_id = :run_id AND topic = :topic "
        "AND consumed_at IS NULL LIMIT 1"
    )

    # -- events --------------------------------------------------------------------------------
    EVENT_SET = (
        "INSERT INTO {s}pgqrs_workflow_events (run_id, key, value, created_at, updated_at) "
        "VALUES (:run_id, :key, :value, :now, :now) ON CONFLICT (run_id, key) DO UPDATE SET "
        "value = excluded.value, updated_at = excluded.updated_at"
    )
    EVENT_GET = read(
        "SELECT key, value, updated_at FROM {s}pgqrs_workflow_events "
        "WHERE run_id = :run_id AND key = :key"
    )

    # -- child runs and deadlines --------------------------------------------------------------
    # A run created with its trigger message, before any delivery (a child run, a run with a
    # deadline); `runs.get_or_create` finds it when the message is delivered.
    RUN_CREATE = (
        "INSERT INTO {s}pgqrs_workflow_runs (workflow_id, message_id, status, input, "
        "parent_run_id, deadline_at, created_at, updated_at) "
        "VALUES (:workflow_id, :message_id, 'QUEUED', :input, :parent_run_id, :deadline_at, "
        f":now, :now) RETURNING {RUN.select}"
    )
    RUN_OUTCOMES = read(
        "SELECT id, status, output, error FROM {s}pgqrs_workflow_runs WHERE id IN_LIST(:ids)"
    )
    # An open run past its deadline ends CANCELLED at once, with the reason in `error`.
    RUN_CANCEL_PAST_DEADLINE = (
        "UPDATE {s}pgqrs_workflow_runs SET status = 'CANCELLED', error = :error, "
        "completed_at = :now, updated_at = :now "
        f"WHERE id = :id AND {_OPEN_RUN} RETURNING id"
    )
