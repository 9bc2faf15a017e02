"""The blocking API (api.md §21): `pgqrs.sync` submits the library's own coroutines to one
portal thread per store. Plain test functions (no event loop), on every backend, except where a
test calls from inside a running loop on purpose."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import FrameType

import pytest

import pgqrs
import pgqrs.sync
from pgqrs.decorators import workflow
from pgqrs.queue.workers import LIMITS_REFRESH
from tests.support.clocks import OffsetClock
from tests.support.process import ROOT
from tests.support.sync_api import blocking_connection, wait_for, workers_of
from tests.support.target import Target


@pytest.fixture
def sync_store(target: Target) -> Iterator[pgqrs.sync.Store]:
    """A blocking store on the test's database, schema installed; closed afterwards."""
    store = pgqrs.sync.connect_with(target.config())
    try:
        store.admin().install()
        yield store
    finally:
        store.close()


@workflow(name="greet")
async def greet(run: pgqrs.Run, args: dict[str, str]) -> dict[str, str]:
    return {"hello": args["who"]}


def one_workflow_delivery(store: pgqrs.sync.Store, name: str) -> int:
    """A worker's single pass over the workflow's queue: the async API, awaited on the sync
    store's own loop through `call()`."""
    builder = pgqrs.dequeue().from_queue(name).handle_workflow(greet)
    return store.call(builder.execute)


def test_sync_api_round_trip(sync_store: pgqrs.sync.Store, target: Target) -> None:
    store = sync_store
    assert store.backend == target.backend
    assert store.config.dsn == target.dsn
    info = store.queue("jobs")
    assert store.get_queue("jobs") == info
    first = pgqrs.sync.produce(store, "jobs", {"n": 1})
    rest = pgqrs.sync.produce_batch(store, "jobs", [{"n": 2}, {"n": 3}])
    consumer = store.consumer("jobs")
    claimed = consumer.dequeue(10)
    assert [m.id for m in claimed] == [first, *rest]
    assert [m.payload for m in claimed] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert consumer.archive_many([m.id for m in claimed]) == [True, True, True]
    assert store.admin().queue_metrics("jobs").archived_messages == 3
    consumer.shutdown()
    assert consumer.status() == pgqrs.WorkerStatus.Stopped


def test_sync_api_exceptions_surface_unchanged(sync_store: pgqrs.sync.Store) -> None:
    store = sync_store
    with pytest.raises(pgqrs.QueueNotFoundError, match="Queue 'missing' not found") as found:
        store.get_queue("missing")
    assert type(found.value) is pgqrs.QueueNotFoundError
    with pytest.raises(pgqrs.ValidationError):
        store.queue("not a queue name!")
    store.queue("jobs")
    with pytest.raises(pgqrs.QueueAlreadyExistsError):
        store.queue("jobs")
    with pytest.raises(pgqrs.SerializationError):
        pgqrs.sync.produce(store, "jobs", {"x": float("nan")})
    with pytest.raises(pgqrs.ValidationError, match="No messages to enqueue"):
        pgqrs.sync.produce_batch(store, "jobs", [])
    with pytest.raises(ValueError, match="delay_seconds"):
        store.producer("jobs").enqueue_delayed({}, -1)
    assert store.get_messages().count() == 0


def test_sync_api_producers_and_consumers(sync_store: pgqrs.sync.Store) -> None:
    store = sync_store
    store.queue("jobs")
    producer = store.producer("jobs", "sync-producer")
    assert (producer.name, producer.queue_id) == ("sync-producer", store.get_queue("jobs").id)
    one = producer.enqueue({"n": 1})
    two, three = producer.enqueue_batch([{"n": 2}, {"n": 3}])
    assert producer.enqueue_batch([]) == []
    later = producer.enqueue_delayed({"n": 4}, 3600)
    four = pgqrs.sync.enqueue(producer, {"n": 5})
    [five] = pgqrs.sync.enqueue_batch(producer, [{"n": 6}])
    also_later = pgqrs.sync.enqueue_delayed(producer, {"n": 7}, 3600)

    consumer = store.consumer("jobs")
    claimed = consumer.dequeue_many_with_delay(10, 30)
    assert [m.id for m in claimed] == [one, two, three, four, five]  # the delayed ones wait
    by_id = {m.id: m for m in claimed}
    assert consumer.extend_vt(one, 10)
    assert pgqrs.sync.extend_vt(consumer, by_id[two], 10)
    assert consumer.archive(one)
    assert pgqrs.sync.archive(consumer, by_id[two])
    assert pgqrs.sync.archive_batch(consumer, [by_id[three]])
    assert consumer.delete(four)
    assert consumer.release_messages([five]) == 1
    [again] = pgqrs.sync.dequeue(consumer, 5)
    assert again.id == five
    assert consumer.release_with_visibility(five, "2000-01-01T00:00:00Z")
    two_hours_on = datetime.now(UTC) + timedelta(hours=2)
    found = {m.id: m for m in consumer.dequeue_at(10, 30, two_hours_on)}
    assert set(found) == {five, later, also_later}
    assert pgqrs.sync.delete(consumer, found[five])
    assert consumer.delete_many([later, also_later]) == [True, True]
    assert consumer.dequeue() == []
    assert store.get_messages().count() == 0


