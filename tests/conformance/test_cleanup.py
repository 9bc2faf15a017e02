"""Cleanup (semantics.md §14): deleting workers, purging old ones, listing what a worker holds,
and archive retention in bounded chunks."""

from __future__ import annotations

import pytest

import pgqrs
from pgqrs._clock import SYSTEM_CLOCK
from tests.support.clocks import FixedClock, at
from tests.support.rows import insert_run
from tests.support.target import StoreFactory


async def test_delete_worker(store: pgqrs.Store, queue: str) -> None:
    admin = pgqrs.admin(store)
    with pytest.raises(pgqrs.WorkerNotFoundError, match="Worker with id '31337' not found"):
        await admin.delete_worker(31337)

    consumer = await store.consumer(queue)
    for state in ("ready", "suspended"):
        if state == "suspended":
            await consumer.suspend()
        with pytest.raises(pgqrs.StateTransitionError) as info:
            await admin.delete_worker(consumer.worker_id)
        assert str(info.value) == (
            f"Invalid state transition from {state} to deleted: "
            "Worker must be stopped before deletion"
        )
    await consumer.shutdown()
    assert await admin.delete_worker(consumer.worker_id) is True
    with pytest.raises(pgqrs.WorkerNotFoundError):
        await store.worker(consumer.worker_id)
    with pytest.raises(pgqrs.WorkerNotFoundError):
        await admin.delete_worker(consumer.worker_id)


async def test_delete_worker_refused_while_referenced(store: pgqrs.Store, queue: str) -> None:
    admin = pgqrs.admin(store)
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    mid = await producer.enqueue("x")
    await consumer.dequeue()
    await consumer.archive(mid)  # archived messages keep naming their consumer
    await producer.shutdown()
    await consumer.shutdown()
    for worker in (producer, consumer):
        with pytest.raises(pgqrs.ValidationError, match="still referenced by 1 message"):
            await admin.delete_worker(worker.worker_id)
        assert await worker.status() == "stopped"

    lone = await store.consumer(queue)
    await lone.shutdown()
    await insert_run(store, queue, mid, worker_id=lone.worker_id)  # as pgqrs's workers may
    with pytest.raises(pgqrs.ValidationError, match="1 workflow run"):
        await admin.delete_worker(lone.worker_id)
    with pytest.raises(TypeError):
        await admin.delete_worker("1")  # type: ignore[arg-type]


async def test_purge_old_workers(store: pgqrs.Store, make_store: StoreFactory, queue: str) -> None:
    past = await make_store()
    past.clock = FixedClock(at(-7200))
    old_stopped = await past.consumer(queue)
    await old_stopped.shutdown()  # two hours ago
    old_ready = await past.consumer(queue)  # silent for two hours, but not stopped
    old_referenced = await past.producer(queue)
    await old_referenced.enqueue("keeps its producer")
    await old_referenced.shutdown()
    recent = await store.consumer(queue)
    await recent.shutdown()

    admin = pgqrs.admin(store)
    # The producer named by its message is purged too; its message names no producer since.
    assert await admin.purge_old_workers(3600) == 2
    for gone in (old_stopped, old_referenced):
        with pytest.raises(pgqrs.WorkerNotFoundError):
            await store.worker(gone.worker_id)
    for kept in (old_ready, recent):
        await store.worker(kept.worker_id)
    assert await admin.purge_old_workers(0) == 1  # the one stopped just now
    with pytest.raises(ValueError):
        await admin.purge_old_workers(-1)


async def test_get_worker_messages(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    ids = await producer.enqueue_batch([1, 2, 3, 4])
    consumer = await store.consumer(queue)
    other = await store.consumer(queue)
    await consumer.dequeue(3)
    await consumer.archive(ids[1])
    await other.dequeue(1)
    admin = pgqrs.admin(store)
    held = await admin.get_worker_messages(consumer.worker_id)
    assert [m.id for m in held] == [ids[0], ids[2]]
    assert all(m.consumer_worker_id == consumer.worker_id for m in held)
    assert [m.id for m in await admin.get_worker_messages(other.worker_id)] == [ids[3]]
    assert await admin.get_worker_messages(producer.worker_id) == []
    with pytest.raises(pgqrs.WorkerNotFoundError):
        await admin.get_worker_messages(999_999)


async def archive_at(store: pgqrs.Store, queue: str, count: int, seconds_ago: float) -> list[int]:
    """`count` messages archived `seconds_ago` (the archive time is the store's clock)."""
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    ids = await producer.enqueue_batch(list(range(count)))
    claimed: list[int] = []
    while len(claimed) < count:
        claimed += [m.id for m in await consumer.dequeue(min(100, count - len(claimed)))]
    store.clock = FixedClock(at(-seconds_ago))
    try:
        assert all(await consumer.archive_many(ids))
    finally:
        store.clock = SYSTEM_CLOCK
    return ids


async def test_purge_archived(store: pgqrs.Store, queue: str) -> None:
    await store.queue("other")
    old = await archive_at(store, queue, 3, 7200)
    recent = await archive_at(store, queue, 2, 600)
    other_old = await archive_at(store, "other", 2, 7200)
    live = await (await store.producer(queue)).enqueue("not archived")
    referenced = old[0]
    await insert_run(store, queue, referenced)

    admin = pgqrs.admin(store)
    assert await admin.purge_archived(queue, older_than_seconds=3600) == 2
    messages = await store.get_messages()
    for gone in old[1:]:
        with pytest.raises(pgqrs.MessageNotFoundError):
            await messages.get(gone)
    for kept in (*recent, *other_old, live, referenced):
        await messages.get(kept)
    assert await admin.purge_archived(older_than_seconds=3600) == 2  # the other queue
    assert await admin.purge_archived(older_than_seconds=0) == 2  # everything but the run's
    await messages.get(referenced)
    assert (await messages.get(live)).archived_at is None

    with pytest.raises(pgqrs.QueueNotFoundError):
        await admin.purge_archived("missing", older_than_seconds=0)
    with pytest.raises(ValueError):
        await admin.purge_archived(older_than_seconds=-1)
    with pytest.raises(TypeError):
        await admin.purge_archived(queue)  # type: ignore[call-arg]


async def test_purge_archived_in_chunks(store: pgqrs.Store, queue: str) -> None:
    """2,500 rows: three chunks of at most 1,000, every row deleted exactly once."""
    ids = await archive_at(store, queue, 2500, 7200)
    admin = pgqrs.admin(store)
    assert await admin.purge_archived(queue, older_than_seconds=60) == 2500
    assert await admin.purge_archived(queue, older_than_seconds=60) == 0
    assert (await admin.queue_metrics(queue)).total_messages == 0
    with pytest.raises(pgqrs.MessageNotFoundError):
        await (await store.get_messages()).get(ids[-1])
