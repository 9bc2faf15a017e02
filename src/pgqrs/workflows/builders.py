"""`pgqrs.workflow()`, `pgqrs.run()`, `pgqrs.step()`: the workflow builders (api.md §11).

Setters are sync and chainable; terminal methods (`create`, `execute`, `get`, `result`) are
async and the only places that touch the store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .._clock import Time, parse_time, seconds
from ..errors import (
    PgqrsError,
    TimeoutError,
    ValidationError,
    WorkflowCancelledError,
    WorkflowFailedError,
)
from ..policy import StepRetryPolicy
from ..queue.workers import producer_without_row
from ..store.borrowed import borrow
from ..store.executor import Queryable
from ..store.wakeup import queue_key, run_key
from ..tables import messages, runs, waits
from ..tables.context import Context
from ..types import QueueMessage, RunRecord, WorkflowRecord, WorkflowStatus
from ..validation import (
    check_result_timeout,
    encode_json,
    require_duration,
    require_str,
    require_type,
    validate_queue_name,
    validate_step_name,
)
from .run import Run
from .steps import StepResult
from .triggers import create_definition, lookup_definition, trigger_payload, trigger_rules

# `result()` re-reads the run at least this often (semantics.md §12.10); in-process changes wake it
# sooner.
RESULT_POLL_SECONDS = 0.5


def _check_store(store: object) -> Context:
    # Context is a runtime-checkable Protocol, which mypy will not take for a `type[T]`.
    message = "store() needs a pgqrs.Store, got {type.__name__}"
    return require_type(store, Context, message)  # type: ignore[type-abstract]


def _workflow_target(store: Context | None, name: str | None) -> tuple[Context, str]:
    """What `create()` and `trigger(...).execute()` need, checked when they are called."""
    if store is None:
        raise ValueError("store is required")
    if name is None:
        raise ValueError("name is required")
    return store, validate_queue_name(name, "workflow")


class WorkflowBuilder:
    def __init__(self) -> None:
        self._name: str | None = None
        self._store: Context | None = None

    def name(self, name: str) -> WorkflowBuilder:
        self._name = require_str("workflow name", name)
        return self

    def store(self, store: Context) -> WorkflowBuilder:
        self._store = _check_store(store)
        return self

    def id(self, id: int) -> WorkflowBuilder:
        """Accepted for compatibility with pgqrs and ignored: ids are assigned by the database."""
        return self

    def __repr__(self) -> str:
        return f"<pgqrs.WorkflowBuilder name={self._name!r}>"

    def _target(self) -> tuple[Context, str]:
        return _workflow_target(self._store, self._name)

    async def create(self) -> WorkflowRecord:
        """The definition (and its queue), created if missing; idempotent (semantics.md §12.1)."""
        store, name = self._target()
        return await create_definition(store, name)

    def trigger(self, input: Any) -> WorkflowTriggerBuilder:
        encode_json({"input": input})  # unencodable input fails here, at once
        return WorkflowTriggerBuilder(self._store, self._name, input)


class WorkflowTriggerBuilder:
    def __init__(self, store: Context | None, name: str | None, input: Any) -> None:
        self._store = store
        self._name = name
        self._input = input
        self._deadline: float | None = None

    def deadline(self, seconds: float) -> WorkflowTriggerBuilder:
        """Beyond pgqrs: the run is cancelled if it has not finished `seconds` after the
        trigger (semantics.md §18.5)."""
        self._deadline = require_duration("deadline", seconds)
        return self

    def __repr__(self) -> str:
        return f"<pgqrs.WorkflowTriggerBuilder name={self._name!r}>"

    async def execute(self, *, connection: object | None = None) -> QueueMessage:
        """Enqueue `{"input": X}` on the workflow's queue; the message reads back as X.

        With `connection` (beyond pgqrs), in the application's transaction on that connection
        and with no producer: it exists if and only if that transaction commits.
        """
        store, name = _workflow_target(self._store, self._name)
        rules = await trigger_rules(store, name)
        text = trigger_payload(rules, self._input)  # every payload rule, before any write
        definition = await lookup_definition(store, name)
        if self._deadline is not None:
            # The run is created with its message, to carry the deadline from the start.
            due = store.clock.now() + seconds(self._deadline)
            if connection is None:
                async with store.db.transaction() as tx:
                    row = await _enqueue_with_run(store, tx, definition, text, due)
            else:
                row = await _enqueue_with_run(
                    store, await borrow(connection, store.db), definition, text, due
                )
            store.wakeups.notify(queue_key(definition.queue_id))
            return (await store.messages.read(store.db, [row]))[0]
        if connection is None:
            producer = await producer_without_row(store, name, rules)  # no worker row
            message_id = await producer.enqueue({"input": self._input})
            db: Queryable = store.db
        else:
            db = await borrow(connection, store.db)
            [message_id] = await messages.enqueue(
                db, definition.queue_id, None, [text], store.sql_now()
            )
        row = await messages.get_row(db, message_id)
        return (await store.messages.read(db, [row]))[0]


async def _enqueue_with_run(
    store: Context, db: Queryable, definition: WorkflowRecord, text: str, due: datetime
) -> Any:
    """Enqueue a trigger and create its run at once (with its deadline); the message's row."""
    [message_id] = await messages.enqueue(db, definition.queue_id, None, [text], store.sql_now())
    await waits.create_run(db, definition.id, message_id, text, store.clock.now(), deadline_at=due)
    return await messages.get_row(db, message_id)


