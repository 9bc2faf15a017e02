"""Cancelling a queued message (semantics.md §7.9, beyond pgqrs), on every backend.

A message that is not under a running lease can be cancelled, by id or by deduplication key,
from its producer or by an operator (`Admin`): it is archived with a mark and never delivered.
A message a consumer holds under a running lease is refused (`MessageLeasedError`), a workflow
trigger too (cancel the run). A cancel racing a claim: exactly one of them wins.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import pgqrs
from pgqrs.tables import messages as message_rows
from tests.support.clocks import FixedClock, at
from tests.support.target import StoreFactory


async def cancelled_at(store: pgqrs.Store, message_id: int) -> str | None:
    return (await message_rows.options(store.db, message_id))[2]


async def claim_ids(store: pgqrs.Store, queue: str) -> list[int]:
    consumer = await store.consumer(queue)
    return [m.id for m in await consumer.dequeue(store.config.default_max_batch_size)]


async def test_cancel_message_a_queued_message_is_never_delivered(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    a, b, c = await producer.enqueue_batch([{"n": 1}, {"n": 2}, {"n": 3}])
    assert await producer.cancel(b) is True
    message = await (await store.get_messages()).get(b)
    assert message.archived_at is not None
    assert await cancelled_at(store, b) == message.archived_at
    assert await claim_ids(store, queue) == [a, c]
    metrics = await pgqrs.admin(store).queue_metrics(queue)
    assert (metrics.archived_messages, metrics.pending_messages) == (1, 0)


async def test_cancel_message_delayed_and_poison_messages(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    delayed = await producer.enqueue_delayed({"n": 1}, 3600)
    poison = await producer.enqueue({"n": 2})
    consumer = await store.consumer(queue)
    for _ in range(store.config.max_read_ct):
        [m] = await consumer.dequeue()
        assert await consumer.release_messages([m.id]) == 1
    assert await producer.cancel(delayed) is True
    assert await pgqrs.admin(store).cancel_message(queue, poison) is True
    store.clock = FixedClock(at(7200))  # the delay is over: still never delivered
    assert await claim_ids(store, queue) == []


async def test_cancel_message_twice_or_after_archive_says_false(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    first, done = await producer.enqueue_batch([{"n": 1}, {"n": 2}], dedup_keys=["k", None])
    assert await producer.cancel(first) is True
    assert await producer.cancel(first) is False
    assert await producer.cancel_key("k") is False  # no unarchived message holds it now
    consumer = await store.consumer(queue)
    [m] = await consumer.dequeue()
    assert await consumer.archive(m.id)
    assert await producer.cancel(done) is False
    assert await cancelled_at(store, done) is None  # handled, not cancelled


async def test_cancel_message_by_key(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    keyed = await producer.enqueue({"n": 1}, dedup_key="order-7")
    other = await producer.enqueue({"n": 2}, dedup_key="order-8")
    assert await producer.cancel_key("order-7") is True
    assert await cancelled_at(store, keyed) is not None
    assert await producer.cancel_key("order-9") is False
    admin = pgqrs.admin(store)
    assert await admin.cancel_message_key(queue, "order-8") is True
    assert await claim_ids(store, queue) == []
    assert await cancelled_at(store, other) is not None


async def test_cancel_message_under_a_running_lease_is_refused(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    mid = await producer.enqueue({"n": 1}, dedup_key="k")
    consumer = await store.consumer(queue)
    [m] = await consumer.dequeue_many_with_delay(1, 600)
    for cancel in (
        producer.cancel(mid),
        producer.cancel_key("k"),
        pgqrs.admin(store).cancel_message(queue, mid),
        pgqrs.admin(store).cancel_message_key(queue, "k"),
    ):
        with pytest.raises(pgqrs.MessageLeasedError) as caught:
            await cancel
        assert isinstance(caught.value, pgqrs.StateTransitionError)
        assert caught.value.message_id == mid
        assert caught.value.worker_id == consumer.worker_id
        assert caught.value.lease_ends == m.vt
        assert str(caught.value).startswith(f"Message {mid} is leased by worker ")
    assert await cancelled_at(store, mid) is None
    assert await consumer.archive(mid)  # the handler finishes as usual


async def test_cancel_message_whose_lease_is_over_is_cancelled(
    store: pgqrs.Store, queue: str
) -> None:
    t0 = at(0)
    store.clock = FixedClock(t0)
    producer = await store.producer(queue)
    mid = await producer.enqueue({"n": 1})
    consumer = await store.consumer(queue)
    [m] = await consumer.dequeue_many_with_delay(1, 10)
    store.clock = FixedClock(t0 + timedelta(seconds=60))
    assert await producer.cancel(m.id) is True
    assert await consumer.archive(mid) is False  # the late handler cannot settle it
    assert await claim_ids(store, queue) == []


async def test_cancel_message_a_workflow_trigger_is_refused(store: pgqrs.Store) -> None:
    run = await pgqrs.admin(store).create_workflow("wf", {"x": 1})
    info = await store.get_queue("wf")
    producer = await store.producer("wf")
    trigger = run.message_id
    for cancel in (producer.cancel(trigger), pgqrs.admin(store).cancel_message("wf", trigger)):
        with pytest.raises(pgqrs.ValidationError, match="cancel the workflow run instead"):
            await cancel
    assert await cancelled_at(store, trigger) is None
    assert await claim_ids(store, "wf") == [trigger]
    assert info.id == (await (await store.get_messages()).get(trigger)).queue_id


async def test_cancel_message_not_in_the_queue(store: pgqrs.Store, queue: str) -> None:
    await store.queue("other")
    elsewhere = await (await store.producer("other")).enqueue({"n": 1})
    producer = await store.producer(queue)
    with pytest.raises(pgqrs.MessageNotFoundError, match=f"'{elsewhere}' not found"):
        await producer.cancel(elsewhere)
    with pytest.raises(pgqrs.MessageNotFoundError, match="not found in queue 'jobs'"):
        await pgqrs.admin(store).cancel_message(queue, 999_999)
    with pytest.raises(pgqrs.QueueNotFoundError):
        await pgqrs.admin(store).cancel_message("missing", elsewhere)
    assert await cancelled_at(store, elsewhere) is None


async def test_cancel_message_bad_values_raise_validation_error(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    mid = await producer.enqueue({"n": 1}, dedup_key="k")
    admin = pgqrs.admin(store)
    for call in (
        producer.cancel(True),
        producer.cancel(str(mid)),  # type: ignore[arg-type]
        producer.cancel_key(""),
        producer.cancel_key(None),  # type: ignore[arg-type]
        admin.cancel_message(queue, 1.0),  # type: ignore[arg-type]
        admin.cancel_message_key(queue, "x" * 256),
    ):
        with pytest.raises(pgqrs.ValidationError, match=r"^Validation failed: "):
            await call
    assert await cancelled_at(store, mid) is None


# -- a cancel racing a claim -----------------------------------------------------------------------
ROUNDS = 25


async def test_cancel_message_racing_a_claim_exactly_one_wins(
    store: pgqrs.Store, queue: str, make_store: StoreFactory
) -> None:
    """Each round, one fresh message; a claim and a cancel start together (from two stores
    where the backend has several writers: separate connections race in the database)."""
    other = store if store.backend == "s3" else await make_store()
    producer = await other.producer(queue)
    consumer = await store.consumer(queue)
    outcomes = {"cancelled": 0, "claimed": 0}
    for _ in range(ROUNDS):
        mid = await producer.enqueue({"n": 1})

        async def cancel(mid: int = mid) -> bool:
            try:
                return await producer.cancel(mid)
            except pgqrs.MessageLeasedError:
                return False

        claimed, cancelled = await asyncio.gather(consumer.dequeue(), cancel())
        won_claim = [m.id for m in claimed] == [mid]
        assert won_claim != cancelled, (mid, claimed, cancelled)
        assert (await cancelled_at(store, mid) is not None) == cancelled
        if won_claim:
            assert await consumer.archive(mid)
        outcomes["cancelled" if cancelled else "claimed"] += 1
    assert sum(outcomes.values()) == ROUNDS
