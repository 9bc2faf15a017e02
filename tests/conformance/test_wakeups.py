"""Idle poll loops wake up when work arrives, long before their poll interval ends.

In one process, an enqueue wakes the loops polling its queue, in any store of the same
database (every backend). On PostgreSQL an enqueue from another process wakes them too,
through LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio

import pytest

import pgqrs
from tests.support.process import spawn
from tests.support.target import StoreFactory, Target, pg_admin
from tests.support.waiting import HOUR_MS, wait_until_polling


async def run_until_handled(
    consumer_store: pgqrs.Store, consumer: pgqrs.Consumer, producer: pgqrs.Producer
) -> None:
    handled = asyncio.Event()
    builder = (
        pgqrs.dequeue().worker(consumer).poll_interval(HOUR_MS).handle(lambda m: handled.set())
    )
    task = asyncio.create_task(builder.poll(consumer_store))
    await wait_until_polling(consumer)
    await asyncio.sleep(0.05)  # let the loop settle into its (hour-long) idle wait
    await producer.enqueue({"wake": "up"})
    await asyncio.wait_for(handled.wait(), 10)
    await consumer.interrupt()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task, 10)


async def test_an_enqueue_wakes_a_loop_of_the_same_store(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    await run_until_handled(store, consumer, await store.producer(queue))


async def test_an_enqueue_from_another_store_wakes_the_loop(
    store: pgqrs.Store, queue: str, make_store: StoreFactory
) -> None:
    other = await make_store()
    consumer = await other.consumer(queue)
    await run_until_handled(other, consumer, await store.producer(queue))


@pytest.mark.backends("postgres")
async def test_an_enqueue_wakes_the_loop_in_a_schema_with_a_long_name(
    target: Target, make_store: StoreFactory
) -> None:
    """`pgqrs.<schema>` is longer than a channel name may be for a 63-character schema: the
    enqueue failed outright; now both sides use the same shortened channel."""
    schema = (target.schema + "_" + "w" * 63)[:63]
    try:
        store = await make_store(schema=schema)
        await pgqrs.admin(store).install()
        await store.queue("q")
        other = await make_store(schema=schema)
        consumer = await other.consumer("q")
        await run_until_handled(other, consumer, await store.producer("q"))
    finally:
        with pg_admin() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.backends("postgres")
async def test_a_batch_from_another_process_wakes_the_loop(
    store: pgqrs.Store, queue: str, target: Target
) -> None:
    other = store
    consumer = await other.consumer(queue)
    seen: list[int] = []
    done = asyncio.Event()

    def handle(messages: list[pgqrs.QueueMessage]) -> None:
        seen.extend(m.id for m in messages)
        if len(seen) == 3:
            done.set()

    builder = pgqrs.dequeue().worker(consumer).batch(3).poll_interval(HOUR_MS).handle_batch(handle)
    task = asyncio.create_task(builder.poll(other))
    await wait_until_polling(consumer)
    await asyncio.sleep(0.05)
    child = spawn("enqueue_child", target.env(), queue, "1", "2", "3")
    out, err = await asyncio.to_thread(child.communicate, None, 20)
    assert child.returncode == 0, err
    ids = [int(i) for i in out.split()]
    await asyncio.wait_for(done.wait(), 10)
    assert sorted(seen) == ids
    await consumer.interrupt()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task, 10)
