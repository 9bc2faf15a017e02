"""Honest worker bookkeeping (semantics.md §9.3, §9.5, §14): one-shot calls leave no worker
row, producers beat as they send, reclaim leaves a sending producer alone, and purging stopped
workers deletes them even when archived messages still name them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pgqrs
import pgqrs.sync
from pgqrs._clock import parse_time
from tests.support.rows import insert_run
from tests.support.target import StoreFactory, Target


class SteppedClock:
    """A clock moved by hand: time passes only when the test says so."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.at

    def step(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


async def _rows(store: pgqrs.Store) -> list[pgqrs.WorkerInfo]:
    return await pgqrs.admin(store).list_workers()


async def test_one_shot_sends_leave_no_worker_row(store: pgqrs.Store, queue: str) -> None:
    ids = [await pgqrs.produce(store, queue, {"n": 1})]
    ids += await pgqrs.produce_batch(store, queue, [{"n": 2}, {"n": 3}])
    ids.append(await pgqrs.produce(store, queue, {"n": 4}, dedup_key="k"))
    await pgqrs.workflow().name("flow").store(store).create()
    trigger = await pgqrs.workflow().name("flow").store(store).trigger({"x": 1}).execute()
    assert trigger.producer_worker_id is None  # as Admin.create_workflow's triggers
    assert await _rows(store) == []
    messages = await store.get_messages()
    assert {(await messages.get(i)).producer_worker_id for i in ids} == {None}


async def test_one_shot_consumers_end_stopped_and_purge_removes_them(
    store: pgqrs.Store, queue: str
) -> None:
    """A one-shot consumer needs a row while it holds leases (they are fenced by it); it ends
    stopped, and `purge_old_workers` removes it even though its archived messages name it."""
    await pgqrs.produce_batch(store, queue, [1, 2, 3, 4, 5])
    handled: list[object] = []

    async def handle(message: pgqrs.QueueMessage) -> None:
        handled.append(message.payload)

    async def handle_batch(found: list[pgqrs.QueueMessage]) -> None:
        handled.extend(m.payload for m in found)

    await pgqrs.consume(store, queue, handle)
    await pgqrs.consume_batch(store, queue, 2, handle_batch)
    async with store.consume_iter(queue, poll_interval_ms=10) as iterator:
        message = await anext(iterator)
        assert await iterator.archive(message.id)
    assert len(handled) == 3
    found = await _rows(store)
    assert len(found) == 3
    assert all(w.status == pgqrs.WorkerStatus.Stopped for w in found)
    assert all(w.name.startswith("__ephemeral__") for w in found)
    assert await pgqrs.admin(store).purge_old_workers(0) == 3
    assert await _rows(store) == []
    archived = await (await store.get_messages()).get(message.id)
    assert (archived.archived_at is not None, archived.consumer_worker_id) == (True, None)


def test_sync_one_shot_calls_leave_no_worker_row(target: Target) -> None:
    with pgqrs.sync.connect_with(target.config()) as store:
        store.admin().install()
        store.queue("jobs")
        ids = [pgqrs.sync.produce(store, "jobs", {"i": i}) for i in range(3)]
        ids += pgqrs.sync.produce_batch(store, "jobs", [{"i": 3}])
        assert store.admin().list_workers() == []
        messages = store.get_messages()
        assert {messages.get(i).producer_worker_id for i in ids} == {None}
    with pgqrs.sync.connect_with(target.config()) as reopened:
        assert reopened.admin().list_workers() == []


async def test_producer_beats_as_it_sends(make_store: StoreFactory, queue: str) -> None:
    store = await make_store()
    clock = SteppedClock()
    store.clock = clock
    producer = await store.producer(queue)
    beat = (await store.worker(producer.worker_id)).info
    first = (await beat()).heartbeat_at
    clock.step(1)  # within the interval (5 s): the enqueue writes nothing more
    await producer.enqueue(1)
    assert (await beat()).heartbeat_at == first
    clock.step(5)
    await producer.enqueue(2)
    assert parse_time((await beat()).heartbeat_at) == clock.at
    assert await producer.is_healthy(5)


async def test_reclaim_leaves_a_sending_producer_alone(
    make_store: StoreFactory, queue: str
) -> None:
    """Reclaim runs between the sends of a producer for 10 heartbeat intervals: the producer
    is never stopped, while a silent one (registered at the same time) is."""
    store = await make_store()
    clock = SteppedClock()
    store.clock = clock
    admin = pgqrs.admin(store)
    sending = await store.producer(queue, "sending")
    silent = await store.producer(queue, "silent")
    for n in range(25):
        clock.step(2)  # 2 s apart: a beat every 5 s interval at most, stale after 15 s
        await sending.enqueue(n)
        await admin.reclaim_messages()
        assert await sending.status() == pgqrs.WorkerStatus.Ready
    assert await silent.status() == pgqrs.WorkerStatus.Stopped
    assert await (await store.get_messages()).count() == 25


async def test_reclaim_concurrent_with_a_sending_producer(
    make_store: StoreFactory, queue: str
) -> None:
    """The same with both really running at once: sends and reclaims interleave freely."""
    store = await make_store()
    clock = SteppedClock()
    store.clock = clock
    producer = await store.producer(queue)
    admin = pgqrs.admin(store)
    done = asyncio.Event()

    async def send() -> None:
        for n in range(40):
            clock.step(1)
            await producer.enqueue(n)
        done.set()

    async def reclaim() -> int:
        rounds = 0
        while not done.is_set():
            await admin.reclaim_messages()
            rounds += 1
            await asyncio.sleep(0)
        return rounds

    _, rounds = await asyncio.gather(send(), reclaim())
    assert rounds >= 1
    assert await producer.status() == pgqrs.WorkerStatus.Ready


async def test_stopped_producer_sends_again(make_store: StoreFactory, queue: str) -> None:
    """An idle producer reclaimed (and even purged) is back at its next send, under its name."""
    store = await make_store()
    clock = SteppedClock()
    store.clock = clock
    admin = pgqrs.admin(store)
    producer = await store.producer(queue, "idle")
    await producer.enqueue("before")
    clock.step(60)
    await admin.reclaim_messages()
    assert await producer.status() == pgqrs.WorkerStatus.Stopped
    await producer.enqueue("back")
    assert await producer.status() == pgqrs.WorkerStatus.Ready

    clock.step(60)
    await admin.reclaim_messages()
    clock.step(1)
    assert await admin.purge_old_workers(0) == 1
    mid = await producer.enqueue("after purge")
    [row] = await _rows(store)
    assert (row.name, row.status) == ("idle", pgqrs.WorkerStatus.Ready)
    assert (await (await store.get_messages()).get(mid)).producer_worker_id == row.id


async def test_purge_stopped_deletes_workers_named_by_archived_messages(
    store: pgqrs.Store, queue: str
) -> None:
    admin = pgqrs.admin(store)
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    ids = await producer.enqueue_batch([1, 2, 3])
    for message in await consumer.dequeue(2):
        assert await consumer.archive(message.id)
    holder = await store.consumer(queue)
    [held] = await holder.dequeue_many_with_delay(1, 3600)  # its lease runs for an hour
    await producer.shutdown()
    await consumer.shutdown()
    # A stopped worker still holding a message under a running lease may still settle it.
    await pgqrs.admin(store).reclaim_messages(older_than_seconds=0)
    assert await holder.status() == pgqrs.WorkerStatus.Stopped
    in_run = await store.consumer(queue)
    await in_run.shutdown()
    await insert_run(store, queue, ids[0], worker_id=in_run.worker_id)  # as pgqrs may

    assert await admin.purge_old_workers(0) == 2  # the producer and the consumer
    left = {w.id for w in await _rows(store)}
    assert left == {holder.worker_id, in_run.worker_id}
    messages = await store.get_messages()
    for mid in ids:
        found = await messages.get(mid)
        assert found.producer_worker_id is None
        if mid != held.id:
            assert found.consumer_worker_id is None
    assert (await messages.get(held.id)).consumer_worker_id == holder.worker_id
    assert await holder.archive(held.id)  # the stopped holder settles what it held
    assert await admin.purge_old_workers(0) == 1
    assert await admin.purge_old_workers(0) == 0
