"""Recovery (docs/guarantees.md, "Recovery"): stale workers are stopped, by `reclaim_messages`
and by every poll loop on its own, and what they held under a lease that is over comes back;
a lease that is still running is never taken; each worker is judged by its own heartbeat
interval, and never for a stall the sweeper shared; fencing keeps a reclaimed worker out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

import pgqrs
from tests.support.clocks import OffsetClock, at
from tests.support.target import StoreFactory, Target
from tests.support.waiting import eventually

HOUR = 3600.0


async def past_store(make_store: StoreFactory, seconds: float = HOUR, **fields: Any) -> pgqrs.Store:
    """A store whose clock runs `seconds` behind: its workers' heartbeats are that old."""
    store = await make_store(**fields)
    store.clock = OffsetClock(-seconds)
    return store


async def past_producer(make_store: StoreFactory, queue: str) -> pgqrs.Producer:
    """A producer whose messages were enqueued an hour ago: visible at any time since."""
    return await (await past_store(make_store)).producer(queue)


async def stale_consumer(
    make_store: StoreFactory, queue: str, holding: int = 0, *, lease_over: bool = True
) -> Any:
    """A consumer that last beat an hour ago, holding `holding` messages: under a lease that
    ended a minute ago (`lease_over`), else under one that runs for another hour. The messages
    must have been visible two minutes ago (see `past_producer`)."""
    past = await past_store(make_store)
    consumer = await past.consumer(queue)
    if holding:
        claimed = (
            await consumer.dequeue_at(holding, 60, at(-120))
            if lease_over
            else await consumer.dequeue_at(holding, int(HOUR), at(0))
        )
        assert len(claimed) == holding
    return consumer


class Zombie:
    """A poll loop that hangs in its handler while holding messages, on a store whose clock
    runs an hour behind: alive, beating, yet every beat an hour old, as a worker cut off from
    the database (or dead) looks to the others. It claims at `claim_at` seconds from now for
    `lease` seconds; its heartbeats renew the lease from that same time, so a lease that ends
    in the past stays over. It beats every second: stale after 3 s of a sweeper's health."""

    def __init__(self, store: pgqrs.Store, consumer: pgqrs.Consumer) -> None:
        self.store = store
        self.consumer = consumer
        self.holding = asyncio.Event()
        self.task: asyncio.Task[Any] | None = None

    @classmethod
    async def start(
        cls,
        make_store: StoreFactory,
        queue: str,
        batch: int,
        claim_at: float = -120,
        lease: float = 60,
    ) -> Zombie:
        past = await past_store(make_store, heartbeat_interval_seconds=1)
        zombie = cls(past, await past.consumer(queue))
        builder = pgqrs.dequeue().worker(zombie.consumer).batch(batch).lease(lease)
        builder.handle_batch(zombie.hang).poll_interval(20).at(at(claim_at))
        zombie.task = asyncio.create_task(builder.poll(past))
        await asyncio.wait_for(zombie.holding.wait(), 5)
        return zombie

    async def hang(self, messages: list[pgqrs.QueueMessage]) -> None:
        self.holding.set()
        await asyncio.Event().wait()

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task


