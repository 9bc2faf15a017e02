"""The poll loop (semantics.md §10): status reads, claims, idle waits, heartbeats, interrupts.

No SQL here: rows move through `pgqrs.tables`, and what a handler's outcome means for its
messages is decided by a `Settler` (plain messages here, workflow runs in `pgqrs.workflows.loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from .. import instrument, tracing
from .._cancel import cleanup, complete
from ..errors import (
    PgqrsConnectionError,
    StateTransitionError,
    SuspendedError,
    WorkerNotFoundError,
    is_transient,
)
from ..policy import message_backoff_seconds
from ..store.executor import NotInstalledError
from ..store.threads import DbThread
from ..store.wakeup import Mark, queue_key, run_key, worker_key
from ..tables import failures, messages, queues, runs
from ..tables import workers as rows
from ..tables.workers import INTERRUPTED, POLLING, READY, STOPPED, SUSPENDED
from ..types import QueueMessage, RunRecord
from .recovery import sweep_queue
from .workers import Consumer

if TYPE_CHECKING:
    from ..tables.context import Context

log = logging.getLogger("pgqrs")

Handler = Callable[[Any], Any]


def is_async(fn: Any) -> bool:
    """An `async def` function (or a callable object or partial of one)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 (an object with an async __call__)
    )


async def call_handler(fn: Handler, arg: Any, thread: Callable[[], DbThread] | None = None) -> Any:
    """Call a handler. An `async def` one runs on the loop; any other runs on `thread` (the
    runner's own), so a blocking handler never stops the loop: heartbeats keep its leases
    alive, and other loops of the process go on. A returned awaitable is awaited on the loop.
    The thread is a daemon: a handler still running at a cold shutdown does not hold the
    process (docs/guarantees.md, "Handlers")."""
    if is_async(fn):
        result = fn(arg)
    else:
        context = contextvars.copy_context()
        if thread is None:
            result = await asyncio.to_thread(context.run, fn, arg)
        else:
            result = await thread().call(lambda _: context.run(fn, arg))
    if inspect.isawaitable(result):
        result = await result
    return result


def _nothing() -> None:
    """The handler thread's "connection": it has none."""


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

    # The messages are workflow triggers whose runs the poll loop's claim may open (get or
    # create, and start) in the same statement, where the backend can (`Runner.opened`).
    opens_runs: bool

    async def process(self, runner: Runner, claimed: list[QueueMessage]) -> None: ...


