"""Workflow steps (`pgqrs_workflow_steps`): acquisition and recorded outcomes
(semantics.md §12.5-6).

Steps have no lease: a step is a memo of a finished result (SUCCESS), a failure with its retry
schedule (ERROR), or work in progress (RUNNING). The retry policy is applied here, inside the
transaction that reads the step's `retry_count`, so two failures recorded at once cannot both
use the same attempt number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .._clock import format_time, from_db, seconds
from ..errors import NotFoundError, RetriesExhaustedError, StepNotReadyError
from ..policy import StepRetryPolicy
from ..store.executor import Queryable
from ..store.sql.columns import STEP
from ..types import StepRecord
from ..validation import encode_json
from . import runs
from .runs import CANCELLING, ERROR

# The stored `retry_at` (a datetime to compare), beside the record's API form.
_RETRY_AT = STEP.index("retry_at")


async def acquire(
    db: Queryable, run_id: int, name: str, eligible_at: datetime, now: datetime
) -> StepRecord | None:
    """Acquire a step (semantics.md §12.5). None: the run is cancelled.

    `eligible_at` is the (possibly injected) time compared with `retry_at`; `now` is the clock
    for the stored timestamps. The run's status is checked by the statement that takes the
    step, so a cancellation request is never missed; it is finalised here.
    """
    params = {"run_id": run_id, "name": name, "now": now}
    row = await db.fetchone(db.sql.STEP_ACQUIRE, params)
    if row is None:
        current = await runs.status(db, run_id)  # NotFoundError for a missing run
        if current == CANCELLING:
            await runs.finalise_cancel(db, run_id, now)
        return None
    record = STEP.build(row)
    if record.status != ERROR:
        return record
    retry_at = from_db(row[_RETRY_AT])
    if retry_at is None:
        raise RetriesExhaustedError(
            f"Step failed after {record.retry_count} attempts: {encode_json(record.error)}",
            attempts=record.retry_count,
        )
    if retry_at > eligible_at:
        shown = format_time(retry_at)
        raise StepNotReadyError(
            f"Step not ready for execution (retry scheduled for {shown})", retry_at=shown
        )
    reopened = await db.fetchone(db.sql.STEP_REOPEN, {"id": record.id, "now": now})
    if reopened is None:  # a concurrent acquisition reopened it first; no lease, so run it too
        reopened = await db.fetchone(db.sql.STEP_BY_NAME, params)
        assert reopened is not None
    return STEP.build(reopened)


def _missing(run_id: int, name: str) -> NotFoundError:
    return NotFoundError(f"Step '{name}' of run {run_id} not found")


async def succeed(db: Queryable, run_id: int, name: str, output: str, now: datetime) -> None:
    params = {"run_id": run_id, "name": name, "output": output, "now": now}
    if not await db.execute(db.sql.STEP_SUCCEED, params):
        raise _missing(run_id, name)


async def fail(
    db: Queryable,
    run_id: int,
    name: str,
    error: Any,
    now: datetime,
    *,
    transient: bool,
    policy: StepRetryPolicy,
    retry_after: float | None,
    base: datetime,
) -> datetime | None:
    """Record a failure; call inside a transaction. The time of the next attempt, or None.

    Permanent failures, and transient ones past `policy.max_attempts`, get no `retry_at`, so
    the next acquisition raises `RetriesExhaustedError`. Otherwise the attempt is counted and
    the step waits `retry_after` (fractions kept) or the policy's backoff from `base`.
    """
    key = {"run_id": run_id, "name": name}
    row = await db.fetchone(db.sql.STEP_RETRY_COUNT, key)
    if row is None:
        raise _missing(run_id, name)
    retry_count = int(row[0] or 0)
    retry_at: datetime | None = None
    if transient and policy.should_retry(retry_count):
        delay = (
            retry_after
            if retry_after is not None
            else float(policy.backoff.calculate_delay(retry_count))
        )
        retry_at = base + seconds(delay)
        retry_count += 1
    params = {
        **key,
        "error": encode_json(error),
        "retry_at": retry_at,
        "retry_count": retry_count,
        "now": now,
    }
    await db.execute(db.sql.STEP_FAIL, params)
    return retry_at


async def list_all(db: Queryable) -> list[StepRecord]:
    return [STEP.build(row) for row in await db.fetch(db.sql.STEP_LIST)]


async def list_by_run(db: Queryable, run_id: int) -> list[StepRecord]:
    return [STEP.build(row) for row in await db.fetch(db.sql.STEP_LIST_BY_RUN, {"run_id": run_id})]
