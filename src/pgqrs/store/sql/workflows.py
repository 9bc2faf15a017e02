"""Statements on `pgqrs_workflows`, `pgqrs_workflow_runs` and `pgqrs_workflow_steps`.

Run transitions are guarded in the WHERE clause with the statuses they may start from
(semantics.md §12.4); an UPDATE that changes nothing means the move was illegal. Status labels are
written as literals so Postgres coerces them to its enum type without casts.
"""

from __future__ import annotations

from .columns import MESSAGE, RUN, STEP, WORKFLOW
from .messages import QUEUE_LIMIT, claim_postgres
from .spelling import read

# The statuses a run can still leave by finishing, pausing or being cancelled.
_OPEN = "status IN ('QUEUED', 'RUNNING', 'PAUSED')"


# In an upsert, the existing row is named by its (unqualified) table name (`excluded` would be
# the proposed one); SQLite needs the `WHERE true` to parse INSERT ... SELECT ... ON CONFLICT.
_T = "pgqrs_workflow_steps"
_SETTLED = f"{_T}.status IN ('SUCCESS', 'ERROR')"

# Step acquisition (see STEP_ACQUIRE) after its `WITH`, so another CTE can go before it.
_ACQUIRE = (
    "open_run AS (SELECT id FROM {s}pgqrs_workflow_runs WHERE id = :run_id "
    "AND status NOT IN ('CANCELLING', 'CANCELLED')) "
    "INSERT INTO {s}pgqrs_workflow_steps (run_id, step_name, status, retry_count, "
    "started_at, created_at, updated_at) "
    "SELECT id, :name, 'RUNNING', 0, :now, :now, :now FROM open_run WHERE true "
    "ON CONFLICT (run_id, step_name) DO UPDATE SET "
    f"status = CASE WHEN {_SETTLED} THEN {_T}.status ELSE 'RUNNING' END, "
    f"started_at = CASE WHEN {_SETTLED} THEN {_T}.started_at ELSE :now END, "
    f"updated_at = CASE WHEN {_SETTLED} THEN {_T}.updated_at ELSE :now END "
    f"RETURNING {STEP.select}"
)


def _step_succeed(p: str = "") -> str:
    """A step's success; `p` prefixes the parameter names (`done_`: a success that goes with
    the statement after it, whose own parameters keep the plain names)."""
    return (
        f"UPDATE {{s}}pgqrs_workflow_steps SET status = 'SUCCESS', output = :{p}output, "
        f"error = NULL, retry_at = NULL, completed_at = :{p}now, updated_at = :{p}now "
        f"WHERE run_id = :{p}run_id AND step_name = :{p}name"
    )


# A run opened for a delivery of its trigger (`handle_workflow`, semantics.md §11.1): created
# RUNNING when it has none, or moved QUEUED/PAUSED -> RUNNING (what `start()` does) when it
# has, so the handler's `start()` finds nothing left to do. The trigger messages are rows `t`
# of `source` where `where` holds (its input is their stored payload); `now`: the store's clock.
def _run_create(source: str, where: str, now: str) -> str:
    return (
        "INSERT INTO {s}pgqrs_workflow_runs (workflow_id, message_id, status, input, "
        f"created_at, updated_at, started_at) SELECT w.id, t.id, 'RUNNING', t.payload, {now}, "
        f"{now}, {now} FROM {source} JOIN {{s}}pgqrs_queues q ON q.id = t.queue_id "
        f"JOIN {{s}}pgqrs_workflows w ON w.name = q.queue_name WHERE {where} "
        "ON CONFLICT (message_id) DO NOTHING"
    )


def _run_start(message_ids: str, now: str) -> str:
    return (
        "UPDATE {s}pgqrs_workflow_runs SET status = 'RUNNING', "
        f"started_at = COALESCE(started_at, {now}), updated_at = {now} "
        f"WHERE message_id IN ({message_ids}) AND status IN ('QUEUED', 'PAUSED')"
    )


