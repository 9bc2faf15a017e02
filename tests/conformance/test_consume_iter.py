"""`store.consume_iter(queue)`: an async iterator with its own ephemeral consumer
(semantics.md §10.7)."""

from __future__ import annotations

import asyncio

import pytest

import pgqrs


async def test_iterates_and_settles(store: pgqrs.Store, queue: str) -> None:
    ids = await pgqrs.produce_batch(store, queue, ["a", "b", "c", "d"])
    iterator = store.consume_iter(queue, poll_interval_ms=10)
    assert iterator.worker_id is None
    settled: dict[str, bool] = {}
    async with iterator as messages:
        async for message in messages:
            assert message.consumer_worker_id == iterator.worker_id
            if message.payload == "a":
                settled["a"] = await iterator.archive(message.id)
            elif message.payload == "b":
                settled["b"] = await iterator.delete(message.id)
            elif message.payload == "c":
                settled["c"] = await iterator.extend_vt(message.id, 30)
            else:
                settled["d"] = await iterator.release(message.id)
                break
    assert settled == {"a": True, "b": True, "c": True, "d": True}
    rows = await store.get_messages()
    assert (await rows.get(ids[0])).archived_at is not None
    with pytest.raises(pgqrs.MessageNotFoundError):
        await rows.get(ids[1])
    # close() released what was still held ("c") and stopped the worker.
    assert (await rows.get(ids[2])).consumer_worker_id is None
    assert (await rows.get(ids[3])).consumer_worker_id is None
    worker = await (await store.get_workers()).get(iterator.worker_id or 0)
    assert worker.status == pgqrs.WorkerStatus.Stopped
    assert worker.name.startswith("__ephemeral__")


async def test_waits_for_the_next_message(store: pgqrs.Store, queue: str) -> None:
    iterator = store.consume_iter(queue, poll_interval_ms=5)
    waiting = asyncio.create_task(iterator.__anext__())
    mid = await pgqrs.produce(store, queue, "late")
    message = await asyncio.wait_for(waiting, 10)
    assert message.id == mid
    assert await iterator.archive(mid) is True
    await iterator.close()
    await iterator.close()  # idempotent
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


async def test_close_ends_a_waiting_iteration(store: pgqrs.Store, queue: str) -> None:
    iterator = store.consume_iter(queue)
    waiting = asyncio.create_task(iterator.__anext__())
    while iterator.worker_id is None:
        await asyncio.sleep(0.005)
    await iterator.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 10)


async def test_errors_before_the_first_message(store: pgqrs.Store, queue: str) -> None:
    iterator = store.consume_iter(queue)
    for call in (iterator.archive(1), iterator.delete(1), iterator.release(1)):
        with pytest.raises(pgqrs.PgqrsError, match="Consumer not initialized"):
            await call
    with pytest.raises(pgqrs.PgqrsError, match="Consumer not initialized"):
        await iterator.extend_vt(1, 5)
    with pytest.raises(ValueError):
        store.consume_iter(queue, poll_interval_ms=0)
    missing = store.consume_iter("missing")
    with pytest.raises(pgqrs.QueueNotFoundError):
        await missing.__anext__()


async def test_aexit_never_suppresses(store: pgqrs.Store, queue: str) -> None:
    await pgqrs.produce(store, queue, "x")

    async def fail_inside() -> None:
        async with store.consume_iter(queue) as iterator:
            async for _message in iterator:
                raise KeyError("boom")

    with pytest.raises(KeyError):
        await fail_inside()
    # The held message went back to the queue.
    consumer = await store.consumer(queue)
    assert len(await consumer.dequeue()) == 1
