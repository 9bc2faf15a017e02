"""Worker lifecycle (semantics.md §9): every transition, allowed and forbidden, from every state,
on producers, consumers and `store.worker(id)` handles."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

import pgqrs
from tests.support.clocks import FixedClock, at
from tests.support.waiting import eventually

STATES = ("ready", "polling", "suspended", "interrupted", "stopped")

TARGET = {
    "suspend": "suspended",
    "resume": "ready",
    "shutdown": "stopped",
    "interrupt": "interrupted",
}
REASON = {
    "suspend": "Worker must be Ready, Polling, or Interrupted to suspend",
    "resume": "Worker must be in Suspended state to resume",
    "shutdown": "Worker must be Ready or Suspended to shutdown",
    "interrupt": "Worker must be Ready or Polling to be interrupted",
}
ALLOWED = {
    "suspend": {"ready", "polling", "interrupted"},
    "resume": {"suspended"},
    "shutdown": {"ready", "suspended"},
    "interrupt": {"ready", "polling", "interrupted"},
}


class Held:
    """A poll loop whose handler is parked on a message: its worker stays `polling` and the
    loop reads no status until the handler is let go."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def handler(self, message: pgqrs.QueueMessage) -> None:
        self.started.set()
        await self.release.wait()


@contextlib.asynccontextmanager
async def polling(store: pgqrs.Store, consumer: pgqrs.Consumer) -> AsyncIterator[asyncio.Task[Any]]:
    held = Held()
    producer = await store.producer("jobs")
    await producer.enqueue({"hold": True})
    task = asyncio.create_task(pgqrs.dequeue().worker(consumer).handle(held.handler).poll(store))
    await asyncio.wait_for(held.started.wait(), 5)
    try:
        yield task
    finally:
        held.release.set()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def make_worker(store: pgqrs.Store, kind: str) -> Any:
    if kind == "producer":
        return await store.producer("jobs")
    consumer = await store.consumer("jobs")
    return consumer if kind == "consumer" else await store.worker(consumer.worker_id)


async def put_in(worker: Any, state: str) -> None:
    """Move a fresh (`ready`) worker to `state`; `polling` is handled by `polling()`."""
    if state in ("ready", "polling"):
        return
    if state == "suspended":
        await worker.suspend()
    elif state == "interrupted":
        await (await worker._store.worker(worker.worker_id)).interrupt()
    elif state == "stopped":
        await worker.shutdown()
    assert await worker.status() == state


@contextlib.asynccontextmanager
async def worker_in(store: pgqrs.Store, kind: str, state: str) -> AsyncIterator[Any]:
    if state != "polling":
        worker = await make_worker(store, kind)
        await put_in(worker, state)
        yield worker
        return
    consumer = await store.consumer("jobs")
    async with polling(store, consumer):
        assert await consumer.status() == "polling"
        yield consumer if kind == "consumer" else await store.worker(consumer.worker_id)


KINDS = ("producer", "consumer", "handle")
OPS = ("suspend", "resume", "shutdown", "interrupt")


def _cases() -> list[Any]:
    cases = []
    for kind in KINDS:
        for state in STATES:
            for op in OPS:
                if kind == "producer" and (state == "polling" or op == "interrupt"):
                    continue  # producers never poll and cannot be interrupted
                cases.append(pytest.param(kind, state, op, id=f"{kind}-{state}-{op}"))
    return cases


@pytest.mark.parametrize(("kind", "state", "op"), _cases())
async def test_transition(store: pgqrs.Store, queue: str, kind: str, state: str, op: str) -> None:
    async with worker_in(store, kind, state) as worker:
        if state in ALLOWED[op]:
            await getattr(worker, op)()
            assert await worker.status() == TARGET[op]
            if op == "shutdown":
                assert (await (await store.get_workers()).get(worker.worker_id)).shutdown_at
        else:
            with pytest.raises(pgqrs.StateTransitionError) as info:
                await getattr(worker, op)()
            assert str(info.value) == (
                f"Invalid state transition from {state} to {TARGET[op]}: {REASON[op]}"
            )
            assert await worker.status() == state