class Runner:
    """One consumer running a handler: the poll loop, or a single claim (`execute`)."""

    def __init__(
        self,
        store: Context,
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
        # The runs the last claim opened, by message id (a settler that `opens_runs` takes
        # them; where the backend cannot open them in the claim, it opens them itself).
        self.opened: dict[int, RunRecord] = {}
        self.defer_archive = False  # set by poll(): archives ride on the next claim
        self.next_reclaim = 0.0  # monotonic time of the next sweep for stale workers
        self.health = Health(
            store.settings.connection_timeout_seconds,
            gap=2 * max(settings.heartbeat, settings.poll_interval),
        )
        self._thread: DbThread | None = None  # for handlers that are not async
        self._queue_name: str | None = None  # read when first needed (logs, instrumentation)

    def thread(self) -> DbThread:
        """The thread this runner's plain-function handlers run on, one at a time."""
        if self._thread is None:
            self._thread = DbThread(_nothing, f"pgqrs-handler-{self.consumer.worker_id}")
        return self._thread

    def close_thread(self) -> None:
        # A handler still running there (its caller was cancelled) finishes on its own.
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    # -- time --------------------------------------------------------------------------------
    def message_time(self) -> datetime | None:
        """t: the injected time, else None (the database's clock as each statement runs):
        claims, releases, lease extensions."""
        return self.settings.at or self.store.sql_now()

    def wall_time(self) -> datetime | None:
        """The clock: heartbeats, worker timestamps and archive times never use `at()`."""
        return self.store.sql_now()

    # -- settling helpers used by settlers ----------------------------------------------------
    async def archive(self, ids: list[int]) -> None:
        """Archive messages a handler finished. The poll loop folds this into its next claim
        (one transaction instead of two); a one-shot run archives at once."""
        if self.defer_archive:
            self.finished.extend(ids)
        else:
            await self.consumer.archive_at(ids, self.wall_time())

    async def release_with_backoff(self, claimed: list[QueueMessage]) -> None:
        """Release each message with `vt = t + min(2^(read_ct-1), 60)` (semantics.md §10.2)."""
        now = self.message_time()
        by_delay: dict[int, list[int]] = {}
        for message in claimed:
            by_delay.setdefault(message_backoff_seconds(message.read_ct), []).append(message.id)
        for delay, ids in by_delay.items():
            await self.consumer.release_at(ids, now, delay)

    async def release_now(self, ids: list[int]) -> None:
        await self.consumer.release_at(ids, self.message_time())

    async def fail(self, claimed: list[QueueMessage], err: BaseException) -> list[QueueMessage]:
        """A handler failed on `claimed`: remember why (dead letters say why), release them
        with backoff; the ones this failure made dead letters, each logged once."""
        store = self.store
        for message in claimed:
            await failures.record(store.db, message.id, message.read_ct, err, self.wall_time())
        await self.release_with_backoff(claimed)
        limit = await self.max_read_ct()
        dead = [m for m in claimed if m.read_ct >= limit]
        for message in dead:
            log.warning(
                "message %s is a dead letter after %d deliveries; last error: %s: %s",
                message.id,
                message.read_ct,
                type(err).__name__,
                err,
                extra=await self.log_fields(message),
            )
        return dead

    # -- what logs and instrumentation say (docs/guides/observability.md) --------------------
    async def queue_name(self) -> str:
        """This runner's queue, by name: known to a consumer registered by it, else one read,
        the first time it is asked for."""
        if self._queue_name is None:
            self._queue_name = self.consumer._queue_name or None
        if self._queue_name is None:
            queue_id = self.consumer.queue_id
            info = None if queue_id is None else await queues.find_by_id(self.store.db, queue_id)
            self._queue_name = str(queue_id) if info is None else info.queue_name
        return self._queue_name

    @property
    def known_queue_name(self) -> str:
        """`queue_name()` without reading anything: the queue by id until its name was read."""
        consumer = self.consumer
        return self._queue_name or consumer._queue_name or str(consumer.queue_id)

    async def log_fields(self, message: QueueMessage | None = None) -> dict[str, Any]:
        """The structured fields of a log record about this runner (and one of its messages)."""
        await self.queue_name()
        return self.fields(message)

    def fields(self, message: QueueMessage | None = None) -> dict[str, Any]:
        """`log_fields` without reading anything (`known_queue_name`)."""
        fields: dict[str, Any] = {
            "queue": self.known_queue_name,
            "worker_id": self.consumer.worker_id,
        }
        if message is not None:
            fields["message_id"] = message.id
            fields["attempt"] = message.read_ct
        return fields

    async def observe(
        self, outcome: instrument.Outcome, started: float, claimed: list[QueueMessage]
    ) -> None:
        """Tell the instrumentation hooks how a handler call that began at `started` (a
        `time.perf_counter()`) ended. Callers check `instrument.observers` first."""
        # 0: observers arrived during the call, which was not timed.
        seconds = time.perf_counter() - started if started else 0.0
        instrument.settled(await self.queue_name(), outcome, seconds, claimed)

    async def observe_failure(
        self, started: float, claimed: list[QueueMessage], dead: list[QueueMessage]
    ) -> None:
        """A failed handler call: its dead letters, and the rest retried."""
        dead_ids = {m.id for m in dead}
        retried = [m for m in claimed if m.id not in dead_ids]
        if retried:
            await self.observe(instrument.RETRIED, started, retried)
        if dead:
            await self.observe(instrument.DEAD_LETTERED, started, dead)

    async def max_read_ct(self) -> int:
        """The poison threshold of this runner's queue (stored with it, shared by all)."""
        queue_id = self.consumer.queue_id
        assert queue_id is not None
        store = self.store
        return await queues.max_read_ct(store.db, queue_id, store.settings.max_read_ct)

    # -- status ------------------------------------------------------------------------------
    async def start_polling(self) -> None:
        """Loop start (semantics.md §9.1): `ready`/`polling` become `polling`, heartbeat refreshed,
        and the heartbeat interval this loop keeps is stored for sweeps to judge it by."""
        db, consumer = self.store.db, self.consumer
        fence = consumer.owner.fence
        interval = self.settings.heartbeat
        if await rows.start_polling(db, consumer.worker_id, fence, interval, self.wall_time()):
            return
        status = await rows.status(db, consumer.worker_id, fence)
        await self.refuse_unless_ready(status, raise_stopped=True)
        raise StateTransitionError(
            f"Invalid state transition from {status.db} to polling: "
            "Worker must be Ready to start polling"
        )

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
        await self._move(SUSPENDED, (INTERRUPTED,))

    async def _move(self, to: Any, allowed: tuple[Any, ...]) -> bool:
        consumer = self.consumer
        return await rows.try_transition(
            self.store.db,
            consumer.worker_id,
            to,
            allowed,
            self.wall_time(),
            fence=consumer.owner.fence,
        )

    # -- the loop ----------------------------------------------------------------------------
    async def poll(self) -> NoReturn:
        self.defer_archive = True
        health = self.health
        try:
            await self.start_polling()
            health.succeeded()
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "worker %s polling queue %s",
                    self.consumer.worker_id,
                    await self.queue_name(),
                    extra=self.fields(),
                )
            self.store.db.watch(self.store.wakeups)
            async with self.heartbeats():
                while True:
                    mark = self.store.wakeups.mark(self.wake_keys)
                    try:
                        await self.reclaim_stale()
                        # One transaction: archive what the last handler finished, claim the
                        # next batch unless the worker stopped polling.
                        claimed = await self.step()
                        health.succeeded()
                        if claimed:
                            # Handler errors are settled inside; what escapes as a database
                            # error is a failed release: the lease brings the messages back,
                            # so the loop goes on like after a failed claim.
                            await self.handle(claimed)
                        else:
                            status = await rows.status(
                                self.store.db, self.consumer.worker_id, self.consumer.owner.fence
                            )
                            if status != POLLING:
                                await self.refuse_unless_ready(status, raise_stopped=False)
                    except PgqrsConnectionError as err:
                        health.failed(err, self.fields())
                        await self.idle()
                        continue
                    if not claimed:
                        await self.wait_for_work(mark)
        except asyncio.CancelledError:
            await cleanup(self.on_cancel())
            raise
        except SuspendedError:
            raise
        except BaseException as err:
            # The loop's own error, or a BaseException from the handler: back to `ready`
            # (an interrupt that arrived meanwhile still ends `suspended`). Not when the loop
            # gives up on an unreachable database: each attempt would wait the connection
            # timeout again; the row stays `polling`, and sweeps judge it by its silence.
            if not is_transient(err):
                await cleanup(self.on_error(err))
            raise
        finally:
            await cleanup(self.flush_finished())
            await cleanup(self.finish())
            self.close_thread()
            log.info("worker %s left its poll loop", self.consumer.worker_id, extra=self.fields())

    async def step(self) -> list[QueueMessage]:
        """Archive what the last handler finished and claim the next batch, as one
        transaction. (Cancelled, the statement may still commit: `on_cancel` gives back
        everything the loop holds, so no claim outlives a cancelled loop.)"""
        s, store, consumer = self.settings, self.store, self.consumer
        queue_id = consumer.queue_id
        assert queue_id is not None
        finished, self.finished = self.finished, []
        self.opened = {}
        started = tracing.clock()
        try:
            limits = await consumer.limited()
            opens_runs = (
                limits is None
                and self.settler is not None
                and self.settler.opens_runs
                and bool(store.db.sql.LOOP_STEP_OPEN_RUNS)
            )
            rows_ = await messages.loop_step(
                store.db,
                queue_id,
                consumer.owner,
                finished,
                s.batch,
                s.lease,
                self.message_time(),
                self.wall_time(),
                store.settings.max_read_ct,
                limits=limits,
                open_runs_at=store.clock.now() if opens_runs else None,
            )
        except BaseException:
            # Not known to be archived: the next step (or the exit) archives them again.
            self.finished = finished + self.finished
            raise
        if opens_runs:
            rows_, self.opened = runs.split_opened(rows_)
        if not rows_:
            return []
        claimed = await store.messages.read(store.db, rows_)
        tracing.received(self.known_queue_name, claimed, started, consumer.worker_id)
        if instrument.observers:
            instrument.claimed(await self.queue_name(), len(claimed))
        return claimed

    async def flush_finished(self) -> None:
        """On the way out, archive what handlers finished since the last claim."""
        if self.finished:
            ids, self.finished = self.finished, []
            await self.consumer.archive_at(ids, self.wall_time())

    async def reclaim_stale(self) -> None:
        """At most every 3 H: stop this queue's poll-loop workers that stopped heartbeating
        and take back what they held under leases that are over (semantics.md §14), so a fleet
        heals itself without anyone running an admin job. Each worker is judged by its own
        heartbeat interval, and only on a silence this loop was healthy through."""
        if time.monotonic() < self.next_reclaim:
            return
        self.next_reclaim = time.monotonic() + 3 * self.settings.heartbeat
        await self.end_dead_lettered_runs()
        done = await sweep_queue(self.store, self.consumer, self.health.healthy_for())
        if done.workers:
            log.info(
                "worker %s stopped %d stale worker(s), released %d message(s)",
                self.consumer.worker_id,
                done.workers,
                done.messages,
            )

    async def end_dead_lettered_runs(self) -> None:
        """Workflow runs whose trigger became a dead letter without any handler seeing its last
        delivery (its worker crashed on every one) end ERROR, so nobody waits for them."""
        queue_id = self.consumer.queue_id
        assert queue_id is not None
        limit = await self.max_read_ct()
        reason = (
            f"Workflow trigger message became a dead letter: delivered {limit} times without "
            "the run finishing (its worker crashed or was cut off each time)"
        )
        store = self.store
        # At the loop's message time, as its claims see the messages.
        for message_id in await runs.fail_dead_lettered(
            store.db, queue_id, limit, reason, self.message_time()
        ):
            log.warning("workflow run of message %s ended ERROR: %s", message_id, reason)
            store.wakeups.notify(run_key(message_id))

    async def claim(self) -> list[QueueMessage]:
        s = self.settings
        claimed = await self.consumer.claim(s.batch, s.lease, self.message_time())
        if claimed and instrument.observers:
            instrument.claimed(await self.queue_name(), len(claimed))
        return claimed

    @property
    def wake_keys(self) -> tuple[tuple[str, int], ...]:
        return (queue_key(self.consumer.queue_id or 0), worker_key(self.consumer.worker_id))

    async def wait_for_work(self, mark: Mark) -> None:
        """After a claim that took nothing: idle, or, on a queue whose token bucket is empty,
        sleep until its next token (semantics.md §7.10) instead of claiming in vain. An empty
        bucket of the queue's own ignores enqueues meanwhile: they could not be claimed
        sooner; a stop, interrupt or status change still wakes the loop."""
        consumer = self.consumer
        throttle = await consumer.throttled_for()
        if throttle is None:
            await self.idle(since=mark)
            return
        seconds, queue_full = throttle
        # At least a millisecond: the local estimate of the database's clock may run ahead.
        seconds = min(max(seconds, 0.001), self.settings.poll_interval)
        if queue_full:
            await self.store.wakeups.wait((worker_key(consumer.worker_id),), seconds)
        else:
            await self.store.wakeups.wait(self.wake_keys, seconds, mark)

    async def idle(self, since: Mark | None = None) -> None:
        """Wait the poll interval, or less if work or a status change arrives meanwhile."""
        await self.store.wakeups.wait(self.wake_keys, self.settings.poll_interval, since)

    async def handle(self, claimed: list[QueueMessage]) -> None:
        assert self.settler is not None
        self.in_flight = [m.id for m in claimed]
        try:
            # The span continues the trace each message carries (pgqrs.tracing).
            with tracing.process(self.known_queue_name, claimed, self.consumer.worker_id):
                await self.settler.process(self, claimed)
        except BaseException:
            if self.in_flight:
                await cleanup(self.release_now(self.in_flight))
            raise
        finally:
            self.in_flight = []

    async def on_cancel(self) -> None:
        """A cancelled loop ends `suspended` and holding nothing, wherever the cancellation
        landed once the loop had started (even before its worker was moved to `polling`). A
        claim the cancellation cut off may still have committed (the SQLite writer thread
        runs it to its end; PostgreSQL may commit a statement whose reply was never read):
        what it took is given back here, after it (visible at once, the delivery not
        counted). What a cancelled handler held was released already (`handle`)."""
        await self.flush_finished()  # first: what handlers finished is archived, not given back
        await self.finish_step()
        await self._move(SUSPENDED, (READY, POLLING, INTERRUPTED))

    async def finish_step(self) -> None:
        """Give back every message the loop's registration holds that no handler has."""
        store, consumer = self.store, self.consumer
        if await messages.give_back_all(store.db, consumer.owner, store.sql_now()):
            assert consumer.queue_id is not None
            store.wakeups.notify(queue_key(consumer.queue_id))

    async def on_error(self, err: BaseException) -> None:
        if isinstance(err, WorkerNotFoundError):
            return
        if not await self._move(READY, (POLLING,)):
            await self._move(SUSPENDED, (INTERRUPTED,))

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
            # Not `await task` inside suppress(CancelledError): that would also swallow a
            # cancellation of the loop itself arriving now (the loop would end suspended
            # instead of cancelled).
            await asyncio.wait((task,))
            if not task.cancelled():
                task.exception()  # retrieved; the beat logs its own failures

    async def _beat(self) -> None:
        """Heartbeat every H seconds; while a handler holds messages, keep their lease alive."""
        s = self.settings
        tick = min(s.heartbeat, s.lease / 2)
        last_beat = time.monotonic()
        db, consumer = self.store.db, self.consumer
        owner = consumer.owner
        failing = False
        while True:
            await asyncio.sleep(tick)
            try:
                called = False
                if self.in_flight:
                    await messages.set_lease(
                        db, list(self.in_flight), owner, s.lease, self.message_time()
                    )
                    called = True
                if time.monotonic() - last_beat >= s.heartbeat:
                    last_beat = time.monotonic()
                    await rows.heartbeat(db, consumer.worker_id, self.wall_time(), owner.fence)
                    called = True
                if not called:
                    continue  # nothing asked of the database: no news of its health
                self.health.succeeded()
                if failing:
                    log.info("heartbeat of worker %s works again", consumer.worker_id)
                failing = False
            except WorkerNotFoundError:
                return  # the loop notices at its next status read
            except Exception as err:
                self.health.interrupted()
                # One line per failure; the loop's own errors say the rest.
                log.warning(
                    "heartbeat of worker %s failed; retrying: %s",
                    consumer.worker_id,
                    err,
                    extra=self.fields(),
                )
                log.debug("heartbeat failure", exc_info=True)
                failing = True