def test_sync_api_worker_handles(sync_store: pgqrs.sync.Store) -> None:
    store = sync_store
    store.queue("jobs")
    consumer = store.consumer("jobs")
    handle = store.worker(consumer.worker_id)
    assert handle.info().name == consumer.name
    consumer.heartbeat()
    assert consumer.is_healthy(60)
    handle.suspend()
    assert consumer.status() == pgqrs.WorkerStatus.Suspended
    with pytest.raises(pgqrs.SuspendedError):
        consumer.dequeue()
    with pytest.raises(pgqrs.StateTransitionError):
        handle.suspend()
    consumer.resume()
    consumer.interrupt()
    assert handle.status() == pgqrs.WorkerStatus.Interrupted
    consumer.suspend()
    handle.shutdown(release=True)
    assert consumer.status() == pgqrs.WorkerStatus.Stopped
    assert not consumer.is_healthy(60)

    producer = store.producer("jobs")
    producer.suspend()
    producer.resume()
    producer.heartbeat()
    producer.shutdown()
    assert producer.status() == pgqrs.WorkerStatus.Stopped
    with pytest.raises(pgqrs.WorkerNotFoundError):
        store.worker(10**9)


def test_sync_api_admin_and_metrics(sync_store: pgqrs.sync.Store) -> None:
    store = sync_store
    admin = pgqrs.sync.admin(store)
    assert admin.store is store
    admin.install()  # idempotent
    admin.verify()
    created = admin.create_queue("dead", max_read_ct=1)
    assert admin.create_queue("dead", exist_ok=True) == created
    assert admin.get_queue("dead") == created
    assert admin.update_queue("dead", max_read_ct=2).max_read_ct == 2
    assert admin.update_queue("dead", max_read_ct=1).max_read_ct == 1
    assert admin.queue_settings("dead").max_read_ct == 1

    # One delivery makes a dead letter at max_read_ct=1.
    mid = pgqrs.sync.produce(store, "dead", {"n": 1})
    consumer = store.consumer("dead")
    assert [m.id for m in consumer.dequeue()] == [mid]
    assert [m.id for m in admin.get_worker_messages(consumer.worker_id)] == [mid]
    assert admin.release_worker_messages(consumer.worker_id) == 1
    assert [m.id for m in admin.dlq_list("dead")] == [mid]
    [dead] = admin.dead_letters("dead")
    assert (dead.message.id, dead.last_error) == (mid, None)
    assert admin.last_error(mid) is None
    assert admin.dlq("dead") == [mid]
    assert admin.replay_dlq(mid).read_ct == 0

    metrics = admin.queue_metrics("dead")
    assert (metrics.name, metrics.pending_messages) == ("dead", 1)
    assert [m.name for m in admin.all_queues_metrics()] == ["dead"]
    assert admin.system_stats().total_queues == 1
    [health] = admin.worker_health_stats(60, group_by_queue=True)
    assert health.queue_name == "dead"
    assert consumer.worker_id in {w.id for w in admin.list_workers()}
    assert admin.reclaim_messages("dead") == 0
    assert admin.purge_archived("dead", older_than_seconds=3600) == 0
    assert admin.purge_queue("dead") == 1
    consumer.shutdown()
    assert admin.purge_old_workers(3600) == 0  # stopped just now: too young to purge
    with pytest.raises(pgqrs.StateTransitionError):
        admin.delete_worker(store.producer("dead").worker_id)  # not stopped
    assert admin.delete_worker(consumer.worker_id) is True
    with pytest.raises(pgqrs.ValidationError):
        admin.delete_queue("dead")  # a producer is still registered on it


