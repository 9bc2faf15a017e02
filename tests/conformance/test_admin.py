"""Admin operations, queue lookup and the Workers / Queues / Messages table handles (api.md §3,
§4, §10; semantics.md §7.4, §14)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

import pgqrs
from tests.support.raw_db import RawDb
from tests.support.target import Target

T = TypeVar("T")

# -- Admin -------------------------------------------------------------------------------------


@pytest.fixture
async def no_new_workers(store: pgqrs.Store) -> AsyncIterator[None]:
    """Admin calls never register workers: the worker count is the same at the end."""
    workers = await store.get_workers()
    before = await workers.count()
    yield
    assert await workers.count() == before


async def admin_call(store: pgqrs.Store, call: Awaitable[T]) -> T:
    """Await an admin call and check it registered no worker (it may delete stopped ones)."""
    workers = await store.get_workers()
    before = {w.id for w in await workers.list()}
    result = await call
    assert {w.id for w in await workers.list()} <= before
    return result


async def test_admin_and_admin_class_are_equivalent(store: pgqrs.Store) -> None:
    one, two = pgqrs.admin(store), pgqrs.Admin(store)
    assert isinstance(one, pgqrs.Admin)
    assert one.store is store
    assert two.store is store


async def test_create_queue(store: pgqrs.Store, no_new_workers: None) -> None:
    admin = pgqrs.admin(store)
    info = await admin.create_queue("emails")
    assert isinstance(info, pgqrs.QueueInfo)
    assert info.queue_name == "emails"
    with pytest.raises(pgqrs.QueueAlreadyExistsError) as caught:
        await admin.create_queue("emails")
    assert str(caught.value) == "Queue 'emails' already exists"
    assert await admin.create_queue("emails", exist_ok=True) == info
    assert await admin.create_queue("emails", True) == info
    assert await (await store.get_queues()).count() == 1
    # Names are case-sensitive.
    other = await admin.create_queue("Emails")
    assert other.id != info.id


async def test_store_queue_creates_and_refuses_duplicates(store: pgqrs.Store) -> None:
    info = await store.queue("jobs")
    assert info.queue_name == "jobs"
    with pytest.raises(pgqrs.QueueAlreadyExistsError, match=r"^Queue 'jobs' already exists$"):
        await store.queue("jobs")
    with pytest.raises(pgqrs.QueueAlreadyExistsError):
        await pgqrs.admin(store).create_queue("jobs")
    assert await (await store.get_queues()).list() == [info]
    assert await (await store.get_workers()).count() == 0


async def test_get_queue(store: pgqrs.Store, no_new_workers: None) -> None:
    admin = pgqrs.admin(store)
    info = await store.queue("jobs")
    assert await store.get_queue("jobs") == info
    assert await admin.get_queue("jobs") == info
    for call in (store.get_queue("nope"), admin.get_queue("nope"), store.get_queue("JOBS")):
        with pytest.raises(pgqrs.QueueNotFoundError) as caught:
            await call
        assert isinstance(caught.value, pgqrs.NotFoundError)
    with pytest.raises(pgqrs.QueueNotFoundError, match=r"^Queue 'nope' not found$"):
        await store.get_queue("nope")


async def test_producer_and_consumer_need_the_queue(store: pgqrs.Store) -> None:
    for call in (store.producer("missing"), store.consumer("missing")):
        with pytest.raises(pgqrs.QueueNotFoundError, match=r"^Queue 'missing' not found$"):
            await call
    assert await (await store.get_workers()).count() == 0


async def test_concurrent_create_queue_with_exist_ok(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    results = await asyncio.gather(*(admin.create_queue("race", exist_ok=True) for _ in range(8)))
    assert len({r.id for r in results}) == 1
    assert await (await store.get_queues()).count() == 1


# -- delete_queue ------------------------------------------------------------------------------


async def test_delete_queue_unknown(store: pgqrs.Store) -> None:
    with pytest.raises(pgqrs.QueueNotFoundError, match=r"^Queue 'ghost' not found$"):
        await pgqrs.admin(store).delete_queue("ghost")


async def test_delete_queue_refuses_while_messages_remain(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    await store.queue("jobs")
    producer = await store.producer("jobs")
    consumer = await store.consumer("jobs")
    mid = await producer.enqueue({"n": 1})
    await producer.shutdown()
    await consumer.shutdown()
    with pytest.raises(pgqrs.ValidationError) as caught:
        await admin_call(store, admin.delete_queue("jobs"))
    message = str(caught.value)
    assert message.startswith("Validation failed: ")
    assert message.endswith("Purge data first.")
    # Archived messages count as messages too.
    worker = await store.consumer("jobs", name="settler")
    [claimed] = await worker.dequeue()
    assert claimed.id == mid
    assert await worker.archive(mid)
    await worker.shutdown()
    with pytest.raises(pgqrs.ValidationError, match=r"Purge data first"):
        await admin.delete_queue("jobs")
    assert (await store.get_queue("jobs")).queue_name == "jobs"
    assert await (await store.get_messages()).list_archived_by_queue(claimed.queue_id)


async def test_delete_queue_refuses_while_workers_are_not_stopped(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    await store.queue("jobs")
    consumer = await store.consumer("jobs")
    producer = await store.producer("jobs")
    with pytest.raises(pgqrs.ValidationError) as caught:
        await admin.delete_queue("jobs")
    assert "2 worker(s) are still assigned" in str(caught.value)
    await consumer.suspend()  # suspended is not stopped
    await producer.shutdown()
    with pytest.raises(pgqrs.ValidationError) as caught:
        await admin.delete_queue("jobs")
    assert "1 worker(s) are still assigned" in str(caught.value)
    assert await (await store.get_workers()).count() == 2


async def test_delete_queue_refuses_while_a_workflow_uses_it(
    store: pgqrs.Store, target: Target
) -> None:
    info = await store.queue("flow")
    # A workflow definition written directly: the workflow API is not part of this suite.
    RawDb(target).query(
        "INSERT INTO {s}pgqrs_workflows (name, queue_id) VALUES ('flow', ?)", [info.id]
    )
    with pytest.raises(pgqrs.ValidationError) as caught:
        await pgqrs.admin(store).delete_queue("flow")
    assert "workflow" in str(caught.value)
    assert await store.get_queue("flow") == info


async def test_delete_queue_removes_the_queue_and_its_stopped_workers(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    await store.queue("doomed")
    await store.queue("other")
    producer = await store.producer("doomed")
    consumer = await store.consumer("doomed")
    bystander = await store.consumer("other")
    mid = await producer.enqueue({"n": 1})
    [message] = await consumer.dequeue()
    assert await consumer.archive(message.id)
    await admin_call(
        store, admin.purge_queue("doomed")
    )  # deletes the message (and the stopped workers: none yet)
    await producer.shutdown()
    await consumer.shutdown()
    workers = await store.get_workers()
    assert await workers.count() == 3
    assert await admin_call(store, admin.delete_queue("doomed")) is True
    with pytest.raises(pgqrs.QueueNotFoundError):
        await store.get_queue("doomed")
    assert [w.id for w in await workers.list()] == [bystander.worker_id]
    for gone in (producer.worker_id, consumer.worker_id):
        with pytest.raises(pgqrs.WorkerNotFoundError):
            await workers.get(gone)
    with pytest.raises(pgqrs.MessageNotFoundError):
        await (await store.get_messages()).get(mid)
    # The name is free again.
    assert (await store.queue("doomed")).queue_name == "doomed"


async def test_delete_empty_queue(store: pgqrs.Store, no_new_workers: None) -> None:
    await store.queue("empty")
    assert await pgqrs.admin(store).delete_queue("empty") is True
    assert await (await store.get_queues()).count() == 0


# -- purge_queue -------------------------------------------------------------------------------


async def test_purge_queue(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    info = await store.queue("jobs")
    await store.queue("other")
    producer = await store.producer("jobs")
    consumer = await store.consumer("jobs")
    stopped = await store.consumer("jobs", name="stopped-one")
    other_producer = await store.producer("other")
    ids = await producer.enqueue_batch([1, 2, 3, 4])
    await producer.enqueue_delayed(5, 3600)
    [first, second] = await consumer.dequeue(2)
    assert await consumer.archive(first.id)  # archived rows are purged too
    await other_producer.enqueue_batch(["keep", "me"])
    await stopped.shutdown()
    workers = await store.get_workers()
    messages = await store.get_messages()
    assert await messages.count() == 6

    assert await admin_call(store, admin.purge_queue("jobs")) == 5
    assert await messages.count() == 2  # the other queue's messages
    for mid in [*ids, second.id]:
        with pytest.raises(pgqrs.MessageNotFoundError):
            await messages.get(mid)
    assert await messages.list_archived_by_queue(info.id) == []
    # The stopped worker went; the ready ones (one still "holding" a purged message) stay.
    remaining = {w.id for w in await workers.list()}
    assert remaining == {producer.worker_id, consumer.worker_id, other_producer.worker_id}
    assert await consumer.status() == pgqrs.WorkerStatus.Ready
    assert (await store.get_queue("jobs")) == info  # the queue itself stays
    assert await admin.purge_queue("jobs") == 0
    # The queue works as before.
    mid = await producer.enqueue("again")
    assert [m.id for m in await consumer.dequeue()] == [mid]


async def test_purge_queue_takes_workflow_runs_and_steps_along(
    store: pgqrs.Store, target: Target
) -> None:
    info = await store.queue("flow")
    other = await store.queue("other")
    producer = await store.producer("flow")
    [mid] = await producer.enqueue_batch([{"input": 1}])
    [kept] = await (await store.producer("other")).enqueue_batch([{"input": 2}])
    # Runs and steps written directly: the workflow API is not part of this suite.
    raw = RawDb(target)
    raw.query("INSERT INTO {s}pgqrs_workflows (name, queue_id) VALUES ('flow', ?)", [info.id])
    raw.query("INSERT INTO {s}pgqrs_workflows (name, queue_id) VALUES ('other', ?)", [other.id])
    for message_id, name in ((mid, "flow"), (kept, "other")):
        raw.query(
            "INSERT INTO {s}pgqrs_workflow_runs (workflow_id, message_id, status) "
            "SELECT id, ?, 'RUNNING' FROM {s}pgqrs_workflows WHERE name = ?",
            [message_id, name],
        )
        raw.query(
            "INSERT INTO {s}pgqrs_workflow_steps (run_id, step_name, status) "
            "SELECT id, 'step', 'SUCCESS' FROM {s}pgqrs_workflow_runs WHERE message_id = ?",
            [message_id],
        )
    assert await pgqrs.admin(store).purge_queue("flow") == 1
    runs = raw.query("SELECT message_id FROM {s}pgqrs_workflow_runs")
    assert runs == [(kept,)]
    assert raw.query("SELECT COUNT(*) FROM {s}pgqrs_workflow_steps") == [(1,)]
    assert raw.query("SELECT COUNT(*) FROM {s}pgqrs_workflows") == [(2,)]  # definitions stay
    assert (await (await store.get_messages()).get(kept)).raw_payload == {"input": 2}


async def test_purge_queue_unknown(store: pgqrs.Store) -> None:
    with pytest.raises(pgqrs.QueueNotFoundError, match=r"^Queue 'ghost' not found$"):
        await pgqrs.admin(store).purge_queue("ghost")
    with pytest.raises(pgqrs.QueueNotFoundError):
        await (await store.get_queues()).purge("ghost")


async def test_queues_handle_purge(store: pgqrs.Store) -> None:
    await store.queue("jobs")
    producer = await store.producer("jobs")
    await producer.enqueue_batch([1, 2, 3])
    assert await (await store.get_queues()).purge("jobs") == 3
    assert await (await store.get_messages()).count() == 0


# -- release_worker_messages -------------------------------------------------------------------


async def test_release_worker_messages(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    await store.queue("jobs")
    producer = await store.producer("jobs")
    consumer = await store.consumer("jobs")
    other = await store.consumer("jobs")
    ids = await producer.enqueue_batch([1, 2, 3, 4, 5])
    mine = await consumer.dequeue(3)
    [theirs] = await other.dequeue()
    assert await consumer.archive(mine[0].id)
    before = datetime.now(UTC)

    assert await admin_call(store, admin.release_worker_messages(consumer.worker_id)) == 2
    messages = await store.get_messages()
    for m in mine[1:]:
        released = await messages.get(m.id)
        assert released.consumer_worker_id is None
        assert released.read_ct == 1  # read_ct is kept
        assert released.vt is not None
        assert datetime.fromisoformat(released.vt) <= datetime.now(UTC)
        assert datetime.fromisoformat(released.vt) >= before - timedelta(seconds=1)
    archived = await messages.get(mine[0].id)
    assert (archived.consumer_worker_id, archived.archived_at is not None) == (
        consumer.worker_id,
        True,
    )
    assert (await messages.get(theirs.id)).consumer_worker_id == other.worker_id
    # Released messages are claimable at once; the old owner is fenced out.
    again = await other.dequeue(5)
    assert [m.id for m in again] == [ids[1], ids[2], ids[4]]
    assert not await consumer.archive(mine[1].id)
    assert await consumer.status() == pgqrs.WorkerStatus.Ready  # the worker is untouched
    assert await admin.release_worker_messages(consumer.worker_id) == 0


async def test_release_worker_messages_unknown_worker(store: pgqrs.Store) -> None:
    assert await pgqrs.admin(store).release_worker_messages(987654) == 0
    assert await pgqrs.admin(store).release_worker_messages(-1) == 0


# -- list_workers and the Workers handle -------------------------------------------------------


async def test_workers_handle(store: pgqrs.Store) -> None:
    workers = await store.get_workers()
    assert await workers.count() == 0
    assert await workers.list() == []
    assert await pgqrs.admin(store).list_workers() == []
    info = await store.queue("jobs")
    first = await store.consumer("jobs", name="first")
    second = await store.producer("jobs", name="second")
    third = await store.consumer("jobs", name="third")
    assert await workers.count() == 3  # the same handle reads live rows
    listed = await workers.list()
    assert [w.name for w in listed] == ["third", "second", "first"]  # newest started_at first
    assert await pgqrs.admin(store).list_workers() == listed
    got = await workers.get(second.worker_id)
    assert (got.id, got.name, got.queue_id, got.status) == (
        second.worker_id,
        "second",
        info.id,
        pgqrs.WorkerStatus.Ready,
    )
    assert got == next(w for w in listed if w.id == second.worker_id)
    # Re-registering a stopped name keeps its id and makes it the newest.
    await first.shutdown()
    again = await store.consumer("jobs", name="first")
    assert again.worker_id == first.worker_id
    assert [w.name for w in await workers.list()] == ["first", "third", "second"]
    assert third.worker_id > again.worker_id


async def test_workers_list_ties_by_id_descending(store: pgqrs.Store, target: Target) -> None:
    await store.queue("jobs")
    ids = [(await store.consumer("jobs")).worker_id for _ in range(3)]
    RawDb(target).query(
        "UPDATE {s}pgqrs_workers SET started_at = ?",
        [
            datetime(2030, 1, 1, tzinfo=UTC)
            if target.backend == "postgres"
            else "2030-01-01 00:00:00.000000"
        ],
    )
    assert [w.id for w in await (await store.get_workers()).list()] == sorted(ids, reverse=True)


async def test_workers_get_unknown(store: pgqrs.Store) -> None:
    workers = await store.get_workers()
    with pytest.raises(pgqrs.WorkerNotFoundError) as caught:
        await workers.get(424242)
    assert str(caught.value) == "Worker with id '424242' not found"
    assert isinstance(caught.value, pgqrs.NotFoundError)
    with pytest.raises(pgqrs.WorkerNotFoundError):
        await store.worker(424242)


# -- Queues handle -----------------------------------------------------------------------------


async def test_queues_handle(store: pgqrs.Store) -> None:
    queues = await store.get_queues()
    assert await queues.count() == 0
    assert await queues.list() == []
    created = [await store.queue(name) for name in ("zeta", "alpha", "mid")]
    assert await queues.count() == 3
    assert await queues.list() == created  # by id, not by name
    assert [q.id for q in created] == sorted(q.id for q in created)
    await pgqrs.admin(store).delete_queue("alpha")
    assert await queues.list() == [created[0], created[2]]
    assert await queues.count() == 2


# -- Messages handle ---------------------------------------------------------------------------


async def test_messages_handle_count_and_get(store: pgqrs.Store) -> None:
    messages = await store.get_messages()
    assert await messages.count() == 0
    await store.queue("a")
    await store.queue("b")
    pa = await store.producer("a")
    pb = await store.producer("b")
    consumer = await store.consumer("a")
    ids = await pa.enqueue_batch([1, 2, 3])
    await pb.enqueue("b1")
    delayed = await pb.enqueue_delayed("later", 3600)
    assert await messages.count() == 5  # every queue, delayed and leased ones included
    [claimed] = await consumer.dequeue()
    assert await messages.count() == 5
    assert await consumer.archive(claimed.id)
    assert await messages.count() == 4  # archived rows are not counted
    got = await messages.get(delayed)
    assert (got.id, got.payload, got.producer_worker_id) == (delayed, "later", pb.worker_id)
    assert (await messages.get(ids[0])).archived_at is not None  # archived rows can be read


async def test_messages_get_unknown(store: pgqrs.Store) -> None:
    with pytest.raises(pgqrs.MessageNotFoundError) as caught:
        await (await store.get_messages()).get(31337)
    assert str(caught.value) == "Message with id '31337' not found"
    assert isinstance(caught.value, pgqrs.NotFoundError)


async def test_list_archived_by_queue(store: pgqrs.Store) -> None:
    messages = await store.get_messages()
    qa = await store.queue("a")
    qb = await store.queue("b")
    producer = await store.producer("a")
    consumer = await store.consumer("a")
    other = await store.consumer("b")
    m1, m2, m3, m4 = await producer.enqueue_batch([1, 2, 3, 4])
    await (await store.producer("b")).enqueue("b")
    await consumer.dequeue(4)
    [b] = await other.dequeue()
    assert await consumer.archive(m2)
    assert await consumer.archive_many([m1, m3]) == [True, True]  # one archived_at for both
    assert await other.archive(b.id)
    listed = await messages.list_archived_by_queue(qa.id)
    # Newest archived_at first; m1 and m3 share theirs, so the higher id comes first.
    assert [m.id for m in listed] == [m3, m1, m2]
    assert all(m.archived_at is not None for m in listed)
    assert m4 not in {m.id for m in listed}  # leased, not archived
    assert [m.id for m in await messages.list_archived_by_queue(qb.id)] == [b.id]
    assert await messages.list_archived_by_queue(987654) == []
