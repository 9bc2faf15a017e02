"""Enqueue inside the caller's transaction (`connection=`): the message exists if and only if
the application's transaction commits (semantics.md §7.7).

Real connections of every kind the library accepts: psycopg (async and blocking) on the test's
PostgreSQL schema, sqlite3 on the store's file, SQLAlchemy engines over both.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy
from sqlalchemy.ext.asyncio import create_async_engine

import pgqrs
from tests.support.target import StoreFactory, Target
from tests.support.waiting import HOUR_MS, wait_until_polling

pytestmark = pytest.mark.backends("sqlite", "postgres")


def _path(target: Target) -> str:
    return target.dsn.removeprefix("sqlite://")


@pytest.fixture
def blocking(target: Target) -> Iterator[Any]:
    """A blocking connection of the application's own: psycopg or sqlite3, not autocommit."""
    if target.backend == "postgres":
        conn: Any = psycopg.connect(target.dsn)
    else:
        conn = sqlite3.connect(_path(target))
    yield conn
    conn.close()


@pytest.fixture
async def async_pg(target: Target) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(target.dsn)
    yield conn
    await conn.close()


async def _live(store: pgqrs.Store) -> int:
    return await (await store.get_messages()).count()


async def _workers(store: pgqrs.Store) -> int:
    return len(await (await store.get_workers()).list())


async def test_transactional_enqueue_commits_with_the_callers_transaction(
    store: pgqrs.Store, queue: str, blocking: Any
) -> None:
    producer = await store.producer(queue)
    message_id = await producer.enqueue({"order": 42}, connection=blocking)
    assert await _live(store) == 0  # not committed: no other connection sees it
    blocking.commit()
    consumer = await store.consumer(queue)
    [message] = await consumer.dequeue()
    assert (message.id, message.payload) == (message_id, {"order": 42})
    assert message.producer_worker_id == producer.worker_id


async def test_transactional_rollback_leaves_no_message_and_no_worker_row(
    store: pgqrs.Store, queue: str, blocking: Any
) -> None:
    producer = await store.producer(queue)
    workers = await _workers(store)
    await producer.enqueue({"a": 1}, connection=blocking)
    await producer.enqueue_batch([{"b": 1}, {"b": 2}], connection=blocking)
    await producer.enqueue_delayed({"c": 1}, 5, connection=blocking)
    await pgqrs.produce(store, queue, {"d": 1}, connection=blocking)
    await pgqrs.produce_batch(store, queue, [{"e": 1}], connection=blocking)
    blocking.rollback()
    assert await _live(store) == 0
    assert await _workers(store) == workers  # the helpers registered nobody


async def test_transactional_module_helpers_write_no_worker_row(
    store: pgqrs.Store, queue: str, blocking: Any
) -> None:
    [first] = await pgqrs.produce_batch(store, queue, [{"n": 1}], connection=blocking)
    second = await pgqrs.produce(store, queue, {"n": 2}, connection=blocking)
    blocking.commit()
    assert await _workers(store) == 0
    consumer = await store.consumer(queue)
    got = await consumer.dequeue(batch_size=10)
    assert [(m.id, m.producer_worker_id) for m in got] == [(first, None), (second, None)]


async def test_transactional_batch_and_delay_keep_their_meaning(
    store: pgqrs.Store, queue: str, blocking: Any
) -> None:
    producer = await store.producer(queue)
    ids = await producer.enqueue_batch([{"i": i} for i in range(3)], connection=blocking)
    delayed = await producer.enqueue_delayed({"later": True}, 3600, connection=blocking)
    blocking.commit()
    consumer = await store.consumer(queue)
    got = await consumer.dequeue(batch_size=10)
    assert [m.id for m in got] == ids  # in order; the delayed one is not visible yet
    assert delayed not in ids


@pytest.mark.backends("postgres")
async def test_transactional_enqueue_on_an_async_psycopg_connection(
    store: pgqrs.Store, queue: str, async_pg: psycopg.AsyncConnection[Any]
) -> None:
    producer = await store.producer(queue)
    async with async_pg.transaction():
        kept = await producer.enqueue({"kept": True}, connection=async_pg)

    async def fails_after_enqueue() -> None:
        async with async_pg.transaction():
            await producer.enqueue({"kept": False}, connection=async_pg)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await fails_after_enqueue()
    consumer = await store.consumer(queue)
    assert [m.id for m in await consumer.dequeue(batch_size=10)] == [kept]


