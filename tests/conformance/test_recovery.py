"""Recovery (semantics §14): stale workers are stopped and their messages released, by
`reclaim_messages` and by every poll loop on its own; fencing keeps a reclaimed worker out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

import pgqrs
from tests.conftest import StoreFactory
from tests.support.clocks import OffsetClock, at
from tests.support.waiting import eventually

HOUR = 3600.0


async def past_store(make_store: StoreFactory, seconds: float = HOUR) -> pgqrs.Store:
    """A store whose clock runs `seconds` behind: its workers' heartbeats are that old."""
    store = await make_store()
    store.clock = OffsetClock(-seconds)
    return store


async def stale_consumer(make_store: StoreFactory, queue: str, holding: int = 0) -> Any:
    """A consumer that last beat an hour ago, holding `holding` messages on a long lease."""
    past = await past_store(make_store)
    consumer = await past.consumer(queue)
    if holding:
        # Claimed at the real now, for an hour: only its heartbeat is old.
        claimed = await consumer.dequeue_at(holding, int(HOUR), at(0))
        assert len(claimed) == holding
    return consumer


class Zombie:
    """A poll loop that hangs in its handler while holding messages, on a store whose clock
    runs an hour behind: alive, beating, yet every beat an hour old, as a worker cut off from
    the database (or dead) looks to the others. Its leases are taken at `claim_at`."""

    def __init__(self, store: pgqrs.Store, consumer: pgqrs.Consumer) -> None:
        self.store = store
        self.consumer = consumer
        self.holding = asyncio.Event()
        self.task: asyncio.Task[Any] | None = None

    @classmethod
    async def start(
        cls, make_store: StoreFactory, queue: str, batch: int, claim_at: float = 0
    ) -> Zombie:
        past = await past_store(make_store)
        zombie = cls(past, await past.consumer(queue))
        builder = pgqrs.dequeue().worker(zombie.consumer).batch(batch).lease(HOUR)
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
    producer = await store.producer(queue)
    ids = await producer.enqueue_batch([1, 2, 3])
    stale = await stale_consumer(make_store, queue, holding=2)
    idle_stale = await stale_consumer(make_store, queue)
    already_stopped = await stale_consumer(make_store, queue)
    await already_stopped.shutdown()
    suspended = await stale_consumer(make_store, queue)
    await suspended.suspend()
    interrupted = await stale_consumer(make_store, queue)
    await interrupted.interrupt()
    live = await store.consumer(queue)
    [kept] = await live.dequeue()

    assert await pgqrs.admin(store).reclaim_messages() == 2

    workers = await store.get_workers()
    for worker in (stale, idle_stale, suspended, interrupted):
        info = await workers.get(worker.worker_id)
        assert info.status == pgqrs.WorkerStatus.Stopped
        assert info.shutdown_at is not None
    assert await live.status() == "ready"
    messages = await store.get_messages()
    for mid in ids[:2]:
        message = await messages.get(mid)
        assert (message.consumer_worker_id, message.archived_at, message.read_ct) == (None, None, 1)
    assert (await messages.get(kept.id)).consumer_worker_id == live.worker_id
    # Released messages are visible at once.
    assert sorted(m.id for m in await (await store.consumer(queue)).dequeue(5)) == ids[:2]
    assert await pgqrs.admin(store).reclaim_messages() == 0


