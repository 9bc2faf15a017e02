"""The poll loop (semantics §10): status reads, claims, idle waits, heartbeats, interrupts.

No SQL here: rows move through `pgqrs.tables`, and what a handler's outcome means for its
messages is decided by a `Settler` (plain messages here, workflow runs in `pgqrs.workflow_loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from ._clock import seconds
from .errors import (
    PgqrsConnectionError,
    PgqrsError,
    StateTransitionError,
    SuspendedError,
    WorkerNotFoundError,
)
from .operations import sweep_queue
from .policy import message_backoff_seconds
from .store.executor import NotInstalledError
from .store.wakeup import Mark, queue_key, worker_key
from .tables import messages
from .tables import workers as rows
from .tables.workers import INTERRUPTED, POLLING, READY, STOPPED, SUSPENDED
from .types import QueueMessage
from .workers import Consumer

if TYPE_CHECKING:
    from .store.facade import Store

log = logging.getLogger("pgqrs")

Handler = Callable[[Any], Any]

CANCEL_CLEANUP_SECONDS = 5.0


async def call_handler(fn: Handler, arg: Any) -> Any:
    """Call a sync or async handler; a returned awaitable is awaited."""
    result = fn(arg)
    if inspect.isawaitable(result):
        result = await result
    return result


def suspended(reason: str) -> SuspendedError:
    return SuspendedError(f"Operation suspended: {reason}", reason=reason)


@dataclass(frozen=True)
class LoopSettings:
    batch: int
    lease: float  # L: seconds each claim leases for
    poll_interval: float  # P: idle wait, seconds
    heartbeat: float  # H: seconds between heartbeats
    at: datetime | None  # a fixed "now" for claims and releases, from `at()`


class Settler(Protocol):
    """Runs the handler on claimed messages and settles them (archive, release, ...)."""

    async def process(self, runner: Runner, claimed: list[QueueMessage]) -> None: ...


class Runner:
    """One consumer running a handler: the poll loop, or a single claim (`execute`)."""

    def __init__(
        self,
        store: Store,
        consumer: Consumer,
        settings: LoopSettings,
        settler: Settler | None,
        *,
        ephemeral: bool,
    ) -> None:
        self.store = store
        self.consumer = consumer
        self.settings = settings
        self.settler = settler
        self.ephemeral = ephemeral
        self.in_flight: list[int] = []
        self.finished: list[int] = []  # handled successfully, archived by the next step
        self.defer_archive = False  # set by poll(): archives ride on the next claim
        self.next_reclaim = 0.0  # monotonic time of the next sweep for stale workers

    # -- time --------------------------------------------------------------------------------
    def message_time(self) -> datetime:
        """t: the injected time, else the clock (claims, releases, lease extensions)."""
        return self.settings.at or self.store.clock.now()

    def wall_time(self) -> datetime:
        """The clock: heartbeats, worker timestamps and archive times never use `at()`."""
        return self.store.clock.now()

    # -- settling helpers used by settlers ----------------------------------------------------
    async def archive(self, ids: list[int]) -> None:
        """Archive messages a handler finished. The poll loop folds this into its next claim
        (one transaction instead of two); a one-shot run archives at once."""
        if self.defer_archive:
            self.finished.extend(ids)
        else:
            await self.consumer.archive_at(ids, self.wall_time())

    async def release_with_backoff(self, claimed: list[QueueMessage]) -> None:
        """Release each message with `vt = t + min(2^(read_ct-1), 60)` (semantics §10.2)."""
        now = self.message_time()
        by_delay: dict[int, list[int]] = {}
        for message in claimed:
            by_delay.setdefault(message_backoff_seconds(message.read_ct), []).append(message.id)
        for delay, ids in by_delay.items():
            await self.consumer.release_at(ids, now + seconds(delay))

    async def release_now(self, ids: list[int]) -> None:
        await self.consumer.release_at(ids, self.message_time())

    # -- status ------------------------------------------------------------------------------
    async def start_polling(self) -> None:
        """Loop start (semantics §9.1): `ready`/`polling` become `polling`, heartbeat refreshed."""
        db, wid = self.store.db, self.consumer.worker_id
        try:
            await rows.transition(
                db,
                wid,
                POLLING,
                (READY, POLLING),
                "Worker must be Ready to start polling",
                now=self.wall_time(),
            )
        except StateTransitionError:
            await self.refuse_unless_ready(await rows.status(db, wid), raise_stopped=True)
            raise

    async def refuse_unless_ready(self, status: Any, *, raise_stopped: bool) -> None:
        """Interrupted: suspend and stop with SuspendedError; suspended too; stopped as asked."""
        if status == INTERRUPTED:
            await self.suspend_after_interrupt()
            raise suspended("worker interrupted")
        if status == SUSPENDED:
            raise suspended("worker suspended")
        if status == STOPPED and not raise_stopped:
            raise suspended("worker stopped")

    async def suspend_after_interrupt(self) -> None:
        await rows.try_transition(
            self.store.db, self.consumer.worker_id, SUSPENDED, (INTERRUPTED,), self.wall_time()
        )

    # -- the loop ----------------------------------------------------------------------------
    async def poll(self) -> NoReturn:
        failures = _FailureWindow(self.store.settings.connection_timeout_seconds)
        self.defer_archive = True
        try:
            await self.start_polling()
            self.store.db.watch(self.store.wakeups)
            async with self.heartbeats():
                while True:
                    mark = self.store.wakeups.mark(self.wake_keys)
                    try:
                        await self.reclaim_stale()
                        # One transaction: archive what the last handler finished, claim the
                        # next batch unless the worker stopped polling.
                        claimed = await self.step()
                        if claimed:
                            # Handler errors are settled inside; what escapes as a database
                            # error is a failed release: the lease brings the messages back,
                            # so the loop goes on like after a failed claim.
                            await self.handle(claimed)
                        else:
                            status = await rows.status(self.store.db, self.consumer.worker_id)
                            if status != POLLING:
                                await self.refuse_unless_ready(status, raise_stopped=False)
                    except PgqrsConnectionError as err:
                        failures.failed(err)
                        await self.idle()
                        continue
                    failures.reset()
                    if not claimed:
                        await self.idle(since=mark)
        except asyncio.CancelledError:
            await _shielded(self.on_cancel())
            raise
        except SuspendedError:
            raise
        except BaseException as err:
            # The loop's own error, or a BaseException from the handler: back to `ready`
            # (an interrupt that arrived meanwhile still ends `suspended`).
            await _shielded(self.on_error(err))
            raise
        finally:
            await _shielded(self.flush_finished())
            await _shielded(self.finish())

    async def step(self) -> list[QueueMessage]:
        s, store = self.settings, self.store
        queue_id = self.consumer.queue_id
        assert queue_id is not None
        rows_ = await messages.loop_step(
            store.db,
            queue_id,
            self.consumer.worker_id,
            self.finished,
            s.batch,
            s.lease,
            self.message_time(),
            self.wall_time(),
            store.settings.max_read_ct,
        )
        self.finished = []
        return await store.messages.read(store.db, rows_) if rows_ else []

    async def flush_finished(self) -> None:
        """On the way out, archive what handlers finished since the last claim."""
        if self.finished:
            ids, self.finished = self.finished, []
            await self.consumer.archive_at(ids, self.wall_time())

    async def reclaim_stale(self) -> None:
        """At loop start and then at most every 3 H: stop this queue's poll-loop workers that
        stopped heartbeating and take their messages back (semantics §14), so a fleet heals
        itself without anyone running an admin job."""
        if time.monotonic() < self.next_reclaim:
            return
        window = 3 * self.settings.heartbeat
        self.next_reclaim = time.monotonic() + window
        done = await sweep_queue(
            self.store,
            self.consumer,
            window,
            visible_at=min(self.message_time(), self.wall_time()),
        )
        if done.workers:
            log.info(
                "worker %s stopped %d stale worker(s), released %d message(s)",
                self.consumer.worker_id,
                done.workers,
                done.messages,
            )

    async def claim(self) -> list[QueueMessage]:
        s = self.settings
        return await self.consumer.claim(s.batch, s.lease, self.message_time())

    @property
    def wake_keys(self) -> tuple[tuple[str, int], ...]:
        return (queue_key(self.consumer.queue_id or 0), worker_key(self.consumer.worker_id))

    async def idle(self, since: Mark | None = None) -> None:
        """Wait the poll interval, or less if work or a status change arrives meanwhile."""
        await self.store.wakeups.wait(self.wake_keys, self.settings.poll_interval, since)

    async def handle(self, claimed: list[QueueMessage]) -> None:
        assert self.settler is not None
        self.in_flight = [m.id for m in claimed]
        try:
            await self.settler.process(self, claimed)
        except BaseException:
            if self.in_flight:
                await _shielded(self.release_now(self.in_flight))
            raise
        finally:
            self.in_flight = []

    async def on_cancel(self) -> None:
        await rows.try_transition(
            self.store.db,
            self.consumer.worker_id,
            SUSPENDED,
            (POLLING, INTERRUPTED),
            self.wall_time(),
        )

    async def on_error(self, err: BaseException) -> None:
        if isinstance(err, WorkerNotFoundError):
            return
        db, wid, now = self.store.db, self.consumer.worker_id, self.wall_time()
        if not await rows.try_transition(db, wid, READY, (POLLING,), now):
            await rows.try_transition(db, wid, SUSPENDED, (INTERRUPTED,), now)

    async def finish(self) -> None:
        """On every exit: an ephemeral worker gives back what it holds and is stopped."""
        if self.ephemeral:
            await finish_ephemeral(self.store, self.consumer)

    # -- heartbeats --------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def heartbeats(self) -> Any:
        task = asyncio.create_task(self._beat(), name=f"pgqrs-heartbeat-{self.consumer.worker_id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _beat(self) -> None:
        """Heartbeat every H seconds; while a handler holds messages, keep their lease alive."""
        s = self.settings
        tick = min(s.heartbeat, s.lease / 2)
        last_beat = time.monotonic()
        db, wid = self.store.db, self.consumer.worker_id
        while True:
            await asyncio.sleep(tick)
            try:
                if self.in_flight:
                    vt = self.message_time() + seconds(s.lease)
                    await messages.set_lease(db, list(self.in_flight), wid, vt)
                if time.monotonic() - last_beat >= s.heartbeat:
                    last_beat = time.monotonic()
                    await rows.heartbeat(db, wid, self.wall_time())
            except WorkerNotFoundError:
                return  # the loop notices at its next status read
            except Exception:
                log.warning("heartbeat of worker %s failed; retrying", wid, exc_info=True)


class _FailureWindow:
    """Tolerates database failures for up to `limit` seconds in a row (semantics §10.1)."""

    def __init__(self, limit: float) -> None:
        self._limit = limit
        self._since: float | None = None

    def failed(self, err: PgqrsConnectionError) -> None:
        if isinstance(err, NotInstalledError):
            raise err  # not transient: waiting will not create the tables
        now = time.monotonic()
        if self._since is None:
            self._since = now
        if now - self._since >= self._limit:
            raise err
        log.warning("poll loop database error, retrying: %s", err)

    def reset(self) -> None:
        self._since = None


async def _shielded(work: Awaitable[Any]) -> None:
    """Run cleanup to completion even if the caller is cancelled again, within a bound."""
    task = asyncio.ensure_future(work)
    try:
        async with asyncio.timeout(CANCEL_CLEANUP_SECONDS):  # not wait_for: it can drop a cancel
            await asyncio.shield(task)
    except asyncio.CancelledError:
        raise
    except PgqrsError as err:  # e.g. the store was closed under a running loop
        log.warning("cleanup after the poll loop failed: %s", err)
    except Exception:
        log.warning("cleanup after the poll loop failed", exc_info=True)


async def finish_ephemeral(store: Store, consumer: Consumer) -> None:
    """Release what an ephemeral worker still owns and mark it stopped (semantics §9.5)."""
    now = store.clock.now()
    async with store.db.transaction() as db:
        released = await messages.release_worker(db, consumer.worker_id, now)
        await rows.mark_stopped(db, consumer.worker_id, now)
    if released and consumer.queue_id is not None:
        store.wakeups.notify(queue_key(consumer.queue_id))


class MessageSettler:
    """`handle` / `handle_batch`: archive on success, release with backoff on failure."""

    def __init__(self, fn: Handler, *, batch: bool, reraise: bool = False) -> None:
        self.fn = fn
        self.batch = batch
        self.reraise = reraise  # one-shot forms re-raise the handler's exception

    async def process(self, runner: Runner, claimed: list[QueueMessage]) -> None:
        try:
            await call_handler(self.fn, claimed if self.batch else claimed[0])
        except Exception:
            await runner.release_with_backoff(claimed)
            runner.in_flight = []
            if self.reraise:
                raise
            log.warning(
                "handler failed for message(s) %s; released with backoff",
                [m.id for m in claimed],
                exc_info=True,
            )
            return
        await runner.archive([m.id for m in claimed])
        runner.in_flight = []
