"""Workflow runs (`pgqrs_workflow_runs`): get-or-create for a message, guarded transitions.

Every transition is one conditional UPDATE (semantics.md §12.4). When it changes nothing, the
status actually stored decides what the caller sees: a no-op (`start` on RUNNING, `cancel` on
CANCELLING), the finalisation of a pending cancellation, or an error naming that status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .._clock import from_db
from ..errors import NotFoundError, StateTransitionError, ValidationError, WorkflowCancelledError
from ..store.executor import Queryable, Row, run_steps
from ..store.sql.columns import MESSAGE, RUN
from ..types import RunRecord, WorkflowStatus
from ..validation import encode_json
from . import workflows

QUEUED, RUNNING, PAUSED = WorkflowStatus.Queued, WorkflowStatus.Running, WorkflowStatus.Paused
CANCELLING, CANCELLED = WorkflowStatus.Cancelling, WorkflowStatus.Cancelled
SUCCESS, ERROR = WorkflowStatus.Success, WorkflowStatus.Error
OPEN = (QUEUED, RUNNING, PAUSED)

# A guarded UPDATE that lost a race to another transition is tried again this many times.
_ATTEMPTS = 3


def cancelled(run_id: int) -> WorkflowCancelledError:
    return WorkflowCancelledError(f"Workflow cancelled for run {run_id}", run_id=run_id)


def not_found(run_id: int) -> NotFoundError:
    return NotFoundError(f"Run {run_id} not found")


async def get(db: Queryable, run_id: int) -> RunRecord:
    row = await db.fetchone(db.sql.RUN_BY_ID, {"id": run_id})
    if row is None:
        raise not_found(run_id)
    return RUN.build(row)


async def find_by_message(db: Queryable, message_id: int) -> RunRecord | None:
    row = await db.fetchone(db.sql.RUN_BY_MESSAGE, {"id": message_id})
    return RUN.build(row) if row else None


async def list_all(db: Queryable) -> list[RunRecord]:
    return [RUN.build(row) for row in await db.fetch(db.sql.RUN_LIST)]


async def list_filtered(
    db: Queryable, workflow_ids: Sequence[int], statuses: Sequence[WorkflowStatus], limit: int
) -> list[RunRecord]:
    """Runs of these workflows in these statuses, newest first, at most `limit`."""
    params = {
        "workflow_ids": list(workflow_ids),
        "statuses": [s.db for s in statuses],
        "limit": limit,
    }
    return [RUN.build(row) for row in await db.fetch(db.sql.RUN_LIST_FILTERED, params)]


async def status(db: Queryable, run_id: int) -> WorkflowStatus:
    row = await db.fetchone(db.sql.RUN_STATUS, {"id": run_id})
    if row is None:
        raise not_found(run_id)
    return WorkflowStatus.parse(row[0])


async def get_or_create(
    db: Queryable, message_id: int, queue_id: int, raw_payload: Any, now: datetime
) -> RunRecord:
    """The run of a trigger message, created QUEUED when it has none (semantics.md §12.3).

    An existing run is how a crashed run is resumed. Two creators racing on the unique
    `message_id` both end with the row that won.
    """
    params = {
        "queue_id": queue_id,
        "message_id": message_id,
        "input": encode_json(raw_payload),
        "now": now,
    }
    return await _opened(db, db.sql.RUN_OPEN_FOR_MESSAGE, params)


async def open_started(db: Queryable, message_id: int, queue_id: int, now: datetime) -> RunRecord:
    """The run of a trigger message being delivered to `handle_workflow`, got or created as
    `get_or_create` does, and started in the same transaction (QUEUED or PAUSED → RUNNING, as
    `start()` would; any other status is left as it is): semantics.md §11.1. Its input is the
    message's stored payload."""
    params = {"queue_id": queue_id, "message_id": message_id, "now": now}
    return await _opened(db, db.sql.RUN_OPEN_STARTED, params)


async def _opened(db: Queryable, statements: Sequence[str], params: dict[str, Any]) -> RunRecord:
    rows = await run_steps(db, statements, params)
    if rows:
        return RUN.build(rows[0])
    # No row: the queue has no workflow (raises NotFoundError), or the run appeared or changed
    # after the statement's snapshot (a concurrent creator, a cancellation): read it again.
    await workflows.id_for_queue(db, params["queue_id"])
    found = await find_by_message(db, params["message_id"])
    assert found is not None
    return found


# The claim that opens runs (LOOP_STEP_OPEN_RUNS) returns a message's columns, then its run's.
_MESSAGE_COLUMNS = len(MESSAGE.names)


