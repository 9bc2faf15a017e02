"""Many consumers draining one queue for real: every message handled and archived exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

import pgqrs
from tests.support.process import consumer_processes
from tests.support.target import StoreFactory, Target

MESSAGES = 2000
CONSUMERS = 4
BATCH = 10


async def assert_all_archived_once(store: pgqrs.Store, ids: list[int], handled: list[int]) -> None:
    counts = Counter(handled)
    assert sorted(counts) == ids, "a message was lost"
    assert max(counts.values()) == 1, "a message was handled twice"
    messages = await store.get_messages()
    assert await messages.count() == 0, "a message was left unarchived"
    queue_id = (await store.get_queue("jobs")).id
    assert len(await messages.list_archived_by_queue(queue_id)) == len(ids)


# Not on S3: an S3 object has one writer (semantics.md §16); several stores draining it concurrently
# are several writers, and all but one get sync conflicts by design.
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_four_consumers_in_one_process(
    store: pgqrs.Store, queue: str, make_store: StoreFactory
) -> None:
    producer = await store.producer(queue)
    ids: list[int] = []
    for start in range(0, MESSAGES, 500):
        ids += await producer.enqueue_batch([{"n": n} for n in range(start, start + 500)])
    handled: list[int] = []
    drained = asyncio.Event()

    async def handle(messages: list[pgqrs.QueueMessage]) -> None:
        handled.extend(m.id for m in messages)
        await asyncio.sleep(0)  # let the other consumers interleave
        if len(handled) >= MESSAGES:
            drained.set()

    # One store per consumer: separate connections, as separate workers would have.
    consumers = []
    tasks = []
    for _ in range(CONSUMERS):
        own = await make_store()
        consumer = await own.consumer(queue)
        consumers.append(consumer)
        builder = pgqrs.dequeue().worker(consumer).batch(BATCH).poll_interval(10)
        tasks.append(asyncio.create_task(builder.handle_batch(handle).poll(own)))
    await asyncio.wait_for(drained.wait(), 60)
    for consumer, task in zip(consumers, tasks, strict=True):
        await consumer.interrupt()
        with pytest.raises(pgqrs.SuspendedError):
            await asyncio.wait_for(task, 10)
    await assert_all_archived_once(store, ids, handled)
    per_worker = Counter(
        m.consumer_worker_id
        for m in await (await store.get_messages()).list_archived_by_queue(
            (await store.get_queue(queue)).id
        )
    )
    assert len(per_worker) == CONSUMERS, "every consumer should have taken a share"


@pytest.mark.slow
# Not on S3: an S3 object has one writer (semantics.md §16); several stores draining it concurrently
# are several writers, and all but one get sync conflicts by design.
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_four_consumer_processes(
    store: pgqrs.Store, queue: str, target: Target, tmp_path: Path
) -> None:
    producer = await store.producer(queue)
    ids = await producer.enqueue_batch([{"n": n} for n in range(MESSAGES)])
    log = tmp_path / "handled.log"
    args = (queue, str(BATCH), str(log))
    async with consumer_processes(store, target.env(), 4, *args) as worker_ids:
        messages = await store.get_messages()
        deadline = asyncio.get_running_loop().time() + 60
        while await messages.count() > 0:
            assert asyncio.get_running_loop().time() < deadline, "the queue did not drain"
            await asyncio.sleep(0.05)
    handled = [int(line) for line in log.read_text().split()]
    await assert_all_archived_once(store, ids, handled)
    for worker_id in worker_ids:
        assert (
            await (await store.get_workers()).get(worker_id)
        ).status == pgqrs.WorkerStatus.Suspended
