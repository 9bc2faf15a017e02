"""Restarting a finished run from one of its steps (semantics.md §19.1): the statements of
store/sql/restart.py, in one transaction, and what the caller is told when a restart is
refused."""

from __future__ import annotations

from datetime import datetime

from ..errors import NotFoundError, StateTransitionError, ValidationError
from ..records import RestartedRun
from ..store.executor import Queryable, UniqueViolation
from ..store.sql.columns import RUN
from ..types import StepRecord, WorkflowStatus
from . import runs, steps


async def restart(
    db: Queryable, run_id: int, from_step: str | None, now: datetime | None
) -> tuple[RestartedRun, int]:
    """Restart the run from `from_step` (None: its first failed step, else its first step);
    call inside a transaction, which a refusal rolls back. What was done, and the queue of the
    run's trigger message (to wake its workers)."""
    row = await db.fetchone(db.sql.RUN_RESTART, {"id": run_id, "now": now})
    if row is None:
        raise await _refused(db, run_id)
    record = RUN.build(row)
    taken = await steps.list_by_run(db, run_id)
    cut = _cut(run_id, taken, from_step)
    found = await db.fetchone(db.sql.RESTART_TRIGGER_QUEUE, {"id": record.message_id})
    if found is None:
        raise NotFoundError(
            f"Run {run_id} cannot be restarted: its trigger message {record.message_id} no "
            "longer exists (it was deleted outside this library); start a new run with the "
            "same input instead"
        )
    queue_id = int(found[0])
    redelivered = 0
    if cut < len(taken):
        removed = {"run_id": run_id, "from_id": taken[cut].id}
        redelivered = await db.execute(db.sql.RESTART_SIGNALS, removed)
        await db.execute(db.sql.RESTART_STEPS, removed)
    params = {"id": record.message_id, "queue_id": queue_id, "now": now}
    try:
        await db.fetchone(db.sql.RESTART_TRIGGER, params)
    except UniqueViolation as err:
        raise ValidationError(
            f"Validation failed: run {run_id} cannot be restarted: another unarchived message "
            f"of its queue holds the deduplication key of its trigger message "
            f"{record.message_id}; restart it once that message is archived"
        ) from err
    names = [step.step_name for step in taken]
    done = RestartedRun(
        run=record,
        from_step=names[cut] if cut < len(names) else None,
        kept_steps=tuple(names[:cut]),
        removed_steps=tuple(names[cut:]),
        redelivered_signals=redelivered,
    )
    return done, queue_id


def _cut(run_id: int, taken: list[StepRecord], from_step: str | None) -> int:
    """The index of the first step removed (`len(taken)`: none)."""
    if from_step is None:
        failed = [i for i, step in enumerate(taken) if step.status == WorkflowStatus.Error]
        return failed[0] if failed else 0
    for i, step in enumerate(taken):
        if step.step_name == from_step:
            return i
    shown = ", ".join(f"'{step.step_name}'" for step in taken) or "none yet"
    raise NotFoundError(
        f"Step '{from_step}' of run {run_id} not found; its steps, in the order they started: "
        f"{shown}"
    )


async def _refused(db: Queryable, run_id: int) -> StateTransitionError:
    """Why the run did not move: it is open or being cancelled (NotFoundError: missing)."""
    current = await runs.status(db, run_id)
    if current == WorkflowStatus.Cancelling:
        return StateTransitionError(
            f"Run {run_id} is CANCELLING: restart it once it is CANCELLED (the next worker to "
            "meet it, or its next step, finalises the cancellation)"
        )
    return StateTransitionError(
        f"Run {run_id} is {current.db}: only a finished run (SUCCESS, ERROR or CANCELLED) can "
        "be restarted; wait for it to finish, or cancel it and restart it once it is CANCELLED"
    )