# Postgres, as CTEs of one statement: the runs of those messages, as `opened`. A run the
# statement found QUEUED or PAUSED is returned as `started` left it, any other as it was (a
# run that changed under the statement, or that a concurrent creator inserted, is missing: the
# caller reads it again). `ids`: a query of the messages' ids.
def _opened_runs(source: str, where: str, ids: str, now: str) -> str:
    return (
        f"created AS ({_run_create(source, where, now)} RETURNING {RUN.select}), "
        f"started AS ({_run_start(ids, now)} RETURNING {RUN.select}), "
        f"opened AS (SELECT * FROM created UNION ALL SELECT * FROM started UNION ALL "
        f"SELECT {RUN.select} FROM {{s}}pgqrs_workflow_runs WHERE message_id IN ({ids}) "
        "AND status NOT IN ('QUEUED', 'PAUSED'))"
    )


class WorkflowSql:
    # -- definitions ---------------------------------------------------------------------------
    WF_INSERT_IF_ABSENT = (
        "INSERT INTO {s}pgqrs_workflows (name, queue_id, created_at) "
        "VALUES (:name, :queue_id, :now) ON CONFLICT (name) DO NOTHING "
        f"RETURNING {WORKFLOW.select}"
    )
    WF_BY_NAME = read(f"SELECT {WORKFLOW.select} FROM {{s}}pgqrs_workflows WHERE name = :name")
    WF_LIST = read(f"SELECT {WORKFLOW.select} FROM {{s}}pgqrs_workflows ORDER BY id")
    # The workflow of a message's queue is the one named like the queue (semantics.md §12.3).
    WF_FOR_QUEUE = read(
        "SELECT q.queue_name, w.id FROM {s}pgqrs_queues q "
        "LEFT JOIN {s}pgqrs_workflows w ON w.name = q.queue_name WHERE q.id = :queue_id"
    )

    # -- runs ----------------------------------------------------------------------------------
    # Get or create the run of a trigger message (semantics.md §12.3); the last statement's rows
    # are the run. The workflow is the one named like the message's queue; none means no row.
    RUN_OPEN_FOR_MESSAGE: tuple[str, ...] = (
        "INSERT INTO {s}pgqrs_workflow_runs (workflow_id, message_id, status, input, "
        "created_at, updated_at) SELECT w.id, :message_id, 'QUEUED', :input, :now, :now "
        "FROM {s}pgqrs_queues q JOIN {s}pgqrs_workflows w ON w.name = q.queue_name "
        "WHERE q.id = :queue_id ON CONFLICT (message_id) DO NOTHING",
        f"SELECT {RUN.select} FROM {{s}}pgqrs_workflow_runs WHERE message_id = :message_id",
    )
    # The same, started: what `handle_workflow` does before calling its handler (semantics.md
    # §11.1), so the handler's `start()` has nothing left to do.
    RUN_OPEN_STARTED: tuple[str, ...] = (
        _run_create("{s}pgqrs_messages t", "t.id = :message_id", ":now"),
        _run_start(":message_id", ":now"),
        f"SELECT {RUN.select} FROM {{s}}pgqrs_workflow_runs WHERE message_id = :message_id",
    )
    RUN_BY_ID = read(f"SELECT {RUN.select} FROM {{s}}pgqrs_workflow_runs WHERE id = :id")
    RUN_BY_MESSAGE = read(
        f"SELECT {RUN.select} FROM {{s}}pgqrs_workflow_runs WHERE message_id = :id"
    )
    RUN_LIST = read(
        f"SELECT {RUN.select} FROM {{s}}pgqrs_workflow_runs ORDER BY created_at DESC, id DESC"
    )
    # Browsing runs (the command line): of some workflows, in some statuses, newest first.
    RUN_LIST_FILTERED = read(
        f"SELECT {RUN.select} FROM {{s}}pgqrs_workflow_runs "
        "WHERE workflow_id IN_LIST(:workflow_ids) AND CAST(status AS TEXT) IN_LIST(:statuses) "
        "ORDER BY created_at DESC, id DESC LIMIT :limit"
    )
    RUN_STATUS = read("SELECT status FROM {s}pgqrs_workflow_runs WHERE id = :id")
    RUN_START = (
        "UPDATE {s}pgqrs_workflow_runs SET status = 'RUNNING', "
        "started_at = COALESCE(started_at, :now), updated_at = :now "
        "WHERE id = :id AND status IN ('QUEUED', 'PAUSED') RETURNING id"
    )
    RUN_SUCCEED = (
        "UPDATE {s}pgqrs_workflow_runs SET status = 'SUCCESS', output = :output, "
        f"completed_at = :now, updated_at = :now WHERE id = :id AND {_OPEN} RETURNING id"
    )
    RUN_FAIL = (
        "UPDATE {s}pgqrs_workflow_runs SET status = 'ERROR', error = :error, "
        f"completed_at = :now, updated_at = :now WHERE id = :id AND {_OPEN} RETURNING id"
    )
    RUN_PAUSE = (
        "UPDATE {s}pgqrs_workflow_runs SET status = 'PAUSED', error = :error, "
        f"paused_at = :now, updated_at = :now WHERE id = :id AND {_OPEN} RETURNING id"
    )
    RUN_CANCEL = (
        "UPDATE {s}pgqrs_workflow_runs SET status = 'CANCELLING', updated_at = :now "
        f"WHERE id = :id AND {_OPEN} RETURNING id"
    )
    RUN_FINALISE_CANCEL = (
        "UPDATE {s}pgqrs_workflow_runs SET status = 'CANCELLED', completed_at = :now, "
        "updated_at = :now WHERE id = :id AND status = 'CANCELLING' RETURNING id"
    )
    # Open runs whose trigger message became a dead letter (it reached its queue's poison
    # threshold and is not leased): no delivery will come, so they end ERROR with :error.
    RUN_FAIL_DEAD_LETTERED = (
        "UPDATE {s}pgqrs_workflow_runs SET status = 'ERROR', error = :error, "
        f"completed_at = :now, updated_at = :now WHERE {_OPEN} AND message_id IN ("
        "SELECT m.id FROM {s}pgqrs_messages m WHERE m.queue_id = :queue_id "
        f"AND m.archived_at IS NULL AND COALESCE(m.read_ct, 0) >= {QUEUE_LIMIT} "
        "AND (m.consumer_worker_id IS NULL OR m.vt IS NULL OR TS(m.vt) <= :now)) "
        "RETURNING message_id"
    )
    # The open run a dead letter triggered, when an operator archives that one message.
    RUN_FAIL_OF_MESSAGE = (
        "UPDATE {s}pgqrs_workflow_runs SET status = 'ERROR', error = :error, "
        f"completed_at = :now, updated_at = :now WHERE message_id = :message_id AND {_OPEN} "
        "RETURNING message_id"
    )
    # When the failed steps of a run may be tried again (NULL: retries exhausted).
    RUN_ERROR_STEP_RETRIES = read(
        "SELECT retry_at FROM {s}pgqrs_workflow_steps WHERE run_id = :id AND status = 'ERROR'"
    )
    # -- steps ---------------------------------------------------------------------------------
    # One statement, so one transaction: only a run that is not being cancelled gets a step.
    # Absent: a new RUNNING row. SUCCESS or ERROR: unchanged (the caller decides what follows).
    # Otherwise RUNNING again with a new start. It returns the row, or nothing when the run is
    # missing, CANCELLING or CANCELLED.
    STEP_ACQUIRE = f"WITH {_ACQUIRE}"
    STEP_BY_NAME = read(
        f"SELECT {STEP.select} FROM {{s}}pgqrs_workflow_steps WHERE run_id = :run_id "
        "AND step_name = :name"
    )
    STEP_REOPEN = (
        "UPDATE {s}pgqrs_workflow_steps SET status = 'RUNNING', error = NULL, retry_at = NULL, "
        "last_retry_at = :now, started_at = :now, updated_at = :now "
        f"WHERE id = :id AND status = 'ERROR' RETURNING {STEP.select}"
    )
    STEP_SUCCEED = _step_succeed()
    # A step's success (`:done_*`, sent later than it happened: tables/write_behind.py) and the
    # statement it goes with, as one transaction: the acquisition of the next step, or the
    # run's success. The rows are the second statement's.
    STEP_SUCCEED_THEN_ACQUIRE: tuple[str, ...] = (_step_succeed("done_"), STEP_ACQUIRE)
    STEP_SUCCEED_THEN_RUN_SUCCEED: tuple[str, ...] = (_step_succeed("done_"), RUN_SUCCEED)
    STEP_FAIL = (
        "UPDATE {s}pgqrs_workflow_steps SET status = 'ERROR', error = :error, "
        "retry_at = :retry_at, retry_count = :retry_count, updated_at = :now "
        "WHERE run_id = :run_id AND step_name = :name"
    )
    STEP_RETRY_COUNT = read(
        "SELECT retry_count FROM {s}pgqrs_workflow_steps WHERE run_id = :run_id "
        "AND step_name = :name"
    )
    STEP_LIST = read(
        f"SELECT {STEP.select} FROM {{s}}pgqrs_workflow_steps ORDER BY created_at DESC, id DESC"
    )
    STEP_LIST_BY_RUN = read(
        f"SELECT {STEP.select} FROM {{s}}pgqrs_workflow_steps WHERE run_id = :run_id ORDER BY id"
    )
    # The poll loop's claim that also opens the run of each message it takes (RUN_OPEN_STARTED),
    # when the backend can say it in one statement: rows of the message's columns followed by
    # its run's (NULLs where it has none). SQLite: none; the runs are opened one by one.
    LOOP_STEP_OPEN_RUNS: tuple[str, ...] = ()