def test_sync_api_table_handles_and_call(sync_store: pgqrs.sync.Store) -> None:
    store = sync_store
    queue_id = store.queue("jobs").id
    mid = pgqrs.sync.produce(store, "jobs", {"n": 1})
    queues = store.get_queues()
    assert (queues.count(), [q.queue_name for q in queues.list()]) == (1, ["jobs"])
    assert queues.metrics("jobs").pending_messages == 1
    assert [m.name for m in queues.list_metrics()] == ["jobs"]
    messages = store.get_messages()
    assert (messages.count(), messages.get(mid).payload) == (1, {"n": 1})
    assert messages.list_archived_by_queue(queue_id) == []
    workers = store.get_workers()
    assert (workers.list(), workers.count()) == ([], 0)  # produce writes no worker row
    shared = store.producer("jobs")
    assert workers.get(shared.worker_id).status == pgqrs.WorkerStatus.Ready
    assert workers.health_stats()[0].ready_workers == 1
    assert workers.purge_stale(3600) == 0
    record = pgqrs.sync.workflow().name("greet").store(store).create()
    assert store.get_workflows().get_by_name("greet") == record
    assert store.get_workflows().list() == [record]
    run = store.admin().create_workflow("greet", {"who": "x"})
    assert [r.id for r in store.get_workflow_runs().list()] == [run.id()]
    assert store.get_workflow_runs().get(run.id()).status == pgqrs.WorkflowStatus.Queued
    assert store.get_workflow_steps().list() == []
    assert store.get_workflow_steps().list_by_run(run.id()) == []
    # call(): any async API, awaited on the store's own loop.
    assert store.call(lambda s: s.get_queue("jobs")) == store.get_queue("jobs")


def test_sync_api_workflows(sync_store: pgqrs.sync.Store) -> None:
    store = sync_store
    record = pgqrs.sync.workflow().name("greet").store(store).create()
    assert pgqrs.sync.workflow().name("greet").store(store).id(7).create() == record
    trigger = pgqrs.sync.workflow().name("greet").store(store).trigger({"who": "sync"}).execute()
    assert trigger.payload == {"who": "sync"}
    outcome = pgqrs.sync.run().message(trigger).store(store)
    assert outcome.get() is None
    run = outcome.execute()
    assert (run.message_id, run.status()) == (trigger.id, pgqrs.WorkflowStatus.Queued)
    assert run.input == {"input": {"who": "sync"}}
    with pytest.raises(pgqrs.TimeoutError):
        outcome.result(timeout=0.05)

    # One thread blocks in result() while another runs the worker on the same store.
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(outcome.result, 30)
        assert one_workflow_delivery(store, "greet") == 1
        assert waiting.result(timeout=30) == {"hello": "sync"}
    assert run.refresh().status() == pgqrs.WorkflowStatus.Success
    assert outcome.get() == {"hello": "sync"}

    # Runs driven by hand, from outside any workflow code.
    failing = store.admin().create_workflow("greet", {"who": "nobody"})
    assert failing.with_time("2030-01-01T00:00:00Z").current_time is not None
    assert failing.with_retry(pgqrs.StepRetryPolicy(max_attempts=1)).retry_policy is not None
    assert failing.start()
    assert failing.fail({"reason": "no"})
    message = store.get_messages().get(failing.message_id)
    with pytest.raises(pgqrs.WorkflowFailedError) as failed:
        pgqrs.sync.run().message(message).store(store).result(timeout=5)
    assert failed.value.error == {"reason": "no"}
    cancelled = store.admin().create_workflow("greet", {"who": "later"})
    assert cancelled.cancel()
    assert cancelled.refresh().status() == pgqrs.WorkflowStatus.Cancelling
    paused = store.admin().create_workflow("greet", {"who": "paused"})
    assert paused.start()
    assert paused.pause("waiting", 60)
    assert paused.status() == pgqrs.WorkflowStatus.Paused
    done = store.admin().create_workflow("greet", {"who": "done"})
    assert done.complete({"ok": True})
    assert done.status() == pgqrs.WorkflowStatus.Success