class RunBuilder:
    def __init__(self) -> None:
        self._message: QueueMessage | None = None
        self._store: Context | None = None

    def message(self, message: QueueMessage) -> RunBuilder:
        self._message = require_type(
            message, QueueMessage, "message() needs a pgqrs.QueueMessage, got {type.__name__}"
        )
        return self

    def store(self, store: Context) -> RunBuilder:
        self._store = _check_store(store)
        return self

    def __repr__(self) -> str:
        mid = None if self._message is None else self._message.id
        return f"<pgqrs.RunBuilder message_id={mid}>"

    def _target(self) -> tuple[Context, QueueMessage]:
        if self._store is None:
            raise ValidationError("Validation failed: store is required")
        if self._message is None:
            raise ValidationError("Validation failed: message is required")
        return self._store, self._message

    async def execute(self) -> Run:
        """The message's run, created QUEUED when it has none (semantics.md §12.3)."""
        store, message = self._target()
        record = await runs.get_or_create(
            store.db, message.id, message.queue_id, message.raw_payload, store.clock.now()
        )
        store.messages.remember_workflow_queue(message.queue_id)
        return Run._wrap(store, record)

    async def get(self) -> Any:
        """The output once SUCCESS; None while the run is missing or not finished."""
        store, message = self._target()
        return await outcome(store, message.id)

    async def result(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (api.md §11)
        """Wait for a terminal status; the same outcomes as `get()`."""
        store, message = self._target()
        check_result_timeout(timeout)

        async def finished() -> RunRecord | None:
            record = await runs.find_by_message(store.db, message.id)
            return record if record is not None and record.status.is_terminal else None

        keys = (run_key(message.id),)
        record = await store.wakeups.poll(keys, finished, RESULT_POLL_SECONDS, timeout)
        if record is None:
            raise TimeoutError(
                f"Operation timeout: no result for message {message.id} after {timeout}s"
            )
        return _outcome_of(record)


async def outcome(store: Context, message_id: int) -> Any:
    record = await runs.find_by_message(store.db, message_id)
    if record is None or not record.status.is_terminal:
        return None
    return _outcome_of(record)


def _outcome_of(record: Any) -> Any:
    if record.status == WorkflowStatus.Success:
        return record.output
    if record.status == WorkflowStatus.Error:
        raise WorkflowFailedError(
            f"Workflow run {record.id} failed: {encode_json(record.error)}",
            run_id=record.id,
            error=record.error,
        )
    cancelled = runs.cancelled(record.id)
    if record.error is not None:  # cancelled by the library itself: say why (semantics.md §18.5)
        cancelled = cancelled_with_reason(record.id, record.error)
    raise cancelled


def cancelled_with_reason(run_id: int, reason: Any) -> WorkflowCancelledError:
    return WorkflowCancelledError(
        f"Workflow cancelled for run {run_id}: {encode_json(reason)}", run_id=run_id, reason=reason
    )


class StepBuilder:
    def __init__(self) -> None:
        self._run: Run | None = None
        self._name: str | None = None
        self._time: Any = None
        self._retry: StepRetryPolicy | None = None

    def run(self, run: Run) -> StepBuilder:
        self._run = require_type(run, Run, "run() needs a pgqrs.Run, got {type.__name__}")
        return self

    def name(self, name: str) -> StepBuilder:
        self._name = require_str("step name", name)
        return self

    id = name

    def with_time(self, time: Time) -> StepBuilder:
        self._time = parse_time(time)
        return self

    def retry(self, policy: StepRetryPolicy) -> StepBuilder:
        self._retry = require_type(
            policy, StepRetryPolicy, "retry() needs a pgqrs.StepRetryPolicy, got {type.__name__}"
        )
        return self

    def __repr__(self) -> str:
        return f"<pgqrs.StepBuilder name={self._name!r}>"

    async def execute(self) -> StepResult:
        if self._run is None:
            raise PgqrsError("Run is required")
        if not self._name:
            raise PgqrsError("Step name is required")
        return await self._run.acquire_step(
            validate_step_name(self._name), current_time=self._time, retry=self._retry
        )


def workflow() -> WorkflowBuilder:
    return WorkflowBuilder()


def run() -> RunBuilder:
    return RunBuilder()


def step() -> StepBuilder:
    return StepBuilder()


__all__ = [
    "RunBuilder",
    "StepBuilder",
    "WorkflowBuilder",
    "WorkflowTriggerBuilder",
    "create_definition",
    "lookup_definition",
    "outcome",
    "run",
    "step",
    "trigger_payload",
    "trigger_rules",
    "workflow",
]


async def create_workflow(store: Context, name: str, arg: Any) -> Run:
    """semantics.md §12.3: the trigger is validated like any payload but not rate limited (no
    producer), and the message stays pending for a `handle_workflow` loop to pick up."""
    validate_queue_name(name, "workflow")
    text = None if arg is None else trigger_payload(await trigger_rules(store, name), arg)
    definition = await create_definition(store, name)
    if text is None:
        raise RuntimeError("create_workflow in Python must have an arg to trigger a run")
    now = store.clock.now()
    async with store.db.transaction() as db:
        [message_id] = await messages.enqueue(db, definition.queue_id, None, [text], now)
        record = await runs.get_or_create(db, message_id, definition.queue_id, {"input": arg}, now)
    store.wakeups.notify(queue_key(definition.queue_id))
    return Run._wrap(store, record)
