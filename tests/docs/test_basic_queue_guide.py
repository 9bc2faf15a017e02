"""The basic-queue guide's three patterns, with its Python snippets as written.

The guide assumes `store` (connected and bootstrapped) and `producer`/`consumer` (or
`consumer_a`/`consumer_b`) already exist, and a `handle_batch` coroutine; the fixtures below
provide exactly those names. The Rust snippets assert the same outcomes, which the checks after
each snippet add.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

import pgqrs


@pytest.fixture
async def producer(store: pgqrs.Store, queue: str) -> pgqrs.Producer:
    return await store.producer(queue)


@pytest.fixture
async def consumer(store: pgqrs.Store, queue: str) -> pgqrs.Consumer:
    return await store.consumer(queue)


@pytest.fixture
async def consumer_a(store: pgqrs.Store, queue: str) -> pgqrs.Consumer:
    return await store.consumer(queue)


@pytest.fixture
async def consumer_b(store: pgqrs.Store, queue: str) -> pgqrs.Consumer:
    return await store.consumer(queue)


async def handle_batch(msgs: list[pgqrs.QueueMessage]) -> None:
    return None


async def test_single_consumer_poll_and_interrupt(
    store: pgqrs.Store, producer: pgqrs.Producer, consumer: pgqrs.Consumer
) -> None:
    await producer.enqueue({"job": 1})

    async def handle(msg: pgqrs.QueueMessage) -> None:
        return None

    # -- as in the guide (Step 3, in Python) ----------------------------------------------
    consumer_task = asyncio.create_task(
        pgqrs.dequeue().worker(consumer).batch(1).handle(handle).poll(store)
    )

    await consumer.interrupt()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(consumer_task, timeout=15)
    assert await consumer.status() == pgqrs.WorkerStatus.Suspended
    # ---------------------------------------------------------------------------------------


async def test_handoff_between_consumers(
    store: pgqrs.Store,
    producer: pgqrs.Producer,
    consumer_a: pgqrs.Consumer,
    consumer_b: pgqrs.Consumer,
) -> None:
    # -- as in the guide ("Handoff Between Consumers") ---------------------------------------
    task_a = asyncio.create_task(
        pgqrs.dequeue().worker(consumer_a).batch(5).handle_batch(handle_batch).poll(store)
    )

    await consumer_a.interrupt()
    with pytest.raises(Exception):  # noqa: B017 - the guide's own assertion
        await asyncio.wait_for(task_a, timeout=5)

    task_b = asyncio.create_task(
        pgqrs.dequeue().worker(consumer_b).batch(5).handle_batch(handle_batch).poll(store)
    )

    await consumer_b.interrupt()
    with pytest.raises(Exception):  # noqa: B017
        await asyncio.wait_for(task_b, timeout=5)
    # ---------------------------------------------------------------------------------------
    # What the Rust snippets assert: both ended with Suspended and are suspended.
    assert isinstance(task_a.exception(), pgqrs.SuspendedError)
    assert isinstance(task_b.exception(), pgqrs.SuspendedError)
    assert await consumer_a.status() == pgqrs.WorkerStatus.Suspended
    assert await consumer_b.status() == pgqrs.WorkerStatus.Suspended


async def test_handoff_moves_the_next_message_to_b(
    store: pgqrs.Store,
    producer: pgqrs.Producer,
    consumer_a: pgqrs.Consumer,
    consumer_b: pgqrs.Consumer,
) -> None:
    """The guide's prose: A processes one message, is interrupted, and B claims the next."""
    handled: dict[str, list[int]] = {"a": [], "b": []}
    first_done, second_done = asyncio.Event(), asyncio.Event()

    def recorder(
        name: str, done: asyncio.Event
    ) -> Callable[[list[pgqrs.QueueMessage]], Awaitable[None]]:
        async def handle(msgs: list[pgqrs.QueueMessage]) -> None:
            handled[name].extend(m.id for m in msgs)
            done.set()

        return handle

    first = await producer.enqueue({"n": 1})
    task_a = asyncio.create_task(
        pgqrs.dequeue()
        .worker(consumer_a)
        .batch(5)
        .handle_batch(recorder("a", first_done))
        .poll(store)
    )
    await asyncio.wait_for(first_done.wait(), 5)
    await consumer_a.interrupt()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task_a, timeout=5)

    second = await producer.enqueue({"n": 2})
    task_b = asyncio.create_task(
        pgqrs.dequeue()
        .worker(consumer_b)
        .batch(5)
        .handle_batch(recorder("b", second_done))
        .poll(store)
    )
    await asyncio.wait_for(second_done.wait(), 5)
    await consumer_b.interrupt()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task_b, timeout=5)

    assert handled == {"a": [first], "b": [second]}
    archived = await (await store.get_messages()).get(second)
    assert archived.consumer_worker_id == consumer_b.worker_id
    assert archived.archived_at is not None


async def test_two_consumers_processing_continuously(
    store: pgqrs.Store,
    producer: pgqrs.Producer,
    consumer_a: pgqrs.Consumer,
    consumer_b: pgqrs.Consumer,
) -> None:
    await producer.enqueue_batch([{"n": i} for i in range(20)])

    # -- as in the guide ("Two Consumers Processing Continuously") ------------------------
    task_a = asyncio.create_task(
        pgqrs.dequeue().worker(consumer_a).batch(10).handle_batch(handle_batch).poll(store)
    )
    task_b = asyncio.create_task(
        pgqrs.dequeue().worker(consumer_b).batch(10).handle_batch(handle_batch).poll(store)
    )

    try:
        await consumer_a.interrupt()
    except pgqrs.StateTransitionError:
        pass
    try:
        await consumer_b.interrupt()
    except pgqrs.StateTransitionError:
        pass

    with pytest.raises(Exception):  # noqa: B017
        await asyncio.wait_for(task_a, timeout=5)
    with pytest.raises(Exception):  # noqa: B017
        await asyncio.wait_for(task_b, timeout=5)

    assert await consumer_a.status() == "SUSPENDED"
    assert await consumer_b.status() == "SUSPENDED"
    # ---------------------------------------------------------------------------------------
    assert isinstance(task_a.exception(), pgqrs.SuspendedError)
    assert isinstance(task_b.exception(), pgqrs.SuspendedError)
    # Nothing is left leased: whatever was claimed was archived or released on the way out.
    for message_id in range(1, 21):
        message = await (await store.get_messages()).get(message_id)
        assert message.archived_at is not None or message.consumer_worker_id is None


async def test_two_consumers_drain_the_queue_until_interrupted(
    store: pgqrs.Store,
    producer: pgqrs.Producer,
    consumer_a: pgqrs.Consumer,
    consumer_b: pgqrs.Consumer,
) -> None:
    """The guide's prose: both consumers drain the queue until interrupted."""
    ids = await producer.enqueue_batch([{"n": i} for i in range(200)])
    seen: list[int] = []
    drained = asyncio.Event()

    async def handle(msgs: list[pgqrs.QueueMessage]) -> None:
        seen.extend(m.id for m in msgs)
        if len(seen) >= len(ids):
            drained.set()

    tasks = [
        asyncio.create_task(pgqrs.dequeue().worker(c).batch(10).handle_batch(handle).poll(store))
        for c in (consumer_a, consumer_b)
    ]
    await asyncio.wait_for(drained.wait(), 10)
    for c, task in zip((consumer_a, consumer_b), tasks, strict=True):
        await c.interrupt()
        with pytest.raises(pgqrs.SuspendedError):
            await asyncio.wait_for(task, 5)
    assert sorted(seen) == ids
    assert await (await store.get_messages()).count() == 0