def test_sync_api_priority_orders_claims(sync_store: pgqrs.sync.Store) -> None:
    """Every enqueue of the blocking API hands `priority` on: claims take the highest first,
    in enqueue order within a priority (semantics.md §7.3)."""
    store = sync_store
    store.queue("jobs")
    producer = store.producer("jobs")
    low = producer.enqueue({"n": "low"}, priority=-1)
    plain = pgqrs.sync.produce(store, "jobs", {"n": "plain"})
    fives = producer.enqueue_batch([{"n": 5}, {"n": 5}], priority=5)
    fives += pgqrs.sync.produce_batch(store, "jobs", [{"n": 5}], priority=5)
    fives += pgqrs.sync.enqueue_batch(producer, [{"n": 5}], priority=5)
    ten = pgqrs.sync.produce(store, "jobs", {"n": 10}, priority=10)
    twenty = pgqrs.sync.enqueue(producer, {"n": 20}, priority=20)
    thirty = producer.enqueue_delayed({"n": 30}, 0, priority=30)
    forty = pgqrs.sync.enqueue_delayed(producer, {"n": 40}, 0, priority=40)
    claimed = store.consumer("jobs").dequeue(20)
    assert [m.id for m in claimed] == [forty, thirty, twenty, ten, *fives, plain, low]
    with pytest.raises(pgqrs.ValidationError, match="priority"):
        producer.enqueue({}, priority=True)
    with pytest.raises(pgqrs.ValidationError, match="priority"):
        pgqrs.sync.produce(store, "jobs", {}, priority=2**31)


def test_sync_api_dedup_returns_the_existing_id(sync_store: pgqrs.sync.Store) -> None:
    """A deduplication key passed to any blocking enqueue reaches the database: a duplicate
    writes nothing and answers the existing id, marked `duplicate` (semantics.md §7.8)."""
    store = sync_store
    store.queue("jobs")
    producer = store.producer("jobs")
    first = producer.enqueue({"n": 1}, dedup_key="k")
    assert isinstance(first, pgqrs.EnqueuedId)
    assert first.duplicate is False
    again = [
        producer.enqueue({"n": 2}, dedup_key="k"),
        producer.enqueue_delayed({"n": 3}, 60, dedup_key="k"),
        pgqrs.sync.produce(store, "jobs", {"n": 4}, dedup_key="k"),
        pgqrs.sync.enqueue(producer, {"n": 5}, dedup_key="k"),
        pgqrs.sync.enqueue_delayed(producer, {"n": 6}, 60, dedup_key="k"),
    ]
    assert again == [first] * 5
    assert [i.duplicate for i in again] == [True] * 5
    batch = producer.enqueue_batch([{"b": 1}, {"b": 2}, {"b": 3}], dedup_keys=["k", "x", "x"])
    assert batch == [first, batch[1], batch[1]]
    assert [i.duplicate for i in batch] == [True, False, True]
    helper = pgqrs.sync.produce_batch(store, "jobs", [{"h": 1}, {"h": 2}], dedup_keys=["x", None])
    assert (helper[0], helper[0].duplicate, helper[1].duplicate) == (batch[1], True, False)
    [wrapped] = pgqrs.sync.enqueue_batch(producer, [{"w": 1}], dedup_keys=["k"])
    assert (wrapped, wrapped.duplicate) == (first, True)
    assert store.get_messages().count() == 3  # first, "x" and the helper's unkeyed one

    # The window keeps the key of an archived message; without one the key is free again.
    consumer = store.consumer("jobs")
    assert first in [m.id for m in consumer.dequeue(10)]
    assert consumer.archive(first)
    kept = producer.enqueue({"n": 7}, dedup_key="k", dedup_window_seconds=3600)
    assert (kept, kept.duplicate) == (first, True)
    fresh = pgqrs.sync.produce(store, "jobs", {"n": 8}, dedup_key="k")
    assert (fresh != first, fresh.duplicate) == (True, False)
    assert store.get_messages().get(first).payload == {"n": 1}
    with pytest.raises(pgqrs.ValidationError, match="dedup_key"):
        producer.enqueue({}, dedup_key="")


def test_sync_api_cancel_queued_messages(sync_store: pgqrs.sync.Store) -> None:
    """`Producer.cancel` / `cancel_key` and `Admin.cancel_message` / `cancel_message_key`,
    blocking: a cancelled message is never delivered (semantics.md §7.9)."""
    store = sync_store
    store.queue("jobs")
    producer = store.producer("jobs")
    admin = store.admin()
    a, b, c, d, e = producer.enqueue_batch(
        [{"n": n} for n in range(5)], dedup_keys=[None, None, "kc", "kd", "ke"]
    )
    assert producer.cancel(a) is True
    assert producer.cancel(a) is False  # archived already
    assert producer.cancel_key("kc") is True
    assert producer.cancel_key("kc") is False
    assert admin.cancel_message("jobs", b) is True
    assert admin.cancel_message_key("jobs", "ke") is True
    assert admin.cancel_message_key("jobs", "missing") is False
    consumer = store.consumer("jobs")
    assert [m.id for m in consumer.dequeue(10)] == [d]
    with pytest.raises(pgqrs.MessageLeasedError):
        producer.cancel(d)
    with pytest.raises(pgqrs.MessageLeasedError):
        admin.cancel_message_key("jobs", "kd")
    with pytest.raises(pgqrs.MessageNotFoundError):
        admin.cancel_message("jobs", 10**9)
    assert admin.queue_metrics("jobs").archived_messages == 4
    assert {store.get_messages().get(i).archived_at is not None for i in (a, b, c, e)} == {True}