async def test_reclaim_stops_stale_workers_and_releases(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    producer = await past_producer(make_store, queue)
    ids = await producer.enqueue_batch([1, 2, 3])
    live = await store.consumer(queue)
    [kept] = await live.dequeue()
    stale = await stale_consumer(make_store, queue, holding=2)
    idle_stale = await stale_consumer(make_store, queue)
    already_stopped = await stale_consumer(make_store, queue)
    await already_stopped.shutdown()
    suspended = await stale_consumer(make_store, queue)
    await suspended.suspend()
    interrupted = await stale_consumer(make_store, queue)
    await interrupted.interrupt()

    assert await pgqrs.admin(store).reclaim_messages() == 2

    workers = await store.get_workers()
    for worker in (stale, idle_stale, suspended, interrupted):
        info = await workers.get(worker.worker_id)
        assert info.status == pgqrs.WorkerStatus.Stopped
        assert info.shutdown_at is not None
    assert await live.status() == "ready"
    messages = await store.get_messages()
    for mid in ids[1:]:
        message = await messages.get(mid)
        assert (message.consumer_worker_id, message.archived_at, message.read_ct) == (None, None, 1)
    assert (await messages.get(kept.id)).consumer_worker_id == live.worker_id
    # Released messages are visible at once (their leases were over already).
    assert sorted(m.id for m in await (await store.consumer(queue)).dequeue(5)) == ids[1:]
    assert await pgqrs.admin(store).reclaim_messages() == 0


async def test_reclaim_never_takes_a_running_lease(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    """A worker judged dead while its lease still runs keeps the message until the lease ends:
    if it was only cut off, it finishes (and may settle) what it holds; nobody else runs it
    meanwhile. Its message comes back once the lease is over."""
    running_id, over_id = await (await past_producer(make_store, queue)).enqueue_batch([1, 2])
    slow = await stale_consumer(make_store, queue, holding=1, lease_over=False)
    gone = await stale_consumer(make_store, queue, holding=1)
    admin = pgqrs.admin(store)
    assert await admin.reclaim_messages() == 1  # only the message whose lease is over
    assert await slow.status() == "stopped"
    assert await gone.status() == "stopped"
    messages = await store.get_messages()
    assert (await messages.get(running_id)).consumer_worker_id == slow.worker_id
    assert (await messages.get(over_id)).consumer_worker_id is None
    other = await store.consumer(queue)
    assert [m.id for m in await other.dequeue(5)] == [over_id]
    # Stopped by mistake, the slow worker still settles what it holds under its lease.
    assert await slow.archive(running_id) is True
    # A lease that ends is claimable by anyone, owner or not.
    later = await make_store()
    later.clock = OffsetClock(2 * HOUR)
    mid = await (await past_producer(make_store, queue)).enqueue("held by the dead")
    dead = await stale_consumer(make_store, queue, holding=1, lease_over=False)
    assert await pgqrs.admin(store).reclaim_messages() == 0
    assert mid in [m.id for m in await (await later.consumer(queue)).dequeue(5)]
    assert await dead.archive(mid) is False


# Not on S3: an S3 object has one writer (semantics.md §16); concurrent writers from several
# stores get sync conflicts by design.
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_concurrent_reclaims_release_each_message_once(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    await (await past_producer(make_store, queue)).enqueue_batch(list(range(6)))
    dead = [await stale_consumer(make_store, queue, holding=2) for _ in range(3)]
    admins = [pgqrs.admin(await make_store()) for _ in range(3)]
    released = await asyncio.gather(*(admin.reclaim_messages() for admin in admins))
    assert sum(released) == 6
    for worker in dead:
        assert await worker.status() == "stopped"
    assert len(await (await store.consumer(queue)).dequeue(10)) == 6


async def test_reclaim_cutoff(store: pgqrs.Store, make_store: StoreFactory, queue: str) -> None:
    await (await past_producer(make_store, queue)).enqueue("x")
    past = await past_store(make_store, 100)
    consumer = await past.consumer(queue)
    await consumer.dequeue_at(1, 60, at(-120))
    admin = pgqrs.admin(store)
    assert await admin.reclaim_messages(older_than_seconds=200) == 0
    assert await consumer.status() == "ready"
    # The default cutoff is three heartbeat intervals (15 s by default): 100 s is stale.
    assert await admin.reclaim_messages() == 1
    assert await consumer.status() == "stopped"


async def test_reclaim_one_queue(store: pgqrs.Store, make_store: StoreFactory) -> None:
    await store.queue("a")
    await store.queue("b")
    await (await past_producer(make_store, "a")).enqueue("in a")
    await (await past_producer(make_store, "b")).enqueue("in b")
    in_a = await stale_consumer(make_store, "a", holding=1)
    in_b = await stale_consumer(make_store, "b", holding=1)
    admin = pgqrs.admin(store)
    assert await admin.reclaim_messages("b") == 1
    assert (await in_a.status(), await in_b.status()) == ("ready", "stopped")
    with pytest.raises(pgqrs.QueueNotFoundError, match="Queue 'nope' not found"):
        await admin.reclaim_messages("nope")
    with pytest.raises(pgqrs.ValidationError):
        await admin.reclaim_messages("no spaces")
    with pytest.raises(ValueError):
        await admin.reclaim_messages(older_than_seconds=-1)
    assert await in_a.status() == "ready"


async def test_reclaimed_worker_is_fenced_out(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    mid = await (await past_producer(make_store, queue)).enqueue("job")
    zombie = await stale_consumer(make_store, queue, holding=1)
    assert await pgqrs.admin(store).reclaim_messages() == 1

    # Came back after being declared dead: it no longer owns what it held.
    assert await zombie.archive(mid) is False
    assert await zombie.extend_vt(mid, 60) is False
    assert await zombie.delete(mid) is False
    assert await zombie.release_messages([mid]) == 0
    successor = await store.consumer(queue)
    [message] = await successor.dequeue()
    assert message.id == mid
    assert message.read_ct == 2
    assert await zombie.archive(mid) is False
    assert await zombie.archive_many([mid]) == [False]
    assert await successor.archive(mid) is True
    archived = await (await store.get_messages()).get(mid)
    assert archived.consumer_worker_id == successor.worker_id


async def loop_store(make_store: StoreFactory) -> pgqrs.Store:
    """A store for poll loops: heartbeats every second, so stale means 3 s of silence."""
    return await make_store(heartbeat_interval_seconds=1)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[int] = []

    def handle(self, message: pgqrs.QueueMessage) -> None:
        self.seen.append(message.id)

    def saw(self, expected: list[int]) -> Any:
        async def check() -> bool:
            return sorted(self.seen) == sorted(expected)

        return check


@contextlib.asynccontextmanager
async def running(store: pgqrs.Store, consumer: pgqrs.Consumer, handler: Any, **opts: Any) -> Any:
    builder = pgqrs.dequeue().worker(consumer).handle(handler).poll_interval(20)
    if "lease" in opts:
        builder.lease(opts["lease"])
    task = asyncio.create_task(builder.poll(store))
    try:
        yield task
    finally:
        if not task.done():
            await consumer.interrupt()
        with pytest.raises(pgqrs.SuspendedError):
            await asyncio.wait_for(task, 10)


# Not on S3: a zombie's store and the loop's are two writers of one object (semantics.md §16).
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_poll_loop_reclaims_its_queue_by_itself(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    ids = await (await past_producer(make_store, queue)).enqueue_batch([1, 2, 3])
    zombie = await Zombie.start(make_store, queue, batch=3)
    live = await store.consumer(queue)  # silent too, but only for a moment: not stale

    fleet = await loop_store(make_store)
    recorder = Recorder()
    worker = await fleet.consumer(queue)
    try:
        async with running(fleet, worker, recorder.handle):
            # Their leases are over: claimable at once, and the zombie is stopped at the first
            # sweep that finds the loop healthy for three of the zombie's heartbeats.
            await eventually(recorder.saw(ids))

            async def stopped() -> bool:
                return await zombie.consumer.status() == "stopped"

            await eventually(stopped, within=8)
        assert recorder.seen == ids  # each exactly once
        # Back from its hang, the zombie can settle nothing it held.
        assert await zombie.consumer.archive_many(ids) == [False] * 3
    finally:
        await zombie.stop()
    assert await live.status() == "ready"
    messages = await store.get_messages()
    for mid in ids:
        message = await messages.get(mid)
        assert message.archived_at is not None
        assert (message.consumer_worker_id, message.read_ct) == (worker.worker_id, 2)


async def test_poll_loop_leaves_hand_driven_consumers_alone(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    """A `ready` worker never heartbeats unless its program calls `heartbeat()` (a hand-driven
    consumer, `consume_iter`): poll loops leave it to its lease; only an admin call stops it."""
    held, free = await (await past_producer(make_store, queue)).enqueue_batch(["held", "free"])
    manual = await stale_consumer(make_store, queue, holding=1, lease_over=False)
    fleet = await loop_store(make_store)
    recorder = Recorder()
    async with running(fleet, await fleet.consumer(queue), recorder.handle):
        await eventually(recorder.saw([free]))
    assert await manual.status() == "ready"
    assert await manual.archive(held) is True
    assert await pgqrs.admin(store).reclaim_messages() == 0
    assert await manual.status() == "stopped"


# Not on S3: a zombie's store and the loop's are two writers of one object (semantics.md §16).
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_poll_loop_reclaims_only_its_own_queue(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    await store.queue("elsewhere")
    await (await past_producer(make_store, "elsewhere")).enqueue("not ours")
    other = await Zombie.start(make_store, "elsewhere", batch=1)
    mid = await (await store.producer(queue)).enqueue("ours")
    fleet = await loop_store(make_store)
    recorder = Recorder()
    try:
        async with running(fleet, await fleet.consumer(queue), recorder.handle):
            await eventually(recorder.saw([mid]))
        assert await other.consumer.status() == "polling"
    finally:
        await other.stop()


@pytest.mark.slow
# Not on S3: the zombie's store and the loop's are two writers of one object (semantics.md §16).
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_poll_loop_sweeps_at_most_every_three_heartbeats(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    """A worker that dies while the loop runs is stopped at the loop's next sweep, 3 H after
    the previous one, not at every poll (the loop polls every 20 ms here)."""
    fleet = await loop_store(make_store)
    worker = await fleet.consumer(queue)
    async with running(fleet, worker, Recorder().handle):
        started = time.monotonic()

        async def polling() -> bool:
            return await worker.status() == "polling"

        await eventually(polling)
        # Delayed, so the running loop cannot take it before the soon-dead worker does, which
        # claims it as of 100 s from now with a lease ending 40 s before that: over for the
        # others as soon as it is visible to them.
        mid = await (await store.producer(queue)).enqueue_delayed("held by the dead", 50)
        zombie = await Zombie.start(make_store, queue, batch=1, claim_at=100, lease=1)
        try:

            async def reclaimed() -> bool:
                return await zombie.consumer.status() == "stopped"

            await eventually(reclaimed, within=8)
            assert time.monotonic() - started >= 2.5  # the first sweep ran at start, 3 s earlier
            # Its lease runs until 101 s from now: the message stays with it meanwhile.
            assert (await (await store.get_messages()).get(mid)).consumer_worker_id == (
                zombie.consumer.worker_id
            )
        finally:
            await zombie.stop()


@pytest.mark.slow
# Not on S3: two poll loops in two stores are two writers of one object (semantics.md §16).
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_handler_outliving_its_lease_keeps_its_messages(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    """Lease 1 s, handler 3 s: heartbeats extend the lease; a second loop gets nothing."""
    mid = await (await store.producer(queue)).enqueue("slow")
    first_store = await loop_store(make_store)
    second_store = await loop_store(make_store)
    first = await first_store.consumer(queue)
    second = await second_store.consumer(queue)
    started = asyncio.Event()
    stolen = Recorder()

    async def slow(message: pgqrs.QueueMessage) -> None:
        started.set()
        await asyncio.sleep(3.0)  # the work itself: three times the lease

    async with running(first_store, first, slow, lease=1):
        await asyncio.wait_for(started.wait(), 5)
        async with running(second_store, second, stolen.handle, lease=1):

            async def archived() -> bool:
                return (await (await store.get_messages()).get(mid)).archived_at is not None

            await eventually(archived, within=8)
    assert stolen.seen == []
    message = await (await store.get_messages()).get(mid)
    assert (message.consumer_worker_id, message.read_ct) == (first.worker_id, 1)


async def test_purge_stale(store: pgqrs.Store, make_store: StoreFactory, queue: str) -> None:
    await (await past_producer(make_store, queue)).enqueue("held")
    holding = await stale_consumer(make_store, queue, holding=1)
    idle = await stale_consumer(make_store, queue)
    long_gone = await stale_consumer(make_store, queue)
    await long_gone.shutdown()  # an hour ago, by its clock
    fresh = await store.consumer(queue)

    workers = await store.get_workers()
    assert await workers.purge_stale(60) == 3  # with the producer that beat an hour ago
    assert (await holding.status(), await idle.status(), await fresh.status()) == (
        pgqrs.WorkerStatus.Stopped,
        pgqrs.WorkerStatus.Stopped,
        pgqrs.WorkerStatus.Ready,
    )
    # Stopped an hour ago with nothing pointing at it: deleted. Just stopped: kept.
    with pytest.raises(pgqrs.WorkerNotFoundError):
        await store.worker(long_gone.worker_id)
    assert await idle.status() == "stopped"
    with pytest.raises(ValueError):
        await workers.purge_stale(-5)


# Not on S3: a zombie's store and the loop's are two writers of one object (semantics.md §16).
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_injected_time_runner_reclaims_into_its_own_view(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    """A loop running `at()` a past time still sees what a dead worker held under a lease that
    is over by that time."""
    mid = await (await past_producer(make_store, queue)).enqueue("x")
    zombie = await Zombie.start(make_store, queue, batch=1)
    fleet = await loop_store(make_store)
    recorder = Recorder()
    worker = await fleet.consumer(queue)
    builder = pgqrs.dequeue().worker(worker).handle(recorder.handle).poll_interval(20)
    task = asyncio.create_task(builder.at(at(-60)).poll(fleet))
    try:
        await eventually(recorder.saw([mid]))
    finally:
        await worker.interrupt()
        with pytest.raises(pgqrs.SuspendedError):
            await asyncio.wait_for(task, 10)
        await zombie.stop()


@pytest.mark.slow
# Not on S3: two poll loops in two stores are two writers of one object (semantics.md §16).
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_each_worker_is_judged_by_its_own_heartbeat_interval(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    """Issue 10, defect 4: a loop beating every second once stopped a healthy worker that
    beats every 30 s (and released its message while the lease ran, so it ran twice). Each
    worker is now judged by the interval its own loop keeps; a dead one is still stopped."""
    mid = await (await store.producer(queue)).enqueue("slow")
    patient_store = await make_store(heartbeat_interval_seconds=30)
    patient = await patient_store.consumer(queue)
    holding, finish = asyncio.Event(), asyncio.Event()

    async def slow(message: pgqrs.QueueMessage) -> None:
        holding.set()
        await finish.wait()

    async with running(patient_store, patient, slow, lease=60):
        await asyncio.wait_for(holding.wait(), 5)
        # A dead worker beside it, beating every second (an hour ago), as a control.
        await (await past_producer(make_store, queue)).enqueue("held by the dead")
        zombie = await Zombie.start(make_store, queue, batch=1)
        # The sweeping loop's clock runs 20 s ahead: the patient worker's last beat is 20 s
        # old to it, over three of its own 1 s heartbeats but well within three of 30 s.
        sweeper_store = await make_store(heartbeat_interval_seconds=1)
        sweeper_store.clock = OffsetClock(20)
        sweeper = await sweeper_store.consumer(queue)
        async with running(sweeper_store, sweeper, Recorder().handle):

            async def zombie_stopped() -> bool:
                return await zombie.consumer.status() == "stopped"

            await eventually(zombie_stopped, within=8)  # the sweeps ran, and could stop
            assert await patient.status() == "polling"
        finish.set()

        async def archived() -> bool:
            return (await (await store.get_messages()).get(mid)).archived_at is not None

        await eventually(archived)
    await zombie.stop()
    message = await (await store.get_messages()).get(mid)
    assert (message.consumer_worker_id, message.read_ct) == (patient.worker_id, 1)


class Stall:
    """Every write to the database waits for `seconds`, as in a lock held by another program
    or a database that stops answering: SQLite's write lock taken by a plain connection,
    PostgreSQL's workers table locked (claims, heartbeats and status changes all read it)."""

    def __init__(self, target: Target, seconds: float) -> None:
        self.target = target
        self.seconds = seconds

    async def run(self) -> None:
        await asyncio.to_thread(self._hold)

    def _hold(self) -> None:
        if self.target.backend == "postgres":
            import psycopg

            with psycopg.connect(self.target.dsn) as conn:
                conn.execute(
                    f'LOCK TABLE "{self.target.schema}".pgqrs_workers IN ACCESS EXCLUSIVE MODE'
                )
                time.sleep(self.seconds)  # the fault itself: how long everyone waits
            return
        import sqlite3

        path = self.target.dsn.split("://", 1)[1]
        file = sqlite3.connect(path, isolation_level=None, timeout=10)
        try:
            file.execute("BEGIN IMMEDIATE")
            time.sleep(self.seconds)  # the fault itself: how long everyone waits
            file.execute("ROLLBACK")
        finally:
            file.close()


@pytest.mark.slow
@pytest.mark.backends("sqlite", "postgres")  # a stall is injected through the file or a lock
async def test_a_stall_everyone_shared_stops_nobody(
    store: pgqrs.Store, make_store: StoreFactory, queue: str, target: Target
) -> None:
    """Issue 10, defect 13: after a stall longer than three heartbeats that affected every
    worker, the first loop to sweep stopped its live peers. A loop now judges a silence only
    once its own database calls have succeeded, without a gap, for as long as that silence."""
    stores = [await loop_store(make_store) for _ in range(3)]
    workers = [await s.consumer(queue) for s in stores]
    recorders = [Recorder() for _ in stores]
    async with contextlib.AsyncExitStack() as stack:
        for s, worker, recorder in zip(stores, workers, recorders, strict=True):
            await stack.enter_async_context(running(s, worker, recorder.handle))

        async def all_polling() -> bool:
            return all([await w.status() == "polling" for w in workers])

        await eventually(all_polling)
        await Stall(target, 4.0).run()  # longer than 3 heartbeats of 1 s
        # Two full sweep periods after the stall: nobody is stopped, everyone keeps working.
        deadline = time.monotonic() + 7.0
        while time.monotonic() < deadline:
            statuses = [await w.status() for w in workers]
            assert "stopped" not in statuses, statuses
            await asyncio.sleep(0.1)
        ids = await (await store.producer(queue)).enqueue_batch(list(range(6)))

        async def handled() -> bool:
            return sorted(m for r in recorders for m in r.seen) == ids

        await eventually(handled)


async def test_a_name_registered_again_does_not_bring_back_the_old_handles(
    store: pgqrs.Store, queue: str
) -> None:
    """Issue 10, "a stopped worker never passes an ownership check again": a worker stopped by
    recovery (cut off, not dead) whose name registered again got the same id back, so its old
    handle could settle what the new registration had claimed. Each registration has its own
    fence: the old handle passes no check at all."""
    mid = await (await store.producer(queue)).enqueue("job")
    first = await store.consumer(queue, name="mailer")
    [message] = await first.dequeue()
    assert message.id == mid
    admin = pgqrs.admin(store)
    assert await admin.reclaim_messages(older_than_seconds=0, force=True) >= 1
    again = await store.consumer(queue, name="mailer")
    assert again.worker_id == first.worker_id  # pgqrs's rule: the same row, the same id
    [claimed] = await again.dequeue()
    assert claimed.id == mid
    assert await first.status() == "stopped"  # the old handle sees its registration ended
    assert await first.archive(mid) is False
    assert await first.extend_vt(mid, 60) is False
    assert await first.release_messages([mid]) == 0
    assert await first.delete(mid) is False
    with pytest.raises(pgqrs.WorkerNotFoundError, match="registered again"):
        await first.heartbeat()
    with pytest.raises(pgqrs.WorkerNotFoundError, match="registered again"):
        await first.suspend()
    assert await again.status() == "ready"
    assert await again.archive(mid) is True