@pytest.mark.backends("postgres")
async def test_transactional_commit_wakes_an_idle_consumer_of_another_store(
    make_store: StoreFactory, store: pgqrs.Store, queue: str, async_pg: psycopg.AsyncConnection[Any]
) -> None:
    """NOTIFY is part of the statement, so it is sent when the application commits: an idle
    poll loop of another store (poll interval one hour) gets the message at once."""
    other = await make_store()
    got: list[Any] = []
    handled = asyncio.Event()

    def handler(message: pgqrs.QueueMessage) -> None:
        got.append(message.payload)
        handled.set()

    consumer = await other.consumer(queue)
    builder = pgqrs.dequeue().worker(consumer).poll_interval(HOUR_MS).handle(handler)
    task = asyncio.create_task(builder.poll(other))
    await wait_until_polling(consumer)
    producer = await store.producer(queue)
    async with async_pg.transaction():
        await producer.enqueue({"n": "rolled back"}, connection=async_pg)
        raise psycopg.Rollback()
    async with async_pg.transaction():
        await producer.enqueue({"n": "committed"}, connection=async_pg)
    await asyncio.wait_for(handled.wait(), 10)
    assert got == [{"n": "committed"}]
    await consumer.interrupt()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task, 10)


async def test_transactional_enqueue_through_a_sqlalchemy_engine(
    store: pgqrs.Store, queue: str, target: Target
) -> None:
    producer = await store.producer(queue)
    if target.backend == "postgres":
        url = target.dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        url = f"sqlite:///{_path(target)}"
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as conn:
        with conn.begin():
            kept = await producer.enqueue({"kept": True}, connection=conn)
        trans = conn.begin()
        await producer.enqueue({"kept": False}, connection=conn)
        trans.rollback()
    engine.dispose()
    consumer = await store.consumer(queue)
    assert [m.id for m in await consumer.dequeue(batch_size=10)] == [kept]


@pytest.mark.backends("postgres")
async def test_transactional_enqueue_through_a_sqlalchemy_async_engine(
    store: pgqrs.Store, queue: str, target: Target
) -> None:
    producer = await store.producer(queue)
    url = target.dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        async with conn.begin():
            kept = await producer.enqueue({"kept": True}, connection=conn)
        trans = await conn.begin()
        await producer.enqueue({"kept": False}, connection=conn)
        await trans.rollback()
    await engine.dispose()
    consumer = await store.consumer(queue)
    assert [m.id for m in await consumer.dequeue(batch_size=10)] == [kept]


async def test_transactional_workflow_trigger(store: pgqrs.Store, blocking: Any) -> None:
    await pgqrs.workflow().name("wf").store(store).create()
    trigger = pgqrs.workflow().name("wf").store(store).trigger({"x": 1})
    message = await trigger.execute(connection=blocking)
    assert message.payload == {"x": 1}
    blocking.rollback()
    assert await _live(store) == 0
    message = await trigger.execute(connection=blocking)
    blocking.commit()
    assert await _live(store) == 1
    assert await _workers(store) == 0  # a trigger in a transaction registers no producer


async def test_transactional_refuses_what_it_cannot_use_before_any_write(
    store: pgqrs.Store, queue: str, target: Target, tmp_path: Any
) -> None:
    producer = await store.producer(queue)
    with pytest.raises(pgqrs.ValidationError, match="connection= takes"):
        await producer.enqueue({"a": 1}, connection=object())
    if target.backend == "sqlite":
        elsewhere = sqlite3.connect(tmp_path / "other.db")
        with pytest.raises(pgqrs.ValidationError, match="store's file"):
            await producer.enqueue({"a": 1}, connection=elsewhere)
        elsewhere.close()
    else:
        wrong = sqlite3.connect(":memory:")
        with pytest.raises(pgqrs.ValidationError, match="for a postgres store"):
            await producer.enqueue({"a": 1}, connection=wrong)
        wrong.close()
    assert await _live(store) == 0


@pytest.mark.backends("turso", "s3")
async def test_transactional_is_refused_on_backends_without_a_shared_connection(
    store: pgqrs.Store, queue: str, tmp_path: Any
) -> None:
    producer = await store.producer(queue)
    conn = sqlite3.connect(tmp_path / "x.db")
    with pytest.raises(pgqrs.ValidationError, match="connection= takes"):
        await producer.enqueue({"a": 1}, connection=conn)
    conn.close()


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_transactional_dedup_key_waits_for_the_transaction_that_holds_it(
    store: pgqrs.Store, queue: str, blocking: Any, outcome: str
) -> None:
    """A key enqueued in an open transaction is decided by that transaction: a second enqueue
    of the key waits for it, then is a duplicate (commit) or the new holder (rollback)."""
    producer = await store.producer(queue)
    first = await producer.enqueue({"n": 1}, dedup_key="order-42", priority=3, connection=blocking)
    second = asyncio.create_task(producer.enqueue({"n": 2}, dedup_key="order-42"))
    await asyncio.sleep(0.05)  # let it reach the database and wait there
    assert not second.done()
    blocking.commit() if outcome == "commit" else blocking.rollback()
    got = await asyncio.wait_for(second, 10)
    if outcome == "commit":
        assert (got, got.duplicate) == (first, True)
    else:
        assert not got.duplicate
    consumer = await store.consumer(queue)
    [message] = await consumer.dequeue(batch_size=10)
    assert message.payload == ({"n": 1} if outcome == "commit" else {"n": 2})