def test_sync_api_queue_payload_limits(sync_store: pgqrs.sync.Store) -> None:
    """The payload limits of `Admin.create_queue` / `update_queue` / `queue_settings`,
    blocking, and the enqueues that apply them (semantics.md §7.6)."""
    store = sync_store
    admin = store.admin()
    default_read_ct = store.config.max_read_ct
    admin.create_queue(
        "small", max_payload_size_bytes=1000, max_string_length=8, max_object_depth=2
    )
    expected = pgqrs.QueueSettings("small", default_read_ct, 1000, 8, 2)
    assert admin.queue_settings("small") == expected
    with pytest.raises(pgqrs.ValidationError, match="8"):
        pgqrs.sync.produce(store, "small", {"s": "x" * 9})
    with pytest.raises(pgqrs.ValidationError, match="depth"):
        store.producer("small").enqueue({"a": {"b": {"c": 1}}})
    assert store.get_messages().count() == 0
    loosened = admin.update_queue("small", max_string_length=None)  # back to Config's
    assert loosened == pgqrs.QueueSettings("small", default_read_ct, 1000, None, 2)
    assert store.producer("small").enqueue({"s": "x" * 9}) > 0  # a new producer reads them now
    assert admin.update_queue("small", max_read_ct=2).max_read_ct == 2
    with pytest.raises(pgqrs.ValidationError, match="nothing to update"):
        admin.update_queue("small")


def test_sync_api_concurrency_limit_and_keys(sync_store: pgqrs.sync.Store) -> None:
    store = sync_store
    store.queue("jobs")
    admin = store.admin()
    [info] = admin.set_key_limits("jobs", "t1", max_in_flight=1)
    assert (info.key, info.max_in_flight) == ("t1", 1)
    admin.set_queue_limits("jobs", rate_per_second=100)
    producer = store.producer("jobs")
    producer.enqueue({"n": 1}, key="t1")
    producer.enqueue_batch([{"n": 2}, {"n": 3}], key="t1")
    pgqrs.sync.produce(store, "jobs", {"n": 4}, key="t1")
    pgqrs.sync.produce_batch(store, "jobs", [{"n": 5}], key="t2")
    claimed = store.consumer("jobs").dequeue(10)
    assert sorted(m.payload["n"] for m in claimed) == [1, 5]
    assert [(i.key, i.in_flight) for i in admin.queue_limits("jobs")] == [(None, 2), ("t1", 1)]
    assert [i.key for i in admin.set_key_limits("jobs", "t1")] == [None]  # removed


