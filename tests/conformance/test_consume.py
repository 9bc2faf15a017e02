"""Consuming: claims, leases, settling and ownership fencing (semantics.md §7.3-7.5).

Time is injected with `dequeue_at`, so a lease "expires" without anyone waiting for it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

import pgqrs
from tests.support.clocks import OffsetClock
from tests.support.target import StoreFactory


def at(message: pgqrs.QueueMessage, seconds: float = 0) -> datetime:
    """A moment relative to the message's enqueue time."""
    return datetime.fromisoformat(message.enqueued_at) + timedelta(seconds=seconds)


async def fill(store: pgqrs.Store, queue: str, n: int) -> list[int]:
    producer = await store.producer(queue)
    return await producer.enqueue_batch([{"i": i} for i in range(n)])


async def test_dequeue_leases_for_the_default_lock_time(store: pgqrs.Store, queue: str) -> None:
    await fill(store, queue, 3)
    consumer = await store.consumer(queue)
    [message] = await consumer.dequeue()
    assert message.read_ct == 1
    assert message.consumer_worker_id == consumer.worker_id
    assert message.dequeued_at is not None
    assert message.vt is not None
    lease = datetime.fromisoformat(message.vt) - datetime.fromisoformat(message.dequeued_at)
    assert lease == timedelta(seconds=store.config.default_lock_time_seconds)


async def test_claims_in_enqueue_order_and_never_twice(store: pgqrs.Store, queue: str) -> None:
    ids = await fill(store, queue, 10)
    a = await store.consumer(queue)
    b = await store.consumer(queue)
    first = await a.dequeue(4)
    second = await b.dequeue(4)
    rest = await a.dequeue(4)
    assert [m.id for m in first] == ids[:4]
    assert [m.id for m in second] == ids[4:8]
    assert [m.id for m in rest] == ids[8:]
    assert await b.dequeue(4) == []


async def test_dequeue_many_with_delay_sets_the_lease(store: pgqrs.Store, queue: str) -> None:
    await fill(store, queue, 2)
    consumer = await store.consumer(queue)
    claimed = await consumer.dequeue_many_with_delay(5, 7)
    assert len(claimed) == 2
    for message in claimed:
        assert message.vt is not None
        assert message.dequeued_at is not None
        gap = datetime.fromisoformat(message.vt) - datetime.fromisoformat(message.dequeued_at)
        assert gap == timedelta(seconds=7)


async def test_dequeue_at_uses_the_injected_time(store: pgqrs.Store, queue: str) -> None:
    await fill(store, queue, 1)
    consumer = await store.consumer(queue)
    when = datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=timezone.utc)
    [message] = await consumer.dequeue_at(1, 10, "2030-01-02T03:04:05.6Z")
    assert message.dequeued_at == when.isoformat()
    assert message.vt == (when + timedelta(seconds=10)).isoformat()


async def test_an_expired_lease_is_claimed_by_another_consumer_and_fences_the_first(
    store: pgqrs.Store, queue: str
) -> None:
    await fill(store, queue, 1)
    first = await store.consumer(queue)
    second = await store.consumer(queue)
    [held] = await first.dequeue_at(1, 30, at_now := datetime.now(timezone.utc))
    # Still leased just before the lease ends.
    assert await second.dequeue_at(1, 30, at_now + timedelta(seconds=29)) == []
    [taken] = await second.dequeue_at(1, 30, at_now + timedelta(seconds=30))
    assert taken.id == held.id
    assert taken.read_ct == 2
    assert taken.consumer_worker_id == second.worker_id
    assert taken.dequeued_at == held.dequeued_at  # the first claim time is kept
    # The first consumer lost the lease: every settling call is a no-op answering False.
    assert await first.archive(held.id) is False
    assert await first.archive_many([held.id]) == [False]
    assert await first.delete(held.id) is False
    assert await first.extend_vt(held.id, 60) is False
    assert await first.release_messages([held.id]) == 0
    assert await first.release_with_visibility(held.id, at_now) is False
    # The new owner settles normally.
    assert await second.archive(taken.id) is True


async def test_the_old_owner_may_finish_when_nobody_reclaimed(
    store: pgqrs.Store, queue: str
) -> None:
    await fill(store, queue, 1)
    consumer = await store.consumer(queue)
    [message] = await consumer.dequeue_at(1, 5, datetime.now(timezone.utc))
    # Settling never looks at the clock: a lapsed lease nobody re-claimed is still ours.
    assert await consumer.archive(message.id) is True


