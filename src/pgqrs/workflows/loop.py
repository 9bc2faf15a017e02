"""`handle_workflow`: running workflow runs from a poll loop (semantics.md §11).

Claimed trigger messages are processed one after another, in claim order. Each gets its run
(created on first delivery, found again after a crash); finished runs are archived without
calling the handler; otherwise the handler's outcome decides what happens to the message
(semantics.md §11.2). Planned waits (a step's retry time, a pause) release the message "for
scheduling": visible again at the planned time, with the claim given back so waiting never
makes it poison.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import instrument
from .._clock import parse_time, seconds
from ..errors import (
    PausedError,
    RetriesExhaustedError,
    RunWaitingError,
    StateTransitionError,
    StepNotReadyError,
    TransientStepError,
    WorkflowCancelledError,
    is_transient,
)
from ..policy import message_backoff_seconds
from ..queue.loop import Handler, call_handler
from ..store.wakeup import queue_key, run_key
from ..tables import messages, runs, waits
from ..tables.runs import CANCELLING, OPEN, PAUSED, RUNNING
from ..tables.write_behind import StoreWritingBehind
from ..types import QueueMessage, RunRecord
from ..validation import encode_json
from .run import Run
from .signals import recheck_of
from .steps import retry_after_of

if TYPE_CHECKING:
    from ..queue.loop import Runner

log = logging.getLogger("pgqrs")

# How soon a run the database failed under is tried again.
OUTAGE_RETRY_SECONDS = 1.0

# A run that waits with no timeout (for a signal, for children) is looked at again this often
# anyway: a safety net for a wake-up that cannot come (a child whose trigger became a dead
# letter ends ERROR without a delivery to wake its parent).
WAIT_RECHECK_SECONDS = 300.0


class WorkflowSettler:
    """Settles each claimed trigger message according to its run (semantics.md §11)."""

    opens_runs = True  # the poll loop's claim may open the runs (`Runner.opened`)

    def __init__(self, fn: Handler, *, reraise: bool = False) -> None:
        self.fn = fn
        self.reraise = reraise  # `execute()` re-raises a handler's unexpected exception

    async def process(self, runner: Runner, claimed: list[QueueMessage]) -> None:
        first_error: Exception | None = None
        for message in claimed:
            delivery = _Delivery(runner, message)
            error = await delivery.settle(self.fn)
            if delivery.outcome is not None and instrument.observers:
                await runner.observe(delivery.outcome, delivery.started, [message])
            runner.opened.clear()  # the next runs waited for this one: they are read again
            runner.in_flight = [mid for mid in runner.in_flight if mid != message.id]
            if first_error is None:
                first_error = error
        if first_error is not None and self.reraise:
            raise first_error


class _Delivery:
    """One claimed trigger message and its run."""

    def __init__(self, runner: Runner, message: QueueMessage) -> None:
        self.parent: int | None = None  # the run's parent run, woken when it ends
        self.deadline: datetime | None = None  # the run's deadline
        self.runner = runner
        # The run's code and the settling below share one WriteBehind: a step's success goes
        # with the statement after it (tables/write_behind.py).
        self.store = StoreWritingBehind(runner.store)
        self.message = message
        # The loop's time for Python-side schedules (the injected `at`, else the clock).
        self.t = runner.settings.at or runner.store.clock.now()
        # How the handler call ended and when it began, for `pgqrs.instrument` (None: the
        # handler was not called).
        self.outcome: instrument.Outcome | None = None
        self.started = 0.0

    async def settle(self, fn: Handler) -> Exception | None:
        """Run the handler if the run is still open; the unexpected exception it raised, if any.

        A missing workflow (`NotFoundError`) and non-`Exception` `BaseException`s propagate: the
        runner releases what is still in flight and the loop ends.
        """
        store, message = self.store, self.message
        # Opened (got or created, and started) by the claim where the backend can say it in
        # the same statement, else here (semantics.md §11.1).
        record = self.runner.opened.pop(message.id, None) or await runs.open_started(
            store.db, message.id, message.queue_id, store.clock.now()
        )
        store.messages.remember_workflow_queue(message.queue_id)
        self.parent = record.parent_run_id
        self.deadline = None if record.deadline_at is None else parse_time(record.deadline_at)
        if record.status not in OPEN:
            await self.finalise_if_cancelling(record.id, record.status)
            await self.archive()
            return None
        if self.deadline is not None and self.deadline <= self.t:
            await self.cancel_past_deadline(record.id)
            return None
        started = record.status == RUNNING
        run = Run._wrap(store, record, current_time=self.runner.settings.at, started=started)
        if instrument.observers:
            self.started = time.perf_counter()
        try:
            in_time = await self.call_before_deadline(fn, run)
        except RunWaitingError as exc:
            self.outcome = instrument.RESCHEDULED
            await self.release_waiting(record.id, exc)
        except (TransientStepError, StepNotReadyError) as exc:
            self.outcome = instrument.RETRIED
            await self.release_for_scheduling(await self.retry_time(record.id, exc))
        except PausedError as exc:
            self.outcome = instrument.RESCHEDULED
            await self.release_for_scheduling(await self.resume_time(record.id, exc))
        except WorkflowCancelledError:
            self.outcome = instrument.ARCHIVED
            await self.end_cancelled(record.id)
            await self.archive()
        except RetriesExhaustedError as exc:
            self.outcome = instrument.FAILED
            await self.fail_if_open(record.id, str(exc))
            await self.archive()
        except Exception as exc:
            if is_transient(exc):
                self.outcome = instrument.RETRIED
                await self.retry_after_outage(record.id, exc)
                return None
            log.warning(
                "workflow handler failed for run %s (message %s)",
                record.id,
                message.id,
                exc_info=True,
                extra={**await self.runner.log_fields(message), "run_id": record.id},
            )
            self.outcome = await self.after_failure(record.id, exc)
            return exc
        else:
            self.outcome = instrument.ARCHIVED
            if not in_time:
                await self.cancel_past_deadline(record.id)
                return None
            if not run._ended_here:  # a finished run cannot be CANCELLING: nothing to look at
                await self.finalise_if_cancelling(record.id)
            await self.archive()
        return None

    async def call_before_deadline(self, fn: Handler, run: Run) -> bool:
        """Call the handler; False when the run's deadline cut it short (semantics.md §18.5)."""
        if self.deadline is None:
            await call_handler(fn, run, self.runner.thread)
            return True
        remaining = (self.deadline - self.t).total_seconds()
        try:
            async with asyncio.timeout(max(remaining, 0.0)) as scope:
                await call_handler(fn, run, self.runner.thread)
        except TimeoutError:
            if scope.expired():
                return False
            raise
        return True

    async def cancel_past_deadline(self, run_id: int) -> None:
        """The run's deadline passed: it ends CANCELLED, saying so, and its message is
        archived (a run that finished meanwhile keeps its status)."""
        assert self.deadline is not None
        store = self.store
        error = encode_json(waits.deadline_reason(self.deadline))
        await waits.cancel_past_deadline(store.db, run_id, store.clock.now(), error)
        store.wakeups.notify(run_key(self.message.id))
        await self.archive()

    # -- settling ------------------------------------------------------------------------------
    async def archive(self) -> None:
        """Archive the trigger of a run that is over, after waking its parent if it has one
        (in that order: a crash in between delivers the message again, which wakes it again)."""
        await self.store.writes.flush()  # a step's success still held is stored first
        await self.wake_parent()
        await self.runner.archive([self.message.id])

    async def wake_parent(self) -> None:
        """A child run is over: its parent, waiting for it, is looked at again now."""
        if self.parent is None:
            return
        store = self.store
        async with store.db.transaction() as db:
            woken = await waits.wake_run(db, self.parent, store.clock.now())
        if woken is not None:
            store.wakeups.notify(queue_key(woken))

    async def release_waiting(self, run_id: int, exc: RunWaitingError) -> None:
        """Give a waiting run's message back until what it waits for arrives (semantics.md
        §18). The run's row is locked first and what it waits for looked at again, so a
        signal sent or a child ended meanwhile is never missed (store/sql/waits.py)."""
        until = _time_or_none(exc.until)
        vt = self._before_deadline(until or self.t + seconds(WAIT_RECHECK_SECONDS))
        recheck = recheck_of(exc)
        store, consumer = self.store, self.runner.consumer
        async with store.db.transaction() as db:
            locked = await waits.lock_run(db, run_id)
            if locked is None or (recheck is not None and await recheck(db)):
                vt = self.t
            released = await messages.give_back(db, [self.message.id], consumer.owner, vt)
        if released and vt <= self.t:
            store.wakeups.notify(queue_key(self.message.queue_id))

    def _before_deadline(self, vt: datetime) -> datetime:
        """A planned time, brought forward to the run's deadline (which then cancels it)."""
        return vt if self.deadline is None else min(vt, self.deadline)

    async def release_for_scheduling(self, vt: datetime) -> None:
        vt = self._before_deadline(vt)
        consumer = self.runner.consumer
        released = await messages.give_back(self.store.db, [self.message.id], consumer.owner, vt)
        if released and vt <= self.t:  # visible at once: wake idle loops (later ones poll)
            self.store.wakeups.notify(queue_key(self.message.queue_id))

    async def retry_after_outage(self, run_id: int, err: Exception) -> None:
        """The database failed under the run (a restart, a lost connection): nothing about
        the run was decided, so its message is given back, without counting the delivery,
        and the run resumes shortly. If the database is still away, giving back fails too and
        the loop's own failure handling (and the lease) take over."""
        log.warning(
            "workflow run %s (message %s) met a database error; it resumes in %ss: %s",
            run_id,
            self.message.id,
            OUTAGE_RETRY_SECONDS,
            err,
            extra={**self.runner.fields(self.message), "run_id": run_id},
        )
        await self.release_for_scheduling(self.t + seconds(OUTAGE_RETRY_SECONDS))

    async def after_failure(self, run_id: int, err: Exception) -> instrument.Outcome:
        """An unexpected exception: a run that is over is archived (a pending cancellation is
        finalised first); an open run is retried with the message backoff, which counts towards
        `max_read_ct` like any failed message. When that makes the trigger a dead letter, no
        delivery will come: the run ends ERROR, saying so (and `result()` reports it)."""
        current = await runs.status(self.store.db, run_id)
        if await self.finalise_if_cancelling(run_id, current) or current.is_terminal:
            await self.archive()
            return instrument.ARCHIVED
        if await self.runner.fail([self.message], err):
            reason = (
                f"Workflow trigger message {self.message.id} became a dead letter after "
                f"{self.message.read_ct} deliveries; last error: {type(err).__name__}: {err}"
            )
            await self.fail_if_open(run_id, reason)
            await self.wake_parent()  # no delivery (and so no archive) will come to do it
            return instrument.DEAD_LETTERED
        return instrument.RETRIED

    async def finalise_if_cancelling(self, run_id: int, current: Any = None) -> bool:
        """CANCELLING → CANCELLED (semantics.md §12.9); whether the run is now CANCELLED by us."""
        if current is not None and current != CANCELLING:
            return False
        if await runs.finalise_cancel(self.store.db, run_id, self.store.clock.now()):
            self.store.wakeups.notify(run_key(self.message.id))
            return True
        return False

    async def end_cancelled(self, run_id: int) -> None:
        """The handler reported a cancellation: make sure the run ends CANCELLED."""
        db, now = self.store.db, self.store.clock.now()
        if await runs.status(db, run_id) in OPEN:
            try:
                await runs.cancel(db, run_id, now)
            except StateTransitionError:
                return  # it finished meanwhile; its status stands
        await self.finalise_if_cancelling(run_id)

    async def fail_if_open(self, run_id: int, error: str) -> None:
        db, now = self.store.db, self.store.clock.now()
        try:
            await runs.finish(db, run_id, runs.ERROR, now, error=encode_json(error))
        except (StateTransitionError, WorkflowCancelledError):
            pass  # already finished, or the pending cancellation was finalised instead
        self.store.wakeups.notify(run_key(self.message.id))

    # -- when to come back ---------------------------------------------------------------------
    def backoff_time(self) -> datetime:
        return self.t + seconds(message_backoff_seconds(self.message.read_ct))

    async def retry_time(
        self, run_id: int, exc: TransientStepError | StepNotReadyError
    ) -> datetime:
        """The first that applies: the exception's own future `retry_at`; now, when a step has
        exhausted its retries (the next delivery surfaces `RetriesExhaustedError`); the earliest
        future `retry_at` of the run's failed steps; the message backoff."""
        planned = _time_or_none(getattr(exc, "retry_at", None))
        if planned is not None and planned > self.t:
            return planned
        retries = await runs.error_step_retries(self.store.db, run_id)
        if any(at is None for at in retries):
            return self.t
        future = [at for at in retries if at is not None and at > self.t]
        return min(future) if future else self.backoff_time()

    async def resume_time(self, run_id: int, exc: PausedError) -> datetime:
        """`paused_at + resume_after` of a PAUSED run; else `t + exc.resume_after`; else the
        message backoff."""
        record: RunRecord = await runs.get(self.store.db, run_id)
        error = record.error if isinstance(record.error, dict) else {}
        resume_after = retry_after_of(error.get("resume_after"))
        if record.status == PAUSED and resume_after is not None and record.paused_at:
            return parse_time(record.paused_at) + seconds(resume_after)
        own = retry_after_of(getattr(exc, "resume_after", None))
        return self.t + seconds(own) if own is not None else self.backoff_time()


def _time_or_none(value: Any) -> datetime | None:
    """A time attribute set by the library or by user code; unparsable means absent."""
    if value is None:
        return None
    try:
        return parse_time(value)
    except (TypeError, ValueError):
        return None