class Health:
    """A loop's own view of the database: when its calls last succeeded, and since when they
    have succeeded without a gap.

    Failures are tolerated for `limit` seconds after the last success (semantics.md §10.1: the
    loop then raises). A gap longer than `gap` between successes (a failure, or a call that
    hung: a stall everyone may have shared) restarts the healthy period, and sweeps judge
    other workers only on silences as long as that period (docs/guarantees.md, "Recovery").
    """

    def __init__(self, limit: float, gap: float) -> None:
        self.limit = limit
        self.gap = gap
        self.last_ok = time.monotonic()
        self.ok_since: float | None = None

    def succeeded(self) -> None:
        now = time.monotonic()
        if self.ok_since is None or now - self.last_ok > self.gap:
            self.ok_since = now
        self.last_ok = now

    def interrupted(self) -> None:
        self.ok_since = None

    def failed(self, err: PgqrsConnectionError, fields: dict[str, Any] | None = None) -> None:
        if isinstance(err, NotInstalledError):
            raise err  # not transient: waiting will not create the tables
        self.ok_since = None
        if time.monotonic() - self.last_ok >= self.limit:
            raise err
        log.warning("poll loop database error, retrying: %s", err, extra=fields)

    def healthy_for(self) -> float:
        """Seconds of gap-free success so far (0 while failing)."""
        if self.ok_since is None or time.monotonic() - self.last_ok > self.gap:
            return 0.0
        return time.monotonic() - self.ok_since