async def test_archive_keeps_the_row(store: pgqrs.Store, queue: str) -> None:
    ids = await fill(store, queue, 3)
    consumer = await store.consumer(queue)
    claimed = await consumer.dequeue(3)
    assert await consumer.archive_many([ids[2], ids[0], 999_999]) == [True, True, False]
    assert await consumer.archive(ids[0]) is False  # already archived
    messages = await store.get_messages()
    assert await messages.count() == 1
    archived = await messages.get(ids[0])
    assert archived.archived_at is not None
    assert archived.consumer_worker_id == consumer.worker_id
    assert archived.read_ct == claimed[0].read_ct
    queue_id = (await store.get_queue(queue)).id
    assert {m.id for m in await messages.list_archived_by_queue(queue_id)} == {ids[0], ids[2]}
    assert await consumer.dequeue(3) == []  # archived rows are never claimed


async def test_delete_removes_owned_rows_only(store: pgqrs.Store, queue: str) -> None:
    ids = await fill(store, queue, 3)
    owner = await store.consumer(queue)
    other = await store.consumer(queue)
    await owner.dequeue(2)
    assert await other.delete(ids[0]) is False
    assert await owner.delete_many([ids[1], ids[2], ids[0]]) == [True, False, True]
    messages = await store.get_messages()
    assert await messages.count() == 1
    with pytest.raises(pgqrs.MessageNotFoundError, match=f"Message with id '{ids[0]}' not found"):
        await messages.get(ids[0])


async def test_extend_vt_pushes_the_lease_from_its_current_end(
    store: pgqrs.Store, queue: str
) -> None:
    await fill(store, queue, 1)
    consumer = await store.consumer(queue)
    [message] = await consumer.dequeue()
    assert message.vt is not None
    assert await consumer.extend_vt(message.id, 45.5) is True
    extended = await (await store.get_messages()).get(message.id)
    assert extended.vt is not None
    gap = datetime.fromisoformat(extended.vt) - datetime.fromisoformat(message.vt)
    assert gap == timedelta(seconds=45.5)


async def test_extend_vt_after_expiry_counts_from_now(store: pgqrs.Store, queue: str) -> None:
    await fill(store, queue, 1)
    consumer = await store.consumer(queue)
    past = datetime.now(timezone.utc) - timedelta(hours=2)
    [message] = await consumer.dequeue()
    await consumer.release_with_visibility(message.id, past)
    [message] = await consumer.dequeue_at(1, 1, past)  # a lease that ended long ago
    before = datetime.now(timezone.utc)
    assert await consumer.extend_vt(message.id, 10) is True
    extended = await (await store.get_messages()).get(message.id)
    assert extended.vt is not None
    assert datetime.fromisoformat(extended.vt) >= before + timedelta(seconds=10)


async def test_release_makes_messages_visible_again(store: pgqrs.Store, queue: str) -> None:
    ids = await fill(store, queue, 2)
    consumer = await store.consumer(queue)
    await consumer.dequeue(2)
    assert await consumer.release_messages(ids) == 2
    assert await consumer.release_messages(ids) == 0  # no longer owned
    again = await consumer.dequeue(2)
    assert [m.id for m in again] == ids
    assert [m.read_ct for m in again] == [2, 2]


async def test_release_with_visibility_delays_the_message(store: pgqrs.Store, queue: str) -> None:
    [mid] = await fill(store, queue, 1)
    consumer = await store.consumer(queue)
    await consumer.dequeue()
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert await consumer.release_with_visibility(mid, later.isoformat()) is True
    released = await (await store.get_messages()).get(mid)
    assert released.consumer_worker_id is None
    assert released.vt == later.isoformat()
    assert await consumer.dequeue() == []
    [message] = await consumer.dequeue_at(1, 5, later)
    assert message.id == mid


async def test_poison_messages_stop_being_delivered(store: pgqrs.Store) -> None:
    await pgqrs.admin(store).create_queue("limited", max_read_ct=3)
    [mid] = await fill(store, "limited", 1)
    consumer = await store.consumer("limited")
    now = datetime.now(timezone.utc)
    for attempt in range(3):
        [message] = await consumer.dequeue_at(1, 5, now + timedelta(seconds=10 * attempt))
        assert message.read_ct == attempt + 1
    # Third lease over: read_ct reached max_read_ct, so it is poison and never claimed again.
    assert await consumer.dequeue_at(1, 5, now + timedelta(hours=1)) == []
    poison = await (await store.get_messages()).get(mid)
    assert poison.read_ct == 3
    assert poison.archived_at is None


