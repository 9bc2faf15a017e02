"""`handle_workflow`: running workflow runs from a poll loop (semantics.md §11).

Claimed trigger messages are processed one after another, in claim order. Each gets its run
(created on first delivery, found again after a crash); finished runs are archived without
calling the handler; otherwise the handler's outcome decides what happens to the message
(semantics.md §11.2). Planned waits (a step's retry time, a pause) release the message "for
scheduling": visible again at the planned time, with the claim given back so waiting never
makes it poison.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._clock import parse_time, seconds
from ..errors import (
    PausedError,
    RetriesExhaustedError,
    StateTransitionError,
    StepNotReadyError,
    TransientStepError,
    WorkflowCancelledError,
    is_transient,
)
from ..policy import message_backoff_seconds
from ..queue.loop import Handler, call_handler
from ..store.wakeup import queue_key, run_key
from ..tables import messages, runs
from ..tables.runs import CANCELLING, OPEN, PAUSED
from ..types import QueueMessage, RunRecord
from ..validation import encode_json
from .run import Run
from .steps import retry_after_of

if TYPE_CHECKING:
    from ..queue.loop import Runner

log = logging.getLogger("pgqrs")

# How soon a run the database failed under is tried again.
OUTAGE_RETRY_SECONDS = 1.0


class WorkflowSettler:
    """Settles each claimed trigger message according to its run (semantics.md §11)."""

    def __init__(self, fn: Handler, *, reraise: bool = False) -> None:
        self.fn = fn
        self.reraise = reraise  # `execute()` re-raises a handler's unexpected exception

    async def process(self, runner: Runner, claimed: list[QueueMessage]) -> None:
        first_error: Exception | None = None
        for message in claimed:
            error = await _Delivery(runner, message).settle(self.fn)
            runner.in_flight = [mid for mid in runner.in_flight if mid != message.id]
            if first_error is None:
                first_error = error
        if first_error is not None and self.reraise:
            raise first_error


class _Delivery:
    """One claimed trigger message and its run."""

    def __init__(self, runner: Runner, message: QueueMessage) -> None:
        self.runner = runner
        self.store = runner.store
        self.message = message
        # The loop's time for Python-side schedules (the injected `at`, else the clock).
        self.t = runner.settings.at or runner.store.clock.now()

    async def settle(self, fn: Handler) -> Exception | None:
        """Run the handler if the run is still open; the unexpected exception it raised, if any.

        A missing workflow (`NotFoundError`) and non-`Exception` `BaseException`s propagate: the
        runner releases what is still in flight and the loop ends.
        """
        store, message = self.store, self.message
        record = await runs.get_or_create(
            store.db, message.id, message.queue_id, message.raw_payload, store.clock.now()
        )
        store.messages.remember_workflow_queue(message.queue_id)
        if record.status not in OPEN:
            await self.finalise_if_cancelling(record.id, record.status)
            await self.archive()
            return None
        run = Run._wrap(store, record, current_time=self.runner.settings.at)
        try:
            await call_handler(fn, run, self.runner.thread)
        except (TransientStepError, StepNotReadyError) as exc:
            await self.release_for_scheduling(await self.retry_time(record.id, exc))
        except PausedError as exc:
            await self.release_for_scheduling(await self.resume_time(record.id, exc))
        except WorkflowCancelledError:
            await self.end_cancelled(record.id)
            await self.archive()
        except RetriesExhaustedError as exc:
            await self.fail_if_open(record.id, str(exc))
            await self.archive()
        except Exception as exc:
            if is_transient(exc):
                await self.retry_after_outage(record.id, exc)
                return None
            log.warning(
                "workflow handler failed for run %s (message %s)",
                record.id,
                message.id,
                exc_info=True,
            )
            await self.after_failure(record.id, exc)
            return exc
        else:
            if not run._ended_here:  # a finished run cannot be CANCELLING: nothing to look at
                await self.finalise_if_cancelling(record.id)
            await self.archive()
        return None

    # -- settling ------------------------------------------------------------------------------
    async def archive(self) -> None:
        await self.runner.archive([self.message.id])

    async def release_for_scheduling(self, vt: datetime) -> None:
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
        )
        await self.release_for_scheduling(self.t + seconds(OUTAGE_RETRY_SECONDS))

    async def after_failure(self, run_id: int, err: Exception) -> None:
        """An unexpected exception: a run that is over is archived (a pending cancellation is
        finalised first); an open run is retried with the message backoff, which counts towards
        `max_read_ct` like any failed message. When that makes the trigger a dead letter, no
        delivery will come: the run ends ERROR, saying so (and `result()` reports it)."""
        current = await runs.status(self.store.db, run_id)
        if await self.finalise_if_cancelling(run_id, current) or current.is_terminal:
            await self.archive()
            return
        if await self.runner.fail([self.message], err):
            reason = (
                f"Workflow trigger message {self.message.id} became a dead letter after "
                f"{self.message.read_ct} deliveries; last error: {type(err).__name__}: {err}"
            )
            await self.fail_if_open(run_id, reason)

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