def split_opened(rows: Sequence[Row]) -> tuple[list[Row], dict[int, RunRecord]]:
    """The rows of the claim that opens runs: the message rows, and the run opened for each
    message (by message id; missing where the statement found none, see `open_started`)."""
    width = _MESSAGE_COLUMNS
    opened = {int(row[0]): RUN.build(row[width:]) for row in rows if row[width] is not None}
    return [row[:width] for row in rows], opened


def _finished(current: WorkflowStatus, target: WorkflowStatus, run_id: int) -> StateTransitionError:
    return StateTransitionError(
        f"Invalid state transition from {current.db} to {target.db}: "
        f"run {run_id} is already finished"
    )


async def start(db: Queryable, run_id: int, now: datetime) -> None:
    """QUEUED or PAUSED → RUNNING; RUNNING stays; every other status is refused."""
    for _ in range(_ATTEMPTS):
        if await db.fetchone(db.sql.RUN_START, {"id": run_id, "now": now}):
            return
        current = await status(db, run_id)
        if current == RUNNING:
            return
        if current not in (QUEUED, PAUSED):
            raise ValidationError(
                f"Validation failed: Run {run_id} is in terminal {current.db} state"
            )
    raise _finished(await status(db, run_id), RUNNING, run_id)


async def finish(
    db: Queryable,
    run_id: int,
    target: WorkflowStatus,
    now: datetime,
    *,
    output: str | None = None,
    error: str | None = None,
) -> None:
    """success / fail / pause: from QUEUED, RUNNING or PAUSED only.

    A pending cancellation is finalised instead and reported as `WorkflowCancelledError`.
    """
    sql = {SUCCESS: db.sql.RUN_SUCCEED, ERROR: db.sql.RUN_FAIL, PAUSED: db.sql.RUN_PAUSE}[target]
    params = {"id": run_id, "now": now, "output": output, "error": error}
    current = target
    for _ in range(_ATTEMPTS):
        if await db.fetchone(sql, params):
            return
        current = await status(db, run_id)
        if current == CANCELLING:
            await finalise_cancel(db, run_id, now)
            raise cancelled(run_id)
        if current not in OPEN:
            break
    raise _finished(current, target, run_id)


async def cancel(db: Queryable, run_id: int, now: datetime) -> None:
    """Request cancellation: QUEUED, RUNNING, PAUSED → CANCELLING; CANCELLING stays."""
    current = CANCELLING
    for _ in range(_ATTEMPTS):
        if await db.fetchone(db.sql.RUN_CANCEL, {"id": run_id, "now": now}):
            return
        current = await status(db, run_id)
        if current == CANCELLING:
            return
        if current not in OPEN:
            break
    raise _finished(current, CANCELLING, run_id)


async def finalise_cancel(db: Queryable, run_id: int, now: datetime) -> bool:
    """CANCELLING → CANCELLED; False when the run was not CANCELLING."""
    return await db.fetchone(db.sql.RUN_FINALISE_CANCEL, {"id": run_id, "now": now}) is not None


async def error_step_retries(db: Queryable, run_id: int) -> list[datetime | None]:
    """`retry_at` of each failed step of the run; None marks a step whose retries are spent."""
    rows = await db.fetch(db.sql.RUN_ERROR_STEP_RETRIES, {"id": run_id})
    return [from_db(row[0]) for row in rows]


def dead_letter_reason(deliveries: int) -> str:
    """Why a run ends when its trigger message became a dead letter (what `result()` says)."""
    return f"Workflow trigger message became a dead letter after {deliveries} deliveries"


async def fail_dead_lettered(
    db: Queryable, queue_id: int, max_read_ct: int, reason: str, now: datetime | None
) -> list[int]:
    """End ERROR (with `reason`) every open run of the queue whose trigger message is a dead
    letter: no delivery will come to finish it. The trigger messages of the runs ended."""
    params = {
        "queue_id": queue_id,
        "max_read_ct": max_read_ct,
        "error": encode_json(reason),
        "now": now,
    }
    return [int(row[0]) for row in await db.fetch(db.sql.RUN_FAIL_DEAD_LETTERED, params)]


async def fail_of_message(
    db: Queryable, message_id: int, reason: str, now: datetime | None
) -> bool:
    """End ERROR (with `reason`) the open run the message triggered, if any; True if one was."""
    params = {"message_id": message_id, "error": encode_json(reason), "now": now}
    return await db.fetchone(db.sql.RUN_FAIL_OF_MESSAGE, params) is not None