class WorkflowPostgres(WorkflowSql):
    # Each a single statement. A data-modifying CTE runs to completion whether or not anything
    # reads it, and the two statements change different rows (the caller sends a step's
    # success separately when the next step has the same name).
    STEP_SUCCEED_THEN_ACQUIRE = (f"WITH done AS ({_step_succeed('done_')}), {_ACQUIRE}",)
    STEP_SUCCEED_THEN_RUN_SUCCEED = (
        f"WITH done AS ({_step_succeed('done_')}) {WorkflowSql.RUN_SUCCEED}",
    )
    # One statement: the runs created, started, or found as they were (see `_opened_runs`).
    RUN_OPEN_STARTED = (
        f"WITH {_opened_runs('{s}pgqrs_messages t', 't.id = :message_id', ':message_id', ':now')} "
        f"SELECT {RUN.select} FROM opened",
    )
    # The claim's rows are CTE `taken`; the runs use the store's clock, `:run_now`.
    LOOP_STEP_OPEN_RUNS = claim_postgres(
        loop_step=True,
        then=f"{_opened_runs('taken t', 'true', 'SELECT id FROM taken', ':run_now')} "
        f"SELECT {MESSAGE.qualified('taken')}, {RUN.qualified('opened')} "
        "FROM taken LEFT JOIN opened ON opened.message_id = taken.id",
    )
    # The failure being recorded holds the step's row until it commits: two failures recorded
    # at once then count two attempts, never the same one twice (SQLite's writers take turns).
    STEP_RETRY_COUNT = WorkflowSql.STEP_RETRY_COUNT + " FOR UPDATE"
    # One statement: the insert's own row, or the run that was there before it. (A run
    # inserted by a concurrent creator after this statement began is re-read by the caller.)
    RUN_OPEN_FOR_MESSAGE = (
        "WITH ins AS (INSERT INTO {s}pgqrs_workflow_runs (workflow_id, message_id, status, "
        "input, created_at, updated_at) SELECT w.id, :message_id, 'QUEUED', :input, :now, :now "
        "FROM {s}pgqrs_queues q JOIN {s}pgqrs_workflows w ON w.name = q.queue_name "
        f"WHERE q.id = :queue_id ON CONFLICT (message_id) DO NOTHING RETURNING {RUN.select}) "
        f"SELECT {RUN.select} FROM ins UNION ALL "
        f"SELECT {RUN.select} FROM {{s}}pgqrs_workflow_runs WHERE message_id = :message_id",
    )