@pytest.mark.backends("sqlite", "postgres")
def test_sync_api_connection_commits_and_rolls_back_with_the_callers_transaction(
    sync_store: pgqrs.sync.Store, target: Target
) -> None:
    """`connection=` on every blocking enqueue (semantics.md §7.7): two threads at once, each
    with a blocking connection of its own (a sqlite3 one refuses any other thread: each call
    runs in its caller's). One commits, the other rolls back: only the first one's messages
    exist, and the module helpers registered no worker."""
    store = sync_store
    store.queue("jobs")
    pgqrs.sync.workflow().name("greet").store(store).create()
    producer = store.producer("jobs")
    workers = store.get_workers().count()
    start = threading.Barrier(2)

    def transaction(tag: str, commit: bool) -> list[int]:
        conn = blocking_connection(target)
        try:
            start.wait()
            ids = [
                producer.enqueue({"t": tag}, connection=conn, priority=1),
                producer.enqueue_delayed({"t": tag}, 3600, connection=conn),
                *producer.enqueue_batch([{"t": tag}], connection=conn, dedup_keys=[tag]),
                pgqrs.sync.enqueue(producer, {"t": tag}, connection=conn),
                *pgqrs.sync.enqueue_batch(producer, [{"t": tag}], connection=conn),
                pgqrs.sync.enqueue_delayed(producer, {"t": tag}, 3600, connection=conn),
                pgqrs.sync.produce(store, "jobs", {"t": tag}, connection=conn, dedup_key="p" + tag),
                *pgqrs.sync.produce_batch(store, "jobs", [{"t": tag}], connection=conn),
            ]
            trigger = pgqrs.sync.workflow().name("greet").store(store).trigger({"t": tag})
            ids.append(trigger.execute(connection=conn).id)
            if commit:
                conn.commit()
            else:
                conn.rollback()
            return ids
        finally:
            conn.close()

    with ThreadPoolExecutor(2) as pool:
        kept_ids = pool.submit(transaction, "kept", True)
        lost_ids = pool.submit(transaction, "lost", False)
        kept, lost = kept_ids.result(timeout=60), lost_ids.result(timeout=60)
    assert len(set(kept)) == len(kept) == 9
    messages = store.get_messages()
    assert messages.count() == 9
    found = {mid: messages.get(mid) for mid in kept}
    assert {m.payload["t"] for m in found.values()} == {"kept"}  # nothing of "lost"
    by_producer = [found[mid].producer_worker_id for mid in kept]
    assert by_producer == [producer.worker_id] * 6 + [None] * 3  # helpers: no producer
    assert store.get_workers().count() == workers
    assert len(lost) == 9  # each call answered before the rollback


@pytest.mark.backends("sqlite", "postgres")
def test_sync_api_connection_reads_the_store_through_the_portal(
    sync_store: pgqrs.sync.Store, target: Target
) -> None:
    """What a connection= call reads of the store runs on the portal, not in the calling
    thread: here a producer's stale payload limits, read again (semantics.md §7.6), and the
    new limit refuses the payload its old one allowed."""
    store = sync_store
    admin = store.admin()
    admin.create_queue("jobs")
    producer = store.producer("jobs")
    producer.enqueue({"s": "x" * 9})  # reads the queue's limits (none: Config's)
    admin.update_queue("jobs", max_string_length=8)
    conn = blocking_connection(target)
    try:
        producer.enqueue({"s": "x" * 9}, connection=conn)  # the limits read above still hold

        async def later(s: pgqrs.Store) -> None:  # time injected: past the refresh interval
            s.clock = OffsetClock((LIMITS_REFRESH + timedelta(seconds=1)).total_seconds())

        store.call(later)
        with pytest.raises(pgqrs.ValidationError, match="8"):
            producer.enqueue({"s": "x" * 9}, connection=conn)
        with pytest.raises(pgqrs.ValidationError, match="8"):
            pgqrs.sync.produce(store, "jobs", {"s": "x" * 9}, connection=conn)
        conn.commit()
    finally:
        conn.close()
    assert store.get_messages().count() == 2


@pytest.mark.backends("sqlite", "postgres")
def test_sync_api_connection_refusals(sync_store: pgqrs.sync.Store, target: Target) -> None:
    """A connection= call is refused where a portal call is (a closed store, the store's own
    loop) and for an async connection, which the calling thread runs no loop for."""
    store = sync_store
    store.queue("jobs")
    producer = store.producer("jobs")
    conn = blocking_connection(target)
    try:
        with pytest.raises(pgqrs.ValidationError, match="connection= takes"):
            producer.enqueue({}, connection=object())
        with pytest.raises(pgqrs.ValidationError, match="await the async API"):
            pgqrs.sync.produce(store, "jobs", {}, connection=_AsyncConnection())

        async def nested(_: pgqrs.Store) -> int:  # on the portal's own loop
            return producer.enqueue({}, connection=conn)

        with pytest.raises(RuntimeError, match="own store's event loop"):
            store.call(nested)
        store.close()
        with pytest.raises(pgqrs.PgqrsError, match="Store is closed"):
            producer.enqueue({}, connection=conn)
        conn.rollback()
    finally:
        conn.close()


class _AsyncConnection:
    """Shaped like an async driver connection (its `execute` is a coroutine function)."""

    async def execute(self, sql: str) -> None:
        raise AssertionError("never called")


class Interrupted(Exception):
    """What the test's signal handler raises in the thread blocked in a sync call."""