async def test_the_queue_decides_when_a_message_is_poison_for_every_process(
    make_store: StoreFactory, store: pgqrs.Store
) -> None:
    """Issue 10 ("per-queue retry limits are shared"): each process decided what a dead letter
    was from its own Config.max_read_ct, so a worker configured for 10 attempts was still
    retrying while the CLI (5) listed the message as dead and archived it. The limit is
    stored with the queue (the creating config's by default) and every process uses it."""
    patient = await make_store(max_read_ct=10)
    await pgqrs.admin(patient).create_queue("shared")  # stores 10
    assert (await pgqrs.admin(store).queue_settings("shared")).max_read_ct == 10
    [mid] = await fill(patient, "shared", 1)
    consumer = await patient.consumer("shared")
    now = datetime.now(timezone.utc)
    for attempt in range(6):
        await consumer.dequeue_at(1, 5, now + timedelta(seconds=10 * attempt))
    # Six deliveries: past this store's default of 5, but not the queue's 10. (The admin
    # stores look an hour ahead, when the last lease is over.)
    later = await make_store()  # Config.max_read_ct 5
    later.clock = OffsetClock(3600)
    hasty = pgqrs.admin(later)
    assert await hasty.dlq_list("shared") == []
    assert await hasty.dlq("shared") == []
    assert (await hasty.queue_metrics("shared")).poison_messages == 0
    # Lowered for everyone: now it is a dead letter for every process.
    updated = await hasty.update_queue("shared", max_read_ct=6)
    assert updated == pgqrs.QueueSettings(queue_name="shared", max_read_ct=6)
    patient.clock = OffsetClock(3600)
    assert [m.id for m in await pgqrs.admin(patient).dlq_list("shared")] == [mid]
    assert await consumer.dequeue_at(1, 5, now + timedelta(hours=1)) == []


async def test_consumer_on_missing_queue(store: pgqrs.Store) -> None:
    with pytest.raises(pgqrs.QueueNotFoundError):
        await store.consumer("missing")


async def test_direct_construction_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"Use store.producer\(queue\)"):
        pgqrs.Producer()
    with pytest.raises(RuntimeError, match=r"Use store.consumer\(queue\)"):
        pgqrs.Consumer()