def test_producer_has_no_interrupt() -> None:
    assert not hasattr(pgqrs.Producer, "interrupt")
    assert hasattr(pgqrs.Consumer, "interrupt")
    assert hasattr(pgqrs.WorkerHandle, "interrupt")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state", STATES)
async def test_heartbeat_from_every_state(
    store: pgqrs.Store, queue: str, kind: str, state: str
) -> None:
    if kind == "producer" and state == "polling":
        pytest.skip("producers never poll")
    async with worker_in(store, kind, state) as worker:
        beat = at(3600).replace(microsecond=123456)
        store.clock = FixedClock(beat)
        await worker.heartbeat()
        info = await (await store.get_workers()).get(worker.worker_id)
        assert info.heartbeat_at == beat.isoformat()
        assert info.status == state


async def test_heartbeat_and_status_of_a_deleted_worker(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    await producer.shutdown()
    await pgqrs.admin(store).delete_worker(producer.worker_id)
    missing = f"Worker with id '{producer.worker_id}' not found"
    with pytest.raises(pgqrs.WorkerNotFoundError, match=missing):
        await producer.heartbeat()
    with pytest.raises(pgqrs.WorkerNotFoundError, match=missing):
        await producer.status()
    with pytest.raises(pgqrs.WorkerNotFoundError, match=missing):
        await store.worker(producer.worker_id)


# -- the poll loop and direct claims, from every state ---------------------------------------


@pytest.mark.parametrize("state", ["suspended", "interrupted", "stopped"])
async def test_poll_loop_start(store: pgqrs.Store, queue: str, state: str) -> None:
    consumer = await store.consumer(queue)
    await put_in(consumer, state)
    loop = pgqrs.dequeue().worker(consumer).handle(lambda m: None).poll(store)
    if state == "stopped":
        with pytest.raises(pgqrs.StateTransitionError) as info:
            await loop
        assert str(info.value) == (
            "Invalid state transition from stopped to polling: "
            "Worker must be Ready to start polling"
        )
        assert await consumer.status() == "stopped"
        return
    with pytest.raises(pgqrs.SuspendedError) as caught:
        await loop
    reason = "worker interrupted" if state == "interrupted" else "worker suspended"
    assert caught.value.reason == reason
    assert str(caught.value) == f"Operation suspended: {reason}"
    assert await consumer.status() == pgqrs.WorkerStatus.Suspended


async def test_poll_loop_start_from_ready_and_from_polling(store: pgqrs.Store, queue: str) -> None:
    """`ready` -> `polling`; a second loop on a worker already `polling` starts too."""
    consumer = await store.consumer(queue)
    producer = await store.producer(queue)
    async with polling(store, consumer):
        seen: list[int] = []
        second = asyncio.create_task(
            pgqrs.dequeue().worker(consumer).handle(lambda m: seen.append(m.id)).poll(store)
        )
        mid = await producer.enqueue({"second": True})

        async def handled() -> bool:
            return seen == [mid]

        await eventually(handled)
        assert await consumer.status() == "polling"
        await consumer.interrupt()
        with pytest.raises(pgqrs.SuspendedError):
            await asyncio.wait_for(second, 5)


async def test_suspending_a_running_loop_ends_it(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    task = asyncio.create_task(
        pgqrs.dequeue().worker(consumer).handle(lambda m: None).poll_interval(50).poll(store)
    )

    async def started() -> bool:
        return await consumer.status() == "polling"

    await eventually(started)
    await consumer.suspend()  # noticed at the loop's next status read
    with pytest.raises(pgqrs.SuspendedError) as caught:
        await asyncio.wait_for(task, 5)
    assert caught.value.reason == "worker suspended"
    assert await consumer.status() == "suspended"


@pytest.mark.parametrize("state", ["ready", "interrupted", "stopped"])
async def test_dequeue_ignores_other_states(store: pgqrs.Store, queue: str, state: str) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    await put_in(consumer, state)
    ids = await producer.enqueue_batch([1, 2, 3])
    assert [m.id for m in await consumer.dequeue()] == ids[:1]
    assert [m.id for m in await consumer.dequeue_many_with_delay(1, 30)] == ids[1:2]
    assert [m.id for m in await consumer.dequeue_at(1, 30, at(0))] == ids[2:]


async def test_suspended_consumer_claims_nothing_but_settles(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    ids = await producer.enqueue_batch([1, 2, 3, 4, 5])
    held = [m.id for m in await consumer.dequeue(4)]
    await consumer.suspend()
    for claim in (
        consumer.dequeue(),
        consumer.dequeue(2),
        consumer.dequeue_many_with_delay(1, 30),
        consumer.dequeue_at(1, 30, at(0)),
    ):
        with pytest.raises(pgqrs.SuspendedError) as caught:
            await claim
        assert caught.value.reason == "worker suspended"
        assert str(caught.value) == "Operation suspended: worker suspended"
    assert (await (await store.get_messages()).get(ids[4])).consumer_worker_id is None
    # Settling what it already holds still works while suspended (semantics.md §9.4).
    assert await consumer.extend_vt(held[0], 10) is True
    assert await consumer.archive(held[0]) is True
    assert await consumer.delete(held[1]) is True
    assert await consumer.release_messages([held[2]]) == 1
    assert await consumer.release_with_visibility(held[3], at(60)) is True
    # Resumed, it claims again: the released message and the one never claimed.
    await consumer.resume()
    assert sorted(m.id for m in await consumer.dequeue(5)) == [held[2], ids[4]]


async def test_suspended_checks_arguments_first(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    await consumer.suspend()
    with pytest.raises(ValueError):
        await consumer.dequeue(0)
    with pytest.raises(ValueError):
        await consumer.dequeue_at(1, 30, "2026-01-01T00:00:00")  # naive time


# -- shutdown with held messages ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["consumer", "handle"])
@pytest.mark.parametrize("state", ["ready", "suspended"])
async def test_shutdown_refused_while_messages_are_held(
    store: pgqrs.Store, queue: str, kind: str, state: str
) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    ids = await producer.enqueue_batch([1, 2, 3])
    claimed = await consumer.dequeue(3)
    await consumer.archive(claimed[2].id)  # archived messages are not held
    await put_in(consumer, state)
    worker = consumer if kind == "consumer" else await store.worker(consumer.worker_id)
    with pytest.raises(pgqrs.StateTransitionError) as info:
        await worker.shutdown()
    assert str(info.value) == "Worker has 2 pending messages: Consumer has 2 pending messages"
    assert await worker.status() == state

    await worker.shutdown(release=True)
    assert await worker.status() == "stopped"
    messages = await store.get_messages()
    for mid in ids[:2]:
        message = await messages.get(mid)
        assert message.consumer_worker_id is None
        assert message.archived_at is None
    other = await store.consumer(queue)
    assert sorted(m.id for m in await other.dequeue(3)) == ids[:2]


async def test_producer_shutdown_takes_no_release(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    with pytest.raises(TypeError):
        await producer.shutdown(release=True)  # type: ignore[call-arg]
    await producer.shutdown()
    assert await producer.status() == "stopped"


# -- health ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_is_healthy(store: pgqrs.Store, make_store: Any, queue: str, kind: str) -> None:
    worker = await make_worker(store, kind)
    assert await worker.is_healthy(60) is True
    store.clock = FixedClock(at(120))
    assert await worker.is_healthy(60) is False
    assert await worker.is_healthy(200) is True
    await worker.heartbeat()  # at the injected now
    assert await worker.is_healthy(0) is True
    await worker.shutdown()
    assert await worker.is_healthy(10_000) is False
    for bad in (-1, -0.5, math.nan, math.inf * -1):
        with pytest.raises(ValueError):
            await worker.is_healthy(bad)
    with pytest.raises(TypeError):
        await worker.is_healthy("60")


async def test_handle_members(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue, name="billing-1")
    handle = await store.worker(consumer.worker_id)
    assert (handle.worker_id, handle.name, handle.queue_id) == (
        consumer.worker_id,
        "billing-1",
        consumer.queue_id,
    )
    info = await handle.info()
    assert info.id == consumer.worker_id
    assert info.status == pgqrs.WorkerStatus.Ready
    await handle.suspend()
    assert await consumer.status() == "SUSPENDED"  # the same row, seen through the consumer
    with pytest.raises(pgqrs.WorkerNotFoundError, match="Worker with id '987654' not found"):
        await store.worker(987654)
