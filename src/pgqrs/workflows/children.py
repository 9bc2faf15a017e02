"""Child runs and fan-in (semantics.md §18.3-18.4).

Starting a child is a step (`__pgqrs_child__:<workflow>#n`) whose result is the child's ids:
its trigger message, its run (created at once, with the parent's id) and that result are
written in one transaction, so a parent executed again finds the same child and never starts
a second one. Awaiting children is not a step: a finished run's outcome does not change. While
they run the parent waits (`RunWaitingError`); each child that ends wakes it
(workflows/loop.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

from .._clock import seconds as timedelta_of
from ..errors import (
    PausedError,
    PgqrsError,
    StepNotReadyError,
    TransientStepError,
    WorkflowCancelledError,
    WorkflowFailedError,
)
from ..store.executor import Queryable
from ..store.wakeup import queue_key
from ..tables import messages, steps, waits
from ..types import WorkflowStatus
from ..validation import encode_json, require_duration, validate_step_name
from .signals import Running, take_step, waiting
from .triggers import lookup_definition, trigger_payload, trigger_rules

CHILD_PREFIX = "__pgqrs_child__:"
_FAILED = (WorkflowStatus.Error, WorkflowStatus.Cancelled)


class ChildRun:
    """A child run started by `run.start_child`; `await child.result()` inside the parent."""

    __slots__ = ("_parent", "message_id", "run_id", "workflow")

    def __init__(self, parent: Running, workflow: str, run_id: int, message_id: int) -> None:
        self._parent = parent
        self.workflow = workflow
        self.run_id = run_id
        self.message_id = message_id

    def __repr__(self) -> str:
        return f"<pgqrs.ChildRun workflow={self.workflow!r} run_id={self.run_id}>"

    async def result(self) -> Any:
        """The child's output; `WorkflowFailedError` when it failed or was cancelled; while
        it runs, the parent waits for it (durably)."""
        [value] = await gather(self._parent, [self], return_exceptions=False)
        return value


def _workflow_name(workflow: object) -> str:
    name = getattr(workflow, "name", workflow)  # a WorkflowDef, or its name
    if not isinstance(name, str):
        raise TypeError(
            "workflow must be a @workflow function or a workflow name, "
            f"not {type(workflow).__name__}"
        )
    return name


async def start_child(
    run: Running, workflow: object, input: Any, name: str | None, deadline: float | None
) -> ChildRun:
    wf_name = _workflow_name(workflow)
    within = None if deadline is None else require_duration("deadline", deadline)
    store = run._store
    rules = await trigger_rules(store, wf_name)
    text = trigger_payload(rules, input)  # every payload rule, before any write
    step_name = validate_step_name(name) if name is not None else None
    step_name = step_name or run._replay.next_name(f"{CHILD_PREFIX}{wf_name}")
    record = await take_step(run, step_name)
    if record.status == WorkflowStatus.Success:
        ids = record.output
        return ChildRun(run, wf_name, int(ids["run_id"]), int(ids["message_id"]))
    definition = await lookup_definition(store, wf_name)
    now = store.clock.now()
    due = None if within is None else now + timedelta_of(within)
    async with store.db.transaction() as db:
        [message_id] = await messages.enqueue(
            db, definition.queue_id, None, [text], store.sql_now()
        )
        child = await waits.create_run(
            db, definition.id, message_id, text, now, parent_run_id=run.id(), deadline_at=due
        )
        ids = {"workflow": wf_name, "run_id": child.id, "message_id": message_id}
        await steps.succeed(db, run.id(), step_name, encode_json(ids), now)
    store.wakeups.notify(queue_key(definition.queue_id))
    return ChildRun(run, wf_name, child.id, message_id)


def child_error(run_id: int, status: WorkflowStatus, error: Any) -> WorkflowFailedError:
    """How a failed or cancelled child surfaces in its parent."""
    how = "failed" if status == WorkflowStatus.Error else "was cancelled"
    return WorkflowFailedError(
        f"Child run {run_id} {how}: {encode_json(error)}", run_id=run_id, error=error
    )


async def gather(
    run: Running, items: Sequence[ChildRun | Awaitable[Any]], *, return_exceptions: bool
) -> list[Any]:
    """Results in the order given, of child runs and of awaitables (steps run in parallel).

    Awaitables run concurrently and every one is let finish, so each step's outcome is
    recorded. Then: with `return_exceptions=False` (fail fast) the first failure, in the
    order given, is raised as soon as it is known, even while other children still run;
    with True, failures are returned in place once everything has ended. Waits (a step's
    retry, a child still running) are raised after the failures.
    """
    coros = [(i, item) for i, item in enumerate(items) if not isinstance(item, ChildRun)]
    children = [(i, item) for i, item in enumerate(items) if isinstance(item, ChildRun)]
    results: list[Any] = [None] * len(items)
    outcomes = await asyncio.gather(*(c for _, c in coros), return_exceptions=True)
    waits_raised: list[BaseException] = []
    failures: list[tuple[int, BaseException]] = []
    for (i, _), value in zip(coros, outcomes, strict=True):
        if isinstance(value, WorkflowCancelledError) or (
            isinstance(value, BaseException) and not isinstance(value, Exception)
        ):
            raise value  # the run is cancelled, or this task is: not an outcome
        if isinstance(value, PgqrsError) and _is_wait(value):
            waits_raised.append(value)
        elif isinstance(value, Exception):
            failures.append((i, value))
        results[i] = value
    pending: list[int] = []
    if children:
        store = run._store
        found = await waits.outcomes(store.db, [c.run_id for _, c in children])
        for i, child in children:
            status, output, error = found[child.run_id]
            if status == WorkflowStatus.Success:
                results[i] = output
            elif status in _FAILED:
                err = child_error(child.run_id, status, error)
                failures.append((i, err))
                results[i] = err
            else:
                pending.append(child.run_id)
    failures.sort(key=lambda f: f[0])
    if failures and not return_exceptions:
        raise failures[0][1]
    if waits_raised:
        raise waits_raised[0]
    if pending:
        raise waiting(
            run.id(),
            f"children:{','.join(map(str, pending))}",
            None,
            _children_ended(pending, fail_fast=not return_exceptions),
        )
    return results


def _is_wait(err: PgqrsError) -> bool:
    """The step will run again later (a retry, a pause, a wait): not a failure."""
    return isinstance(err, TransientStepError | StepNotReadyError | PausedError)


def _children_ended(pending: list[int], *, fail_fast: bool) -> Any:
    async def ended(db: Queryable) -> bool:
        found = await waits.outcomes(db, pending)
        statuses = [found[i][0] for i in pending if i in found]
        if fail_fast and any(s in _FAILED for s in statuses):
            return True
        return all(s.is_terminal for s in statuses)

    return ended