async def test_legacy_helpers(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    one = await pgqrs.enqueue(producer, {"a": 1})
    many = await pgqrs.enqueue_batch(producer, [{"b": 2}, {"c": 3}])
    delayed = await pgqrs.enqueue_delayed(producer, {"d": 4}, 3600)
    [first] = await pgqrs.dequeue(consumer, 1)
    assert first.id == one
    rest = await pgqrs.dequeue(consumer, batch_size=5)
    assert [m.id for m in rest] == many
    assert await pgqrs.extend_vt(consumer, first, 5) is True
    assert await pgqrs.archive(consumer, first) is True
    assert await pgqrs.archive(consumer, first) is False  # a real answer, unlike pgqrs
    assert await pgqrs.archive_batch(consumer, rest) is True
    assert await pgqrs.archive_batch(consumer, rest) is False
    with pytest.raises(TypeError):
        await pgqrs.archive_batch(consumer, [first.id])  # type: ignore[list-item]
    [late] = await consumer.dequeue_at(1, 5, datetime.now(timezone.utc) + timedelta(hours=2))
    assert late.id == delayed
    assert await pgqrs.delete(consumer, late) is True
    assert isinstance(pgqrs.dequeue(), pgqrs.DequeueBuilder)
    assert isinstance(pgqrs.dequeue_builder(), pgqrs.DequeueBuilder)


async def test_produce_and_consume_helpers_use_ephemeral_workers(
    store: pgqrs.Store, queue: str
) -> None:
    mid = await pgqrs.produce(store, queue, {"job": 1})
    ids = await pgqrs.produce_batch(store, queue, [{"job": 2}, {"job": 3}])
    with pytest.raises(pgqrs.ValidationError, match="No messages to enqueue"):
        await pgqrs.produce_batch(store, queue, [])
    seen: list[object] = []
    await pgqrs.consume(store, queue, lambda m: seen.append(m.payload))
    await pgqrs.consume_batch(store, queue, 5, lambda ms: seen.extend(m.payload for m in ms))
    await pgqrs.consume(store, queue, lambda m: seen.append("never"))  # nothing visible
    assert seen == [{"job": 1}, {"job": 2}, {"job": 3}]
    messages = await store.get_messages()
    assert await messages.count() == 0
    assert (await messages.get(mid)).archived_at is not None
    for i in ids:
        assert (await messages.get(i)).archived_at is not None
    workers = await (await store.get_workers()).list()
    assert len(workers) == 3  # 3 consumers, each ephemeral and stopped; producers have no row
    assert all(w.status == pgqrs.WorkerStatus.Stopped for w in workers)
    assert all(w.name.startswith("__ephemeral__") for w in workers)


async def test_consume_releases_with_backoff_and_reraises(store: pgqrs.Store, queue: str) -> None:
    [mid] = await fill(store, queue, 1)

    async def boom(message: pgqrs.QueueMessage) -> None:
        raise RuntimeError("handler broke")

    before = datetime.now(timezone.utc)
    with pytest.raises(RuntimeError, match="handler broke"):
        await pgqrs.consume(store, queue, boom)
    message = await (await store.get_messages()).get(mid)
    assert message.consumer_worker_id is None
    assert message.archived_at is None
    assert message.vt is not None
    # read_ct 1: backoff min(2**0, 60) = 1 second.
    assert datetime.fromisoformat(message.vt) >= before + timedelta(seconds=1)
    workers = await (await store.get_workers()).list()
    [ephemeral] = [w for w in workers if w.name.startswith("__ephemeral__")]
    assert ephemeral.status == pgqrs.WorkerStatus.Stopped


async def test_consume_with_a_base_exception_releases_at_once(
    store: pgqrs.Store, queue: str
) -> None:
    [mid] = await fill(store, queue, 1)

    def interrupted(message: pgqrs.QueueMessage) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await pgqrs.consume(store, queue, interrupted)
    consumer = await store.consumer(queue)
    [message] = await consumer.dequeue()
    assert message.id == mid


# Not on S3: the second store is a second writer of one object (semantics.md §16).
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_a_claim_that_waited_still_gets_its_whole_lease(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    """Issue 10, defect 14: the lease end was computed when the request was built; a claim held
    up (by a pool wait here, a partition or a lock elsewhere) arrived with a lease already over
    and another consumer took the same message while the first handled it. The database
    computes the lease end as the claim runs."""
    mid = (await fill(store, queue, 1))[0]
    narrow = await make_store(max_connections=1)
    consumer = await narrow.consumer(queue)
    rival = await (await make_store()).consumer(queue)
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_only_way_in() -> None:
        # A transaction of the same store: its one connection (PostgreSQL) or its write lock
        # (SQLite, Turso) is taken until the test lets go.
        async with narrow.db.transaction() as db:
            await db.fetch(db.sql.QUEUE_COUNT)
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_only_way_in())
    await held.wait()
    claim = asyncio.create_task(consumer.dequeue_many_with_delay(1, 1))  # waits behind it
    await asyncio.sleep(1.5)  # the fault itself: longer than the 1 s lease
    release.set()
    await holder
    [message] = await claim
    assert message.id == mid
    assert await rival.dequeue() == []  # its lease runs for a second from the claim itself


@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_an_iterator_claim_that_waited_still_gets_its_whole_lease(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    """`consume_iter` read the time in Python before its claim waited for the store, so a
    claim held up longer than the lease arrived with a lease already over (found while
    writing docs/reference/semantics.md §5.3); it now leaves "now" to the statement."""
    await fill(store, queue, 2)
    narrow = await make_store(max_connections=1, default_lock_time_seconds=1)
    rival = await (await make_store()).consumer(queue)
    iterator = narrow.consume_iter(queue)
    first = await anext(iterator)  # registers the iterator's consumer
    assert await iterator.archive(first.id)
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_only_way_in() -> None:
        async with narrow.db.transaction() as db:
            await db.fetch(db.sql.QUEUE_COUNT)
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_only_way_in())
    await held.wait()
    claim = asyncio.create_task(anext(iterator))  # waits behind the holder
    await asyncio.sleep(1.5)  # the fault itself: longer than the 1 s lease
    release.set()
    await holder
    second = await claim
    assert second.id != first.id
    assert await rival.dequeue() == []  # its lease runs for a second from the claim itself
    await iterator.close()
