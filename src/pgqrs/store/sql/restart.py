"""Statements of restarting a finished run from one of its steps (semantics.md §19.1), run in
one transaction by `tables.restart`.

The run's move back to QUEUED is guarded like every run transition (semantics.md §12.4): only
a finished run (SUCCESS, ERROR, CANCELLED) moves, so zero rows means the run is open, being
cancelled or missing. Its steps from the chosen one on (in row id order, the order they
started) are deleted, the signals those steps had received become pending again, and its
trigger message is made deliverable again, so the next worker to claim it resumes the run.
"""

from __future__ import annotations

from .columns import RUN
from .spelling import read

_FINISHED = "status IN ('SUCCESS', 'ERROR', 'CANCELLED')"

# The steps being removed: the one restarted from and every step that started after it.
_REMOVED = "run_id = :run_id AND id >= :from_id"


class RestartSql:
    # A deadline that has passed is dropped: it would cancel the run as soon as it starts.
    RUN_RESTART = (
        "UPDATE {s}pgqrs_workflow_runs SET status = 'QUEUED', output = NULL, error = NULL, "
        "completed_at = NULL, paused_at = NULL, "
        "deadline_at = CASE WHEN TS(deadline_at) <= :now THEN NULL ELSE deadline_at END, "
        f"updated_at = :now WHERE id = :id AND {_FINISHED} RETURNING {RUN.select}"
    )
    RESTART_TRIGGER_QUEUE = read("SELECT queue_id FROM {s}pgqrs_messages WHERE id = :id")
    RESTART_SIGNALS = (
        "UPDATE {s}pgqrs_workflow_signals SET consumed_at = NULL, consumed_by = NULL "
        "WHERE run_id = :run_id AND consumed_at IS NOT NULL AND consumed_by IN "
        f"(SELECT step_name FROM {{s}}pgqrs_workflow_steps WHERE {_REMOVED})"
    )
    RESTART_STEPS = f"DELETE FROM {{s}}pgqrs_workflow_steps WHERE {_REMOVED}"
    # Deliverable again, as if enqueued now: unarchived, visible, unowned, never read.
    RESTART_TRIGGER = (
        "UPDATE {s}pgqrs_messages SET archived_at = NULL, cancelled_at = NULL, vt = :now, "
        "enqueued_at = :now, read_ct = 0, consumer_worker_id = NULL, dequeued_at = NULL "
        "WHERE id = :id RETURNING id"
    )


class RestartPostgres(RestartSql):
    # With the NOTIFY of an enqueue (`{notify}`), so idle workers of other processes wake at
    # the commit.
    RESTART_TRIGGER = f"WITH m AS ({RestartSql.RESTART_TRIGGER}) SELECT m.id FROM m{{notify}}"