def test_sync_api_timeouts_and_interrupts_leave_the_portal_usable(
    sync_store: pgqrs.sync.Store,
) -> None:
    store = sync_store
    pgqrs.sync.workflow().name("greet").store(store).create()
    trigger = pgqrs.sync.workflow().name("greet").store(store).trigger({"who": "x"}).execute()
    outcome = pgqrs.sync.run().message(trigger).store(store)
    for _ in range(3):  # a timeout ends the call on the loop: the next call runs at once
        with pytest.raises(pgqrs.TimeoutError):
            outcome.result(timeout=0.02)
    assert outcome.get() is None

    # A wait interrupted in the calling thread (a signal handler raising, as SIGINT does)
    # cancels its call on the loop instead of leaving it running there.
    portal = store._portal
    main = threading.main_thread().ident
    assert main == threading.get_ident()

    def interrupt_once_waiting() -> None:
        wait_for(lambda: len(portal._running) == 1)
        signal.pthread_kill(main, signal.SIGUSR1)

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        helper = threading.Thread(target=interrupt_once_waiting)
        helper.start()
        with pytest.raises(Interrupted):
            outcome.result()  # no timeout: only the interrupt ends the wait
        helper.join()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    wait_for(lambda: not portal._running)  # the call ended on the loop (cancelled)
    assert one_workflow_delivery(store, "greet") == 1
    assert outcome.result(timeout=10) == {"hello": "x"}


def test_sync_api_many_threads_share_one_producer_per_queue(
    sync_store: pgqrs.sync.Store, target: Target
) -> None:
    store = sync_store
    queues = ("a", "b")
    with pytest.raises(pgqrs.QueueNotFoundError):  # a failed first use registers nothing
        pgqrs.sync.produce(store, "a", {})
    for name in queues:
        store.queue(name)
    threads = 8
    start = threading.Barrier(threads)

    def work(n: int) -> list[int]:
        start.wait()  # every thread's first enqueue races for the registration
        return [pgqrs.sync.produce(store, queues[i % 2], {"i": i}) for i in range(n, 100, threads)]

    with ThreadPoolExecutor(threads) as pool:
        ids = [mid for done in pool.map(work, range(threads)) for mid in done]
    assert len(set(ids)) == 100
    messages = store.get_messages()
    # One shared producer per queue, with no worker row (semantics.md §9.5).
    assert {messages.get(mid).producer_worker_id for mid in ids} == {None}
    assert {name: workers_of(store, name) for name in queues} == {"a": [], "b": []}

    store.close()
    with pgqrs.sync.connect_with(target.config()) as reopened:
        assert reopened.admin().list_workers() == []
        assert reopened.get_messages().count() == 100


@pytest.mark.backends("sqlite")
def test_sync_api_sqlite_runs_on_the_portal_thread_and_waits_for_other_writers(
    target: Target,
) -> None:
    """A sync SQLite store adds one thread (its portal's), not a thread per connection, and
    its statements still queue on SQLite's busy timeout behind another writer."""
    before = set(threading.enumerate())
    with pgqrs.sync.connect_with(target.config()) as store:
        store.admin().install()
        store.queue("jobs")
        added = [t.name for t in threading.enumerate() if t not in before]
        # (Other tests' threads may come and go meanwhile: only the store's own are looked at.)
        assert "pgqrs-sync" in added
        assert not [name for name in added if name.startswith("pgqrs-sqlite")]

        path = target.dsn.removeprefix("sqlite://")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the file's write lock
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(pgqrs.sync.produce, store, "jobs", {"n": 1})
            time.sleep(0.2)  # the enqueue is left waiting on the lock meanwhile
            assert not waiting.done()
            holder.execute("ROLLBACK")
            mid = waiting.result(timeout=10)
        holder.close()
        assert store.get_messages().get(mid).payload == {"n": 1}


def test_sync_api_close(target: Target) -> None:
    store = pgqrs.sync.connect_with(target.config())
    thread = store._portal._thread
    with store:
        store.admin().install()
        store.queue("jobs")
        pgqrs.sync.produce(store, "jobs", {})
        assert thread.is_alive()
    assert not thread.is_alive()
    with pytest.raises(pgqrs.PgqrsError, match="Store is closed"):
        store.get_queue("jobs")
    with pytest.raises(pgqrs.PgqrsError, match="Store is closed"):
        pgqrs.sync.produce(store, "jobs", {})
    store.close()  # idempotent


