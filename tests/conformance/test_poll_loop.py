"""The poll loop and the one-shot runners (semantics.md §10, api.md §8)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import pgqrs
from tests.support.cancel import CancelAt
from tests.support.target import Target

WAIT = 10.0  # upper bound for anything a test waits on; reaching it is a failure


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = WAIT) -> None:
    """Poll `check` until it holds (a deadline, not a sleep: returns as soon as it is true)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await _holds(check):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def _holds(check: Callable[[], Awaitable[bool] | bool]) -> bool:
    result = check()
    return bool(await result) if inspect.isawaitable(result) else bool(result)


async def stop(consumer: pgqrs.Consumer, task: asyncio.Task[Any]) -> pgqrs.SuspendedError:
    """Interrupt the loop and return the SuspendedError it ends with."""
    await consumer.interrupt()
    with pytest.raises(pgqrs.SuspendedError) as caught:
        await asyncio.wait_for(task, WAIT)
    return caught.value


def loop(consumer: pgqrs.Consumer) -> pgqrs.DequeueBuilder:
    return pgqrs.dequeue().worker(consumer).poll_interval(20)


async def test_handle_archives_every_message_then_interrupt_suspends(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    ids = await producer.enqueue_batch([{"i": i} for i in range(5)])
    seen: list[int] = []

    async def handler(message: pgqrs.QueueMessage) -> None:
        seen.append(message.id)

    task = asyncio.create_task(loop(consumer).handle(handler).poll(store))
    messages = await store.get_messages()
    await eventually(lambda: _count_is(messages, 0))
    assert await consumer.status() == pgqrs.WorkerStatus.Polling
    error = await stop(consumer, task)
    assert error.reason == "worker interrupted"
    assert str(error) == "Operation suspended: worker interrupted"
    assert seen == ids
    assert await consumer.status() == pgqrs.WorkerStatus.Suspended
    assert await consumer.status() == "SUSPENDED"
    for mid in ids:
        assert (await messages.get(mid)).archived_at is not None


async def _count_is(messages: pgqrs.Messages, n: int) -> bool:
    return await messages.count() == n


async def test_handle_batch_receives_lists_up_to_the_batch_size(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    await producer.enqueue_batch(list(range(23)))
    sizes: list[int] = []
    task = asyncio.create_task(
        loop(consumer).batch(10).handle_batch(lambda ms: sizes.append(len(ms))).poll(store)
    )
    await eventually(lambda: sum(sizes) == 23)
    await stop(consumer, task)
    assert sizes == [10, 10, 3]


async def test_a_failing_handler_releases_with_backoff_and_the_loop_goes_on(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    bad, good = await producer.enqueue_batch(["bad", "good"])
    t = datetime.now(timezone.utc) + timedelta(seconds=5)
    handled: list[int] = []

    def handler(message: pgqrs.QueueMessage) -> None:
        if message.payload == "bad":
            raise ValueError("cannot handle this one")
        handled.append(message.id)

    task = asyncio.create_task(loop(consumer).at(t).handle(handler).poll(store))
    await eventually(lambda: len(handled) == 1)
    await stop(consumer, task)
    assert handled == [good]
    failed = await (await store.get_messages()).get(bad)
    assert failed.archived_at is None
    assert failed.consumer_worker_id is None
    assert failed.read_ct == 1
    assert failed.vt == (t + timedelta(seconds=1)).isoformat()  # min(2**(1-1), 60)


async def test_backoff_grows_with_the_read_count(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    mid = await producer.enqueue("always fails")
    attempts: list[int] = []
    t = datetime.now(timezone.utc)

    def handler(message: pgqrs.QueueMessage) -> None:
        attempts.append(message.read_ct)
        raise RuntimeError("nope")

    # Each run of the loop at a later injected time sees the message again after its backoff.
    for n, offset in enumerate([0, 1, 3, 7]):
        builder = loop(consumer).at(t + timedelta(seconds=offset)).handle(handler)
        task = asyncio.create_task(builder.poll(store))
        await eventually(lambda n=n: len(attempts) == n + 1)  # type: ignore[misc]
        await stop(consumer, task)
        await consumer.resume()
    message = await (await store.get_messages()).get(mid)
    assert attempts == [1, 2, 3, 4]
    assert message.vt == (t + timedelta(seconds=7 + 8)).isoformat()


async def test_interrupt_right_after_the_task_is_created(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    task = asyncio.create_task(loop(consumer).handle(lambda m: None).poll(store))
    await consumer.interrupt()  # before the task has run at all
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task, WAIT)
    assert await consumer.status() == pgqrs.WorkerStatus.Suspended


async def test_interrupt_after_the_loop_started_polling(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    task = asyncio.create_task(loop(consumer).handle(lambda m: None).poll(store))

    async def polling() -> bool:
        return await consumer.status() == pgqrs.WorkerStatus.Polling

    await eventually(polling)
    await stop(consumer, task)
    assert await consumer.status() == pgqrs.WorkerStatus.Suspended


async def test_interrupt_while_a_handler_runs_lets_it_finish(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    mid = await producer.enqueue("slow")
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(message: pgqrs.QueueMessage) -> None:
        started.set()
        await release.wait()

    task = asyncio.create_task(loop(consumer).handle(handler).poll(store))
    await asyncio.wait_for(started.wait(), WAIT)
    await consumer.interrupt()
    assert not task.done()
    release.set()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task, WAIT)
    assert (await (await store.get_messages()).get(mid)).archived_at is not None


async def test_cancelling_the_task_releases_in_flight_messages(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    mid = await producer.enqueue("stuck")
    started = asyncio.Event()

    async def handler(message: pgqrs.QueueMessage) -> None:
        started.set()
        await asyncio.Event().wait()  # never returns on its own

    task = asyncio.create_task(loop(consumer).handle(handler).poll(store))
    await asyncio.wait_for(started.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    message = await (await store.get_messages()).get(mid)
    assert message.consumer_worker_id is None
    assert message.archived_at is None
    assert await consumer.status() == pgqrs.WorkerStatus.Suspended
    other = await store.consumer(queue)
    assert [m.id for m in await other.dequeue()] == [mid]


async def test_wait_for_timeout_leaves_the_worker_suspended(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    task = asyncio.create_task(loop(consumer).handle(lambda m: None).poll(store))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(task, 0.2)
    assert await consumer.status() == pgqrs.WorkerStatus.Suspended


class Crash(BaseException):
    """A BaseException that is not an Exception: the process is going down."""


async def test_a_base_exception_from_the_handler_propagates_unchanged(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    mid = await producer.enqueue("fatal")
    t = datetime.now(timezone.utc)

    def handler(message: pgqrs.QueueMessage) -> None:
        raise Crash

    with pytest.raises(Crash):
        await asyncio.wait_for(loop(consumer).at(t).handle(handler).poll(store), WAIT)
    message = await (await store.get_messages()).get(mid)
    assert message.consumer_worker_id is None
    assert message.vt == t.isoformat()  # released for immediate redelivery
    assert await consumer.status() == pgqrs.WorkerStatus.Ready


async def test_heartbeats_extend_the_leases_of_a_busy_handler(
    make_store: Callable[..., Awaitable[pgqrs.Store]], queue: str, store: pgqrs.Store
) -> None:
    fast = await make_store(heartbeat_interval_seconds=1)
    producer = await store.producer(queue)
    consumer = await fast.consumer(queue)
    mid = await producer.enqueue("long job")
    messages = await store.get_messages()
    workers = await store.get_workers()
    seen: dict[str, str | None] = {}

    async def lease_was_extended() -> bool:
        now = await messages.get(mid)
        beat = (await workers.get(consumer.worker_id)).heartbeat_at
        return now.vt != seen["vt"] and beat != seen["beat"]

    async def handler(message: pgqrs.QueueMessage) -> None:
        seen["vt"] = message.vt
        seen["beat"] = (await workers.get(consumer.worker_id)).heartbeat_at
        await eventually(lease_was_extended)

    builder = pgqrs.dequeue().worker(consumer).lease(2).handle(handler)
    task = asyncio.create_task(builder.poll(fast))
    await eventually(lambda: _count_is(messages, 0))
    await stop(consumer, task)
    assert (await messages.get(mid)).archived_at is not None


async def test_a_suspended_or_stopped_worker_cannot_poll(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    await consumer.suspend()
    with pytest.raises(pgqrs.SuspendedError, match="worker suspended"):
        await loop(consumer).handle(lambda m: None).poll(store)
    await consumer.shutdown()
    with pytest.raises(pgqrs.StateTransitionError, match="from stopped to polling"):
        await loop(consumer).handle(lambda m: None).poll(store)


async def test_suspend_from_outside_ends_the_loop(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    task = asyncio.create_task(loop(consumer).handle(lambda m: None).poll(store))

    async def polling() -> bool:
        return await consumer.status() == pgqrs.WorkerStatus.Polling

    await eventually(polling)
    await (await store.worker(consumer.worker_id)).suspend()
    with pytest.raises(pgqrs.SuspendedError, match="worker suspended"):
        await asyncio.wait_for(task, WAIT)


async def test_from_queue_uses_an_ephemeral_worker_stopped_at_the_end(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    await producer.enqueue_batch([1, 2, 3])
    seen: list[int] = []
    builder = pgqrs.dequeue().from_queue(queue).batch(2).poll_interval(10)
    task = asyncio.create_task(builder.handle_batch(lambda ms: seen.extend(ms)).poll(store))
    await eventually(lambda: len(seen) == 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    workers = await (await store.get_workers()).list()
    [ephemeral] = [w for w in workers if w.name.startswith("__ephemeral__")]
    assert ephemeral.status == pgqrs.WorkerStatus.Stopped


async def test_at_fixes_the_claim_time(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    mid = await producer.enqueue("x")
    t = datetime.now(timezone.utc) + timedelta(days=1)
    [message] = await pgqrs.dequeue().worker(consumer).at(t.isoformat()).fetch(store)
    assert message.id == mid
    assert message.dequeued_at == t.isoformat()
    lease = store.config.default_lock_time_seconds
    assert message.vt == (t + timedelta(seconds=lease)).isoformat()


async def test_fetch_claims_once_and_until_waits_for_a_message(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    assert await pgqrs.dequeue().worker(consumer).fetch(store) == []
    assert await pgqrs.dequeue().worker(consumer).until(0).fetch(store) == []
    waiting = asyncio.create_task(pgqrs.dequeue().worker(consumer).until(WAIT).fetch(store))
    mid = await producer.enqueue("arrives later")
    [message] = await asyncio.wait_for(waiting, WAIT)
    assert message.id == mid
    assert message.consumer_worker_id == consumer.worker_id
    # fetch leaves the status alone and settles nothing.
    assert await consumer.status() == pgqrs.WorkerStatus.Ready
    assert await consumer.archive(mid) is True


async def test_fetch_honours_the_worker_status(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    await consumer.interrupt()
    with pytest.raises(pgqrs.SuspendedError, match="worker interrupted"):
        await pgqrs.dequeue().worker(consumer).fetch(store)
    assert await consumer.status() == pgqrs.WorkerStatus.Suspended
    with pytest.raises(pgqrs.SuspendedError, match="worker suspended"):
        await pgqrs.dequeue().worker(consumer).fetch(store)
    await consumer.shutdown()
    with pytest.raises(pgqrs.StateTransitionError):
        await pgqrs.dequeue().worker(consumer).fetch(store)


async def test_execute_handles_one_claim(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    builder = pgqrs.dequeue().worker(consumer).batch(3)
    seen: list[list[int]] = []
    assert (
        await builder.handle_batch(lambda ms: seen.append([m.id for m in ms])).execute(store) == 0
    )
    ids = await producer.enqueue_batch([1, 2, 3, 4])
    assert await builder.execute(store) == 3
    assert await builder.execute(store) == 1
    assert seen == [ids[:3], ids[3:]]
    assert await (await store.get_messages()).count() == 0

    def fail(messages: list[pgqrs.QueueMessage]) -> None:
        raise LookupError("execute re-raises")

    mid = await producer.enqueue(5)
    with pytest.raises(LookupError):
        await builder.handle_batch(fail).execute(store)
    released = await (await store.get_messages()).get(mid)
    assert released.consumer_worker_id is None


async def test_execute_from_queue_stops_its_ephemeral_worker(
    store: pgqrs.Store, queue: str
) -> None:
    await pgqrs.produce(store, queue, "one")
    count = await pgqrs.dequeue().from_queue(queue).handle(lambda m: None).execute(store)
    assert count == 1
    workers = await (await store.get_workers()).list()
    assert {w.status for w in workers} == {pgqrs.WorkerStatus.Stopped}


async def test_runner_checks_come_before_any_storage_access(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    with pytest.raises(ValueError, match="exactly one of handle"):
        await pgqrs.dequeue().worker(consumer).poll(store)
    with pytest.raises(ValueError, match="exactly one of handle"):
        await pgqrs.dequeue().worker(consumer).handle(print).handle_batch(print).poll(store)
    with pytest.raises(ValueError, match="Queue name is required"):
        await pgqrs.dequeue().handle(print).poll(store)
    with pytest.raises(ValueError, match="worker"):
        await pgqrs.dequeue().from_queue(queue).fetch(store)
    with pytest.raises(ValueError):
        await pgqrs.dequeue().worker(consumer).handle(print).fetch(store)
    with pytest.raises(pgqrs.ValidationError, match="require batch size = 1, got 5"):
        await pgqrs.dequeue().worker(consumer).batch(5).handle(print).poll(store)
    with pytest.raises(pgqrs.ValidationError, match="default_max_batch_size"):
        await pgqrs.dequeue().worker(consumer).batch(101).handle_batch(print).poll(store)
    with pytest.raises(ValueError, match="until"):
        await pgqrs.dequeue().worker(consumer).until(1).handle(print).poll(store)
    with pytest.raises(pgqrs.QueueNotFoundError):
        await pgqrs.dequeue().from_queue("missing").handle(print).poll(store)
    assert await consumer.status() == pgqrs.WorkerStatus.Ready
    assert await (await store.get_workers()).count() == 1


def test_builder_setters_and_read_back() -> None:
    builder = pgqrs.dequeue()
    assert builder.queue is None
    assert builder.batch_size == 1
    assert builder.poll_interval_ms is None
    assert builder.lease_seconds is None
    assert not builder.has_worker()
    chained = builder.from_queue("q").batch(0).poll_interval(5).lease(2.5)
    assert chained is builder
    assert (chained.queue, chained.batch_size, chained.poll_interval_ms) == ("q", 1, 5)
    assert builder.with_vt(3).lease_seconds == 3
    with pytest.raises(TypeError):
        builder.worker("not a consumer")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        builder.handle(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        builder.poll_interval(0)
    with pytest.raises(ValueError):
        builder.lease(0)
    with pytest.raises(ValueError):
        builder.until(-1)
    with pytest.raises(ValueError, match="Invalid ISO 8601 timestamp"):
        builder.at("2026-01-01T00:00:00")  # naive


async def test_a_message_finished_after_its_lease_lapsed_is_archived_not_rerun(
    store: pgqrs.Store, queue: str
) -> None:
    """Issue 10, defect 2: on PostgreSQL the statement that archives what a handler finished
    and claims the next batch saw one snapshot, in which a finished message whose lease had
    lapsed was visible again: it was claimed back, the archive was lost, and the handler ran
    again. A message whose handler returned is archived, never claimed again by that step."""
    consumer = await store.consumer(queue)
    mid = await (await store.producer(queue)).enqueue("slow")
    calls: list[int] = []

    async def handler(message: pgqrs.QueueMessage) -> None:
        calls.append(message.id)
        time.sleep(1.5)  # blocks the event loop: no heartbeat renews the 1 s lease meanwhile

    task = asyncio.create_task(loop(consumer).lease(1).handle(handler).poll(store))
    messages = await store.get_messages()

    async def archived() -> bool:
        return (await messages.get(mid)).archived_at is not None

    await eventually(archived)
    await stop(consumer, task)
    assert calls == [mid]
    assert (await messages.get(mid)).read_ct == 1


# Not on S3: the rival's store is a second writer of one object (semantics.md §16).
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_a_blocking_plain_handler_keeps_its_lease(
    store: pgqrs.Store, make_store: Callable[..., Awaitable[pgqrs.Store]], target: Target
) -> None:
    """Issue 10, defect 3: plain-function handlers ran on the event loop, so heartbeats could
    not extend their leases and another consumer took the message while the first still worked
    on it. They run on a thread now; the loop (and its heartbeats) go on meanwhile. The rival
    claims from a thread of its own, so a blocked loop cannot hold it back."""
    await store.queue("jobs")
    fast = await make_store(heartbeat_interval_seconds=1)
    consumer = await fast.consumer("jobs")
    mid = await (await store.producer("jobs")).enqueue("blocking")
    calls: list[int] = []
    started, finished = threading.Event(), threading.Event()

    def handler(message: pgqrs.QueueMessage) -> None:
        calls.append(message.id)
        started.set()
        time.sleep(2.5)  # the work itself, blocking, longer than the 1 s lease
        finished.set()

    stolen: list[int] = []

    async def rival() -> None:
        async with await target.connect() as other:
            claimer = await other.consumer("jobs")
            assert started.wait(WAIT)
            while not finished.is_set():
                stolen.extend(m.id for m in await claimer.dequeue())
                await asyncio.sleep(0.05)

    rival_thread = threading.Thread(target=asyncio.run, args=(rival(),))
    rival_thread.start()
    task = asyncio.create_task(loop(consumer).lease(1).handle(handler).poll(fast))
    await asyncio.to_thread(rival_thread.join, WAIT)
    messages = await store.get_messages()

    async def archived() -> bool:
        return (await messages.get(mid)).archived_at is not None

    await eventually(archived)
    await stop(consumer, task)
    assert (calls, stolen) == ([mid], [])


async def test_plain_handlers_of_several_loops_run_at_once(store: pgqrs.Store, queue: str) -> None:
    """Issue 10, defect 3: `pgqrs run --concurrency 4` with a blocking handler ran one handler
    at a time (every one blocked the event loop). Each loop runs its plain handlers on a thread
    of its own, so four loops run four at once."""
    await (await store.producer(queue)).enqueue_batch(list(range(4)))
    together = threading.Barrier(4, timeout=WAIT)
    done: list[int] = []

    def handler(message: pgqrs.QueueMessage) -> None:
        together.wait()  # passes only when four handlers are inside at the same time
        done.append(message.id)

    consumers = [await store.consumer(queue) for _ in range(4)]
    builders = [loop(c).handle(handler) for c in consumers]
    task = asyncio.create_task(pgqrs.run_workers(store, builders, signals=()))
    await eventually(lambda: len(done) == 4)
    await consumers[0].interrupt()  # the others follow it (run_workers); its ending is raised
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task, WAIT)
    assert not together.broken


async def test_a_poll_task_cancelled_at_its_first_await_ends_suspended(
    store: pgqrs.Store, queue: str
) -> None:
    """Issue 10, defect 9: a poll task cancelled before its first step left the worker `ready`.
    Once the loop's coroutine has started, a cancellation anywhere ends it `suspended`, even
    at its very first await (before the worker was moved to `polling`)."""
    consumer = await store.consumer(queue)

    async def cancelled_at_first_await() -> None:
        await CancelAt(loop(consumer).handle(lambda m: None).poll(store), 1)

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(cancelled_at_first_await())
    assert await consumer.status() == pgqrs.WorkerStatus.Suspended


async def test_a_poll_task_cancelled_before_it_ran_leaves_the_worker_as_it_was(
    store: pgqrs.Store, queue: str
) -> None:
    """The exact rule's other half: a task cancelled before its coroutine ever ran executed no
    code at all (asyncio never starts it), so the worker is as it was (docs/guarantees.md)."""
    consumer = await store.consumer(queue)
    task = asyncio.create_task(loop(consumer).handle(lambda m: None).poll(store))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await consumer.status() == pgqrs.WorkerStatus.Ready