async def finish_ephemeral(store: Context, consumer: Consumer) -> None:
    """Release what an ephemeral worker still owns and mark it stopped (semantics.md §9.5)."""
    now = store.sql_now()

    async def finish() -> int:
        async with store.db.transaction() as db:
            released = await messages.release_worker(db, consumer.worker_id, now)
            await rows.mark_stopped(db, consumer.worker_id, now)
        return released

    if await complete(finish()) and consumer.queue_id is not None:
        store.wakeups.notify(queue_key(consumer.queue_id))


class MessageSettler:
    """`handle` / `handle_batch`: archive on success, release with backoff on failure."""

    opens_runs = False

    def __init__(self, fn: Handler, *, batch: bool, reraise: bool = False) -> None:
        self.fn = fn
        self.batch = batch
        self.reraise = reraise  # one-shot forms re-raise the handler's exception

    async def process(self, runner: Runner, claimed: list[QueueMessage]) -> None:
        started = time.perf_counter() if instrument.observers else 0.0
        try:
            await call_handler(self.fn, claimed if self.batch else claimed[0], runner.thread)
        except Exception as err:
            tracing.failed(err)
            dead = await runner.fail(claimed, err)
            runner.in_flight = []
            if instrument.observers:
                await runner.observe_failure(started, claimed, dead)
            if self.reraise:
                raise
            log.warning(
                "handler failed for message(s) %s; released with backoff",
                [m.id for m in claimed],
                exc_info=True,
                extra=await runner.log_fields(claimed[0] if len(claimed) == 1 else None),
            )
            return
        await runner.archive([m.id for m in claimed])
        runner.in_flight = []
        if instrument.observers:
            await runner.observe(instrument.ARCHIVED, started, claimed)