def test_sync_api_close_while_other_threads_call(target: Target) -> None:
    """Calls racing with close() end, each enqueued or refused with "Store is closed": none
    waits forever, and the store's producer is stopped whatever the race."""
    store = pgqrs.sync.connect_with(target.config())
    store.admin().install()
    store.queue("jobs")
    pgqrs.sync.produce(store, "jobs", {})  # the producer exists before the race
    running = threading.Barrier(5)

    def keep_producing() -> tuple[int, str]:
        done = 0
        running.wait()
        while True:
            try:
                pgqrs.sync.produce(store, "jobs", {})
            except pgqrs.PgqrsError as err:
                return done, str(err)
            done += 1

    with ThreadPoolExecutor(4) as pool:
        outcomes = [pool.submit(keep_producing) for _ in range(4)]
        running.wait()
        store.close()
        ended = [outcome.result(timeout=30) for outcome in outcomes]
    assert {error for _, error in ended} == {"Store is closed"}
    with pgqrs.sync.connect_with(target.config()) as reopened:
        assert workers_of(reopened, "jobs") == []
        # A call cut by the close may have written before it was: at most one per thread.
        enqueued = 1 + sum(done for done, _ in ended)
        assert enqueued <= reopened.get_messages().count() <= enqueued + len(ended)


async def test_sync_api_from_inside_a_running_event_loop(
    store: pgqrs.Store, target: Target
) -> None:
    # This coroutine's loop is blocked while each sync call runs on the portal's loop.
    sync = pgqrs.sync.connect_with(target.config())
    try:
        sync.queue("jobs")
        mid = pgqrs.sync.produce(sync, "jobs", {"n": 1})
        assert (await (await store.get_messages()).get(mid)).payload == {"n": 1}

        async def nested(_: pgqrs.Store) -> int:  # on the portal's own loop
            return pgqrs.sync.produce(sync, "jobs", {"n": 2})

        with pytest.raises(RuntimeError, match="own store's event loop"):
            sync.call(nested)
        assert sync.get_messages().count() == 1
    finally:
        sync.close()


@pytest.mark.parametrize("mode", ["exit", "collected"])
def test_sync_api_unclosed_store_does_not_hang_exit(
    sync_store: pgqrs.sync.Store, target: Target, mode: str
) -> None:
    sync_store.queue("jobs")
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.sync_child", mode, "jobs"],
        cwd=ROOT,
        env={**os.environ, **target.env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert time.monotonic() - started < 30
    printed = child.stdout.split()
    assert printed[1:] == ([] if mode == "exit" else ["stopped"])
    assert sync_store.get_messages().get(int(printed[0])).payload == {"from": mode}
    # Its produce left no worker row behind (semantics.md §9.5).
    assert workers_of(sync_store, "jobs") == []


def test_sync_api_is_an_attribute_of_pgqrs_imported_on_first_use() -> None:
    """`pgqrs.sync` without `import pgqrs.sync`, and `import pgqrs` does not pay for it."""
    code = (
        "import sys, pgqrs\n"
        "assert 'pgqrs.sync' not in sys.modules\n"
        "assert pgqrs.sync.connect is sys.modules['pgqrs.sync'].connect\n"
        "try:\n    pgqrs.no_such_name\nexcept AttributeError:\n    pass\n"
        "else:\n    raise SystemExit('no AttributeError')\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr


def test_sync_api_refusals_without_a_store() -> None:
    """Argument checks are the library's own, raised at once in the calling thread."""
    before = sum(t.name == "pgqrs-sync" for t in threading.enumerate())
    with pytest.raises(pgqrs.ConfigError):
        pgqrs.sync.connect("nope://somewhere")
    with pytest.raises(TypeError, match=r"pgqrs\.Config"):
        pgqrs.sync.connect_with("sqlite://x.db")  # type: ignore[arg-type]
    assert sum(t.name == "pgqrs-sync" for t in threading.enumerate()) == before
    with pytest.raises(TypeError, match="no public constructor"):
        pgqrs.sync.Store()
    with pytest.raises(TypeError, match=r"pgqrs\.sync\.Store"):
        pgqrs.sync.admin(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"pgqrs\.sync\.Store"):
        pgqrs.sync.workflow().store(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"pgqrs\.sync\.Producer"):
        pgqrs.sync.enqueue(object(), {})  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="store is required"):
        pgqrs.sync.workflow().name("greet").create()
    with pytest.raises(ValueError, match="store is required"):
        pgqrs.sync.workflow().name("greet").trigger({}).execute()
    with pytest.raises(pgqrs.ValidationError, match="store is required"):
        pgqrs.sync.run().result(timeout=1)
    with pytest.raises(pgqrs.SerializationError):
        pgqrs.sync.workflow().trigger(float("nan"))