# Not on S3: an S3 object has one writer (semantics §16); concurrent writers from several
# stores get sync conflicts by design.
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_concurrent_reclaims_release_each_message_once(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    await (await store.producer(queue)).enqueue_batch(list(range(6)))
    dead = [await stale_consumer(make_store, queue, holding=2) for _ in range(3)]
    admins = [pgqrs.admin(await make_store()) for _ in range(3)]
    released = await asyncio.gather(*(admin.reclaim_messages() for admin in admins))
    assert sum(released) == 6
    for worker in dead:
        assert await worker.status() == "stopped"
    assert len(await (await store.consumer(queue)).dequeue(10)) == 6


async def test_reclaim_cutoff(store: pgqrs.Store, make_store: StoreFactory, queue: str) -> None:
    await (await store.producer(queue)).enqueue("x")
    past = await past_store(make_store, 100)
    consumer = await past.consumer(queue)
    await consumer.dequeue_at(1, 3600, at(0))
    admin = pgqrs.admin(store)
    assert await admin.reclaim_messages(older_than_seconds=200) == 0
    assert await consumer.status() == "ready"
    # The default cutoff is three heartbeat intervals (15 s by default): 100 s is stale.
    assert await admin.reclaim_messages() == 1
    assert await consumer.status() == "stopped"


async def test_reclaim_one_queue(store: pgqrs.Store, make_store: StoreFactory) -> None:
    await store.queue("a")
    await store.queue("b")
    await (await store.producer("a")).enqueue("in a")
    await (await store.producer("b")).enqueue("in b")
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
    mid = await (await store.producer(queue)).enqueue("job")
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


async def test_poll_loop_reclaims_its_queue_by_itself(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    ids = await (await store.producer(queue)).enqueue_batch([1, 2, 3])
    zombie = await Zombie.start(make_store, queue, batch=3)
    live = await store.consumer(queue)  # silent too, but only for a moment: not stale

    fleet = await loop_store(make_store)
    recorder = Recorder()
    worker = await fleet.consumer(queue)
    try:
        async with running(fleet, worker, recorder.handle):
            await eventually(recorder.saw(ids))
        assert recorder.seen == ids  # each exactly once
        assert await zombie.consumer.status() == "stopped"
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
    held, free = await (await store.producer(queue)).enqueue_batch(["held", "free"])
    manual = await stale_consumer(make_store, queue, holding=1)
    fleet = await loop_store(make_store)
    recorder = Recorder()
    async with running(fleet, await fleet.consumer(queue), recorder.handle):
        await eventually(recorder.saw([free]))
    assert await manual.status() == "ready"
    assert await manual.archive(held) is True
    assert await pgqrs.admin(store).reclaim_messages() == 0
    assert await manual.status() == "stopped"


async def test_poll_loop_reclaims_only_its_own_queue(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    await store.queue("elsewhere")
    await (await store.producer("elsewhere")).enqueue("not ours")
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
async def test_poll_loop_sweeps_at_most_every_three_heartbeats(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    """A worker that dies while the loop runs is reclaimed at the loop's next sweep, 3 H after
    the previous one, not at every poll (the loop polls every 20 ms here)."""
    fleet = await loop_store(make_store)
    recorder = Recorder()
    worker = await fleet.consumer(queue)
    async with running(fleet, worker, recorder.handle):
        started = time.monotonic()

        async def polling() -> bool:
            return await worker.status() == "polling"

        await eventually(polling)
        # Delayed, so the running loop cannot take it before the soon-dead worker does.
        mid = await (await store.producer(queue)).enqueue_delayed("held by the dead", 50)
        zombie = await Zombie.start(make_store, queue, batch=1, claim_at=100)
        try:

            async def reclaimed() -> bool:
                return await zombie.consumer.status() == "stopped"

            await eventually(reclaimed, within=8)
            assert time.monotonic() - started >= 2.5  # the first sweep ran at start, 3 s earlier
            await eventually(recorder.saw([mid]))
        finally:
            await zombie.stop()


@pytest.mark.slow
# Not on S3: two poll loops in two stores are two writers of one object (semantics §16).
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
    producer = await store.producer(queue)
    await producer.enqueue("held")
    holding = await stale_consumer(make_store, queue, holding=1)
    idle = await stale_consumer(make_store, queue)
    long_gone = await stale_consumer(make_store, queue)
    await long_gone.shutdown()  # an hour ago, by its clock
    fresh = await store.consumer(queue)

    workers = await store.get_workers()
    assert await workers.purge_stale(60) == 2
    assert (await holding.status(), await idle.status(), await fresh.status()) == (
        "stopped",
        "stopped",
        "ready",
    )
    # Stopped an hour ago with nothing pointing at it: deleted. Just stopped: kept.
    with pytest.raises(pgqrs.WorkerNotFoundError):
        await store.worker(long_gone.worker_id)
    assert await idle.status() == "stopped"
    with pytest.raises(ValueError):
        await workers.purge_stale(-5)


async def test_injected_time_runner_reclaims_into_its_own_view(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    """A loop running `at()` a past time still sees what it reclaimed (released at that time)."""
    mid = await (await store.producer(queue)).enqueue("x")
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
