"""Producing: enqueue, delayed and batch enqueue, producer registration
(semantics.md §7.2, §9.2)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

import pgqrs
from tests.support.target import StoreFactory


async def test_enqueue_returns_ascending_ids_and_stores_payload(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    first = await producer.enqueue({"n": 1, "nested": {"a": [1, 2.5, None, True]}})
    second = await producer.enqueue("just a string")
    assert second > first
    messages = await store.get_messages()
    stored = await messages.get(first)
    assert stored.payload == {"n": 1, "nested": {"a": [1, 2.5, None, True]}}
    assert stored.raw_payload == stored.payload
    assert (await messages.get(second)).payload == "just a string"
    assert stored.read_ct == 0
    assert stored.producer_worker_id == producer.worker_id
    assert stored.consumer_worker_id is None
    assert stored.archived_at is None
    assert stored.dequeued_at is None
    # Visible at once: vt equals enqueued_at.
    assert stored.vt == stored.enqueued_at


@pytest.mark.parametrize(
    "payload",
    [None, 0, -7, 3.25, True, False, "", [], {}, [1, "two", {"three": 3}], {"unicode": "héllo ✓"}],
)
async def test_every_json_value_round_trips(
    store: pgqrs.Store, queue: str, payload: object
) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    await producer.enqueue(payload)
    [message] = await consumer.dequeue()
    assert message.payload == payload
    assert type(message.payload) is type(payload)


async def test_tuples_become_lists_and_keys_become_strings(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    mid = await producer.enqueue({"t": (1, 2), 2: "two", None: "none", True: "yes", 1.5: "x"})
    message = await (await store.get_messages()).get(mid)
    assert message.payload == {"t": [1, 2], "2": "two", "null": "none", "true": "yes", "1.5": "x"}


async def test_enqueue_delayed_is_invisible_until_the_delay_passes(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    mid = await producer.enqueue_delayed({"later": True}, 60)
    stored = await (await store.get_messages()).get(mid)
    enqueued = datetime.fromisoformat(stored.enqueued_at)
    assert stored.vt is not None
    assert datetime.fromisoformat(stored.vt) - enqueued == timedelta(seconds=60)
    assert await consumer.dequeue() == []
    early = enqueued + timedelta(seconds=59)
    assert await consumer.dequeue_at(1, 30, early) == []
    [message] = await consumer.dequeue_at(1, 30, enqueued + timedelta(seconds=60))
    assert message.id == mid


async def test_fractional_delay_is_kept(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    mid = await producer.enqueue_delayed(1, 0.25)
    stored = await (await store.get_messages()).get(mid)
    assert stored.vt is not None
    gap = datetime.fromisoformat(stored.vt) - datetime.fromisoformat(stored.enqueued_at)
    assert gap == timedelta(milliseconds=250)


async def test_enqueue_batch_keeps_input_order(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    payloads = [{"i": i} for i in range(25)]
    ids = await producer.enqueue_batch(payloads)
    assert ids == sorted(ids)
    assert len(set(ids)) == 25
    claimed = await consumer.dequeue(25)
    assert [m.id for m in claimed] == ids
    assert [m.payload for m in claimed] == payloads
    # One statement, one now: every message of the batch shares its enqueue time.
    assert len({m.enqueued_at for m in claimed}) == 1


async def test_enqueue_batch_of_strings_and_scalars(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    payloads: list[object] = ["a", 'b"quoted"', 1, None, [None], {"k": "v"}]
    ids = await producer.enqueue_batch(payloads)
    messages = await store.get_messages()
    assert [(await messages.get(i)).payload for i in ids] == payloads


async def test_empty_batch_writes_nothing(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    assert await producer.enqueue_batch([]) == []
    assert await (await store.get_messages()).count() == 0


async def test_producer_on_missing_queue(store: pgqrs.Store) -> None:
    with pytest.raises(pgqrs.QueueNotFoundError, match="Queue 'nope' not found"):
        await store.producer("nope")


async def test_producer_registers_a_ready_worker(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    info = await (await store.get_workers()).get(producer.worker_id)
    assert info.status == pgqrs.WorkerStatus.Ready
    assert info.queue_id == (await store.get_queue(queue)).id
    assert info.name == producer.name
    assert "-" in producer.name  # <hostname>-<uuid4>
    assert producer.queue_id == info.queue_id


async def test_named_worker_reuse_rules(store: pgqrs.Store, queue: str) -> None:
    first = await store.consumer(queue, name="reporting")
    with pytest.raises(pgqrs.ValidationError, match="already active"):
        await store.consumer(queue, name="reporting")
    await first.suspend()
    with pytest.raises(pgqrs.ValidationError, match=r"is suspended\. Use resume"):
        await store.producer(queue, name="reporting")
    await first.shutdown()
    again = await store.producer(queue, name="reporting")
    assert again.worker_id == first.worker_id
    assert await again.status() == pgqrs.WorkerStatus.Ready


async def test_rate_limit_bucket_per_producer(
    make_store: StoreFactory, queue: str, store: pgqrs.Store
) -> None:
    limited = await make_store(max_enqueue_per_second=1, max_enqueue_burst=3)
    producer = await limited.producer(queue)
    await producer.enqueue_batch([1, 2])
    await producer.enqueue(3)
    with pytest.raises(pgqrs.RateLimitedError) as caught:
        await producer.enqueue(4)
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 1
    # A fresh producer has its own full bucket.
    other = await limited.producer(queue)
    await other.enqueue(5)
    assert await (await store.get_messages()).count() == 4


async def test_helpers_refuse_bad_payloads_before_registering_a_worker(
    make_store: StoreFactory, queue: str, store: pgqrs.Store
) -> None:
    small = await make_store(max_payload_size_bytes=10, max_enqueue_per_second=5)
    with pytest.raises(pgqrs.ValidationError, match=r"^Payload size 12 exceeds limit 10 \("):
        await pgqrs.produce(small, queue, "x" * 10)
    with pytest.raises(pgqrs.ValidationError, match="Payload at index 1 too large"):
        await pgqrs.produce_batch(small, queue, [1, "y" * 20])
    with pytest.raises(pgqrs.ValidationError, match="exceeds the enqueue burst limit of 5"):
        await pgqrs.produce_batch(small, queue, list(range(6)))
    with pytest.raises(pgqrs.SerializationError):
        await pgqrs.produce(small, queue, {1, 2})
    assert await (await store.get_workers()).count() == 0
    assert await (await store.get_messages()).count() == 0


# The other writer holds the file's write lock: SQLite and Turso (S3's cache file is the
# store's own; its transactions are covered by tests/faults/test_cancel_points.py).
@pytest.mark.backends("sqlite", "turso")
async def test_a_produce_cancelled_while_another_writer_holds_the_lock_leaves_no_transaction(
    store: pgqrs.Store, make_store: StoreFactory, queue: str
) -> None:
    """Issue 10, defect 1: `asyncio.timeout(0.1)` around `pgqrs.produce` while another writer
    held the lock left the writer thread's BEGIN IMMEDIATE without a rollback: every later
    write of the store failed ("cannot start a transaction within a transaction") and the file
    stayed locked for everyone else. A cancelled call now rolls back whatever it left open."""
    other = await make_store()
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with other.db.transaction() as db:
            await db.execute(db.sql.WORKER_HEARTBEAT, {"id": 0, "now": None, "fence": None})
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_write_lock())
    await held.wait()
    asyncio.get_running_loop().call_later(0.5, release.set)  # the other writer finishes
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await pgqrs.produce(store, queue, {"n": 1})
    await holder
    mid = await pgqrs.produce(store, queue, {"n": 2})  # the store writes again
    assert [m.payload for m in await (await store.consumer(queue)).dequeue(5)][-1] == {"n": 2}
    assert mid > 0
    await pgqrs.produce(other, queue, {"n": 3})  # and so does the other writer
