"""`pgqrs.run_worker` in this process: signals sent to ourselves, handled on the test's loop.

The real-process versions (SIGTERM from outside) are in tests/crash/test_run_worker_signals.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

import pgqrs
from tests.support.target import Target
from tests.support.waiting import eventually


class Handler:
    """Records messages; on the first one, sends `signum` to this process mid-handler and
    waits for the worker to be interrupted before returning."""

    def __init__(self, store: pgqrs.Store, signum: int) -> None:
        self.store = store
        self.signum = signum
        self.done: list[int] = []

    async def __call__(self, message: pgqrs.QueueMessage) -> None:
        if not self.done:
            os.kill(os.getpid(), self.signum)
            worker = await self.store.worker(message.consumer_worker_id or 0)

            async def interrupted() -> bool:
                return await worker.status() == "interrupted"

            await eventually(interrupted)
        self.done.append(message.id)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_after_the_current_message(
    store: pgqrs.Store, queue: str, signum: int
) -> None:
    before = signal.getsignal(signum)
    ids = await (await store.producer(queue)).enqueue_batch(["a", "b"])
    consumer = await store.consumer(queue)
    handler = Handler(store, signum)
    await asyncio.wait_for(
        pgqrs.run_worker(store, pgqrs.dequeue().worker(consumer).handle(handler)), 10
    )

    assert handler.done == ids[:1]  # finished the one in hand, took no other
    messages = await store.get_messages()
    assert (await messages.get(ids[0])).archived_at is not None
    assert (await messages.get(ids[1])).consumer_worker_id is None
    assert await consumer.status() == "stopped"
    assert signal.getsignal(signum) == before


async def test_ephemeral_worker(store: pgqrs.Store, queue: str) -> None:
    await (await store.producer(queue)).enqueue("a")
    handler = Handler(store, signal.SIGTERM)
    await asyncio.wait_for(
        pgqrs.run_worker(store, pgqrs.dequeue().from_queue(queue).handle(handler)), 10
    )
    [mid] = handler.done
    message = await (await store.get_messages()).get(mid)
    assert message.archived_at is not None
    assert message.consumer_worker_id is not None
    assert await (await store.worker(message.consumer_worker_id)).status() == "stopped"


async def test_other_endings_are_raised_and_leave_the_worker(
    store: pgqrs.Store, queue: str
) -> None:
    consumer = await store.consumer(queue)
    task = asyncio.create_task(
        pgqrs.run_worker(store, pgqrs.dequeue().worker(consumer).handle(print).poll_interval(20))
    )

    async def polling() -> bool:
        return await consumer.status() == "polling"

    await eventually(polling)
    await consumer.suspend()  # an operator pausing this worker is not a shutdown
    with pytest.raises(pgqrs.SuspendedError) as caught:
        await asyncio.wait_for(task, 10)
    assert caught.value.reason == "worker suspended"
    assert await consumer.status() == "suspended"


async def test_cancelled_from_outside(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    task = asyncio.create_task(
        pgqrs.run_worker(store, pgqrs.dequeue().worker(consumer).handle(print).poll_interval(20))
    )

    async def polling() -> bool:
        return await consumer.status() == "polling"

    await eventually(polling)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await consumer.status() == "suspended"  # as any cancelled poll loop leaves it


async def test_without_signals(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    task = asyncio.create_task(
        pgqrs.run_worker(
            store, pgqrs.dequeue().worker(consumer).handle(print).poll_interval(20), signals=()
        )
    )

    async def polling() -> bool:
        return await consumer.status() == "polling"

    await eventually(polling)
    await consumer.interrupt()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task, 10)  # nobody signalled: the interrupt is not ours to hide
    assert await consumer.status() == "suspended"


async def test_needs_the_main_thread(store: pgqrs.Store, target: Target, queue: str) -> None:
    async def elsewhere() -> None:
        other = await target.connect()
        try:
            await pgqrs.run_worker(other, pgqrs.dequeue().from_queue(queue).handle(print))
        finally:
            await other.close()

    errors: list[BaseException] = []

    def thread() -> None:
        try:
            asyncio.run(elsewhere())
        except BaseException as err:
            errors.append(err)

    workers = await store.get_workers()
    before = await workers.count()
    runner = threading.Thread(target=thread)
    runner.start()
    await asyncio.to_thread(runner.join, 10)
    [error] = errors
    assert isinstance(error, RuntimeError)
    assert "signals=()" in str(error)
    assert await workers.count() == before  # refused before registering anything


async def test_checks_the_builder_first(store: pgqrs.Store, queue: str) -> None:
    with pytest.raises(ValueError, match="exactly one of handle"):
        await pgqrs.run_worker(store, pgqrs.dequeue().from_queue(queue))
    with pytest.raises(ValueError):
        await pgqrs.run_worker(store, pgqrs.dequeue().from_queue(queue).handle(print).until(1))
