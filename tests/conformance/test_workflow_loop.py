"""`handle_workflow` (semantics.md §11): which runs reach the handler, and each outcome of §11.2."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pgqrs
from pgqrs.decorators import step, workflow
from tests.support.clocks import OffsetClock
from tests.support.target import StoreFactory
from tests.support.workflows import WF, at, new_run, parse, run_in

Handler = Callable[[pgqrs.Run], Any]


@pytest.fixture
def t() -> datetime:
    """The loop's injected time: a little ahead of the clock, so fresh triggers are visible."""
    return datetime.now(UTC) + timedelta(seconds=5)


async def execute(store: pgqrs.Store, fn: Handler, when: datetime, batch: int = 1) -> int:
    consumer = await store.consumer(WF)
    builder = pgqrs.dequeue().worker(consumer).batch(batch).handle_workflow(fn).at(when)
    return await builder.execute(store)


async def message(store: pgqrs.Store, run: pgqrs.Run) -> pgqrs.QueueMessage:
    return await (await store.get_messages()).get(run.message_id)


async def assert_archived(store: pgqrs.Store, run: pgqrs.Run) -> None:
    assert (await message(store, run)).archived_at is not None


async def assert_scheduled(store: pgqrs.Store, run: pgqrs.Run, vt: datetime) -> None:
    """Released for scheduling: visible at `vt`, unowned, and the claim given back."""
    m = await message(store, run)
    assert m.archived_at is None
    assert m.consumer_worker_id is None
    assert parse(m.vt) == vt
    assert m.read_ct == 0


# -- which runs reach the handler -------------------------------------------------------------


async def test_the_handler_gets_the_run(store: pgqrs.Store, t: datetime) -> None:
    run = await new_run(store, {"n": 1})
    seen: list[pgqrs.Run] = []

    async def handler(r: pgqrs.Run) -> str:
        seen.append(r)
        await r.start()
        await r.success("ok")
        return "ignored"

    assert await execute(store, handler, t) == 1
    [got] = seen
    assert (got.id(), got.message_id, got.input) == (run.id(), run.message_id, {"input": {"n": 1}})
    assert got.current_time == t.isoformat()  # the loop's injected time
    await assert_archived(store, run)
    assert await run.status() == "SUCCESS"


async def test_a_trigger_gets_its_run_on_first_delivery(store: pgqrs.Store, t: datetime) -> None:
    await pgqrs.workflow().name(WF).store(store).create()
    trigger = await pgqrs.workflow().name(WF).store(store).trigger("x").execute()

    @workflow(name=WF)
    async def flow(run: pgqrs.Run, value: str) -> str:
        return value * 2

    await execute(store, flow, t)
    assert await pgqrs.run().message(trigger).store(store).result(timeout=1) == "xx"


@pytest.mark.parametrize("state", ["SUCCESS", "ERROR", "CANCELLED", "CANCELLING"])
async def test_finished_runs_are_archived_unhandled(
    store: pgqrs.Store, t: datetime, state: str
) -> None:
    run = await run_in(store, state)
    called: list[pgqrs.Run] = []
    assert await execute(store, called.append, t) == 1
    assert called == []
    await assert_archived(store, run)
    assert await run.status() == ("CANCELLED" if state == "CANCELLING" else state)


async def test_messages_are_processed_in_claim_order(store: pgqrs.Store, t: datetime) -> None:
    runs = [await new_run(store, i) for i in range(3)]
    order: list[int] = []

    async def handler(r: pgqrs.Run) -> None:
        order.append(r.id())

    assert await execute(store, handler, t, batch=3) == 3
    assert order == [r.id() for r in runs]
    for r in runs:
        await assert_archived(store, r)


async def test_a_queue_without_workflow_ends_the_loop(store: pgqrs.Store, t: datetime) -> None:
    await store.queue("plain")
    ids = await pgqrs.produce_batch(store, "plain", [1, 2])
    consumer = await store.consumer("plain")
    loop = pgqrs.dequeue().worker(consumer).batch(2).handle_workflow(lambda r: None).at(t)
    with pytest.raises(pgqrs.NotFoundError, match="No workflow registered for queue 'plain'"):
        await loop.poll(store)
    for mid in ids:
        m = await (await store.get_messages()).get(mid)
        assert (m.consumer_worker_id, parse(m.vt), m.read_ct) == (None, t, 1)
    assert await consumer.status() == pgqrs.WorkerStatus.Ready


# -- outcomes (semantics.md §11.2) ---------------------------------------------------------------


async def test_returns_with_a_pending_cancellation(store: pgqrs.Store, t: datetime) -> None:
    run = await new_run(store)

    async def handler(r: pgqrs.Run) -> None:
        await r.start()
        await r.cancel()

    await execute(store, handler, t)
    await assert_archived(store, run)
    assert await run.status() == "CANCELLED"


async def test_transient_failure_comes_back_at_its_retry_time(
    store: pgqrs.Store, t: datetime
) -> None:
    run = await new_run(store)

    @step
    async def call(r: pgqrs.Run) -> None:
        raise pgqrs.TransientStepError("busy", retry_after=30)

    @workflow(name=WF)
    async def flow(r: pgqrs.Run, _: Any) -> None:
        await call(r)

    assert await execute(store, flow, t) == 1  # a scheduling outcome is not an error
    await assert_scheduled(store, run, at(t, 30))
    assert await run.status() == "RUNNING"
    assert await execute(store, flow, at(t, 29)) == 0  # not visible before
    assert await execute(store, flow, at(t, 30)) == 1


async def test_step_not_ready_uses_the_earliest_failed_step(
    store: pgqrs.Store, t: datetime
) -> None:
    run = await new_run(store)
    for name, delay in (("a", 50), ("b", 20)):
        guard = (await run.acquire_step(name, current_time=t)).guard
        assert guard is not None
        await guard.fail_transient("E", "m", retry_after=delay)

    async def handler(r: pgqrs.Run) -> None:
        raise pgqrs.StepNotReadyError("waiting for approval")  # no retry_at of its own

    await execute(store, handler, t)
    await assert_scheduled(store, run, at(t, 20))


async def test_an_exhausted_step_comes_back_at_once(store: pgqrs.Store, t: datetime) -> None:
    run = await new_run(store)
    guard = (await run.acquire_step("a", current_time=t)).guard
    assert guard is not None
    await guard.fail("permanent")

    async def handler(r: pgqrs.Run) -> None:
        raise pgqrs.TransientStepError("elsewhere")

    await execute(store, handler, t)
    await assert_scheduled(store, run, t)

    async def acquire(r: pgqrs.Run) -> None:
        await r.acquire_step("a")  # the next delivery surfaces RetriesExhaustedError

    await execute(store, acquire, t)
    await assert_archived(store, run)
    record = await (await store.get_workflow_runs()).get(run.id())
    assert record.status == "ERROR"  # failed by the loop: the handler did not
    assert record.error.startswith("Step failed after 0 attempts")


async def test_transient_without_any_schedule_uses_the_message_backoff(
    store: pgqrs.Store, t: datetime
) -> None:
    run = await new_run(store)

    async def handler(r: pgqrs.Run) -> None:
        raise pgqrs.TransientStepError("no idea when", retry_at="not a time")

    await execute(store, handler, t)
    await assert_scheduled(store, run, at(t, 1))  # min(2 ** (read_ct - 1), 60) with read_ct 1


async def test_a_paused_run_comes_back_after_its_pause(store: pgqrs.Store, t: datetime) -> None:
    run = await new_run(store)

    async def handler(r: pgqrs.Run) -> None:
        await r.start()
        await r.pause("approval", 40)
        raise pgqrs.PausedError("parked", resume_after=999)

    await execute(store, handler, t)
    record = await (await store.get_workflow_runs()).get(run.id())
    assert record.status == "PAUSED"
    await assert_scheduled(store, run, parse(record.paused_at) + timedelta(seconds=40))


async def test_paused_error_alone(store: pgqrs.Store, t: datetime) -> None:
    with_delay, without = await new_run(store), await new_run(store)

    async def handler(r: pgqrs.Run) -> None:
        raise pgqrs.PausedError("parked", resume_after=15 if r.id() == with_delay.id() else None)

    await execute(store, handler, t, batch=2)
    await assert_scheduled(store, with_delay, at(t, 15))
    await assert_scheduled(store, without, at(t, 1))


async def test_planned_waits_never_make_a_run_poison(store: pgqrs.Store, t: datetime) -> None:
    """Ten scheduled retries with max_read_ct 5: every claim is given back."""
    run = await new_run(store)
    attempts: list[int] = []

    @step(retry=pgqrs.StepRetryPolicy(20, pgqrs.BackoffStrategy.fixed(1)))
    async def flaky(r: pgqrs.Run) -> str:
        attempts.append(1)
        if len(attempts) <= 10:
            raise pgqrs.TransientStepError("again")
        return "finally"

    @workflow(name=WF)
    async def flow(r: pgqrs.Run, _: Any) -> str:
        return await flaky(r)

    for i in range(11):
        assert await execute(store, flow, at(t, i)) == 1
    assert await run.status() == "SUCCESS"
    assert (await message(store, run)).read_ct == 1


async def test_cancellation_seen_by_the_handler(store: pgqrs.Store, t: datetime) -> None:
    cancelled_inside, raised_by_user = await new_run(store), await new_run(store)

    async def handler(r: pgqrs.Run) -> None:
        await r.start()
        if r.id() == cancelled_inside.id():
            await r.cancel()
            await r.acquire_step("next")  # raises WorkflowCancelledError, finalising
        raise pgqrs.WorkflowCancelledError("stop", run_id=r.id())

    await execute(store, handler, t, batch=2)
    for r in (cancelled_inside, raised_by_user):
        await assert_archived(store, r)
        assert await r.status() == "CANCELLED"


async def test_retries_exhausted_fails_the_run(store: pgqrs.Store, t: datetime) -> None:
    run = await new_run(store)

    async def handler(r: pgqrs.Run) -> None:
        raise pgqrs.RetriesExhaustedError("Step failed after 3 attempts: {}", attempts=3)

    await execute(store, handler, t)
    await assert_archived(store, run)
    record = await (await store.get_workflow_runs()).get(run.id())
    assert (record.status, record.error) == (
        pgqrs.WorkflowStatus.Error,
        "Step failed after 3 attempts: {}",
    )


async def test_other_errors(store: pgqrs.Store, t: datetime) -> None:
    still_open, failed = await new_run(store), await new_run(store)

    async def handler(r: pgqrs.Run) -> None:
        await r.start()
        if r.id() == failed.id():
            await r.fail("given up")
        raise ValueError(f"bad {r.id()}")

    # execute() re-raises (the first) after settling every claimed message.
    with pytest.raises(ValueError, match=f"bad {still_open.id()}"):
        await execute(store, handler, t, batch=2)
    m = await message(store, still_open)  # released with the message backoff, counted
    assert (m.archived_at, m.consumer_worker_id, m.read_ct) == (None, None, 1)
    assert parse(m.vt) == at(t, 1)
    assert await still_open.status() == "RUNNING"
    await assert_archived(store, failed)


async def test_the_loop_goes_on_after_an_error(store: pgqrs.Store, t: datetime) -> None:
    bad, good = await new_run(store), await new_run(store)
    consumer = await store.consumer(WF)
    done = asyncio.Event()

    async def handler(r: pgqrs.Run) -> None:
        if r.id() == bad.id():
            raise RuntimeError("boom")
        await r.success(1)
        done.set()

    loop = pgqrs.dequeue().worker(consumer).handle_workflow(handler).at(t).poll_interval(10)
    task = asyncio.create_task(loop.poll(store))
    await asyncio.wait_for(done.wait(), 5)
    await consumer.interrupt()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task, 5)
    assert (await message(store, bad)).read_ct == 1
    await assert_archived(store, good)


async def test_a_base_exception_propagates_unchanged(store: pgqrs.Store, t: datetime) -> None:
    class Dying(BaseException):
        pass

    run = await new_run(store)
    consumer = await store.consumer(WF)
    dying = Dying("process is going away")

    async def handler(r: pgqrs.Run) -> None:
        await r.start()
        raise dying

    loop = pgqrs.dequeue().worker(consumer).handle_workflow(handler).at(t)
    with pytest.raises(Dying) as info:
        await loop.poll(store)
    assert info.value is dying
    m = await message(store, run)
    assert (m.consumer_worker_id, parse(m.vt), m.archived_at) == (None, t, None)
    assert await run.status() == "RUNNING"
    assert await consumer.status() == pgqrs.WorkerStatus.Ready


# -- a run whose trigger becomes a dead letter (issue 10) ---------------------------------------


async def test_a_run_whose_trigger_is_dead_lettered_ends_in_error(
    store: pgqrs.Store, t: datetime
) -> None:
    """Its trigger failed max_read_ct times: no delivery will come, so the run ends ERROR with
    the reason and the last error, and `result()` reports it (it used to stay RUNNING)."""
    run = await new_run(store)
    await pgqrs.admin(store).update_queue(WF, max_read_ct=2)

    async def boom(r: pgqrs.Run) -> None:
        await r.start()
        raise RuntimeError("card declined")

    for attempt in range(2):
        with pytest.raises(RuntimeError, match="card declined"):
            await execute(store, boom, t + timedelta(seconds=100 * attempt))
    assert await run.status() == "ERROR"
    trigger = await message(store, run)
    with pytest.raises(pgqrs.WorkflowFailedError) as failed:
        await pgqrs.run().message(trigger).store(store).result(timeout=5)
    assert "became a dead letter after 2 deliveries" in str(failed.value)
    assert "last error: RuntimeError: card declined" in str(failed.value)
    [dead] = await pgqrs.admin(store).dead_letters(WF)
    assert dead.message.id == run.message_id


async def test_archiving_one_dead_letter_ends_its_run_only(
    store: pgqrs.Store, make_store: StoreFactory, t: datetime
) -> None:
    """`archive_dead_letter` ends the run of that trigger ERROR in its transaction, and
    `result()` waiters hear it; the other dead trigger's run is left for `dlq()`."""
    chosen, other = await new_run(store), await new_run(store)
    await pgqrs.admin(store).update_queue(WF, max_read_ct=2)
    victim = await store.consumer(WF)
    for attempt in range(2):  # two deliveries whose leases ran out: both triggers are dead
        await victim.dequeue_at(2, 1, t + timedelta(seconds=100 * attempt))
    later = await make_store()
    later.clock = OffsetClock(2000)  # past the last leases
    waiter = asyncio.create_task(
        pgqrs.run().message(await message(store, chosen)).store(later).result(timeout=10)
    )
    assert await pgqrs.admin(later).archive_dead_letter(chosen.message_id) is True
    with pytest.raises(pgqrs.WorkflowFailedError, match="became a dead letter after 2 deliveries"):
        await waiter
    assert await chosen.status() == "ERROR"
    assert await other.status() != "ERROR"
    assert await pgqrs.admin(later).archive_dead_letter(chosen.message_id) is False
    assert await pgqrs.admin(later).dlq(WF) == [other.message_id]


async def test_a_run_whose_worker_crashed_on_every_delivery_ends_in_error(
    store: pgqrs.Store, make_store: StoreFactory, t: datetime
) -> None:
    """No handler saw the last delivery (its worker died each time): the sweep of the next
    poll loop on the queue ends the run ERROR, and so does `dlq()`."""
    crashed, archived = await new_run(store), await new_run(store)
    await pgqrs.admin(store).update_queue(WF, max_read_ct=2)
    victim = await store.consumer(WF)
    for attempt in range(2):  # two deliveries whose leases ran out: the "crashes"
        await victim.dequeue_at(2, 1, t + timedelta(seconds=100 * attempt))
    loop_consumer = await store.consumer(WF)
    builder = pgqrs.dequeue().worker(loop_consumer).handle_workflow(lambda r: None)
    task = asyncio.create_task(builder.at(t + timedelta(seconds=1000)).poll(store))
    trigger = await message(store, crashed)
    with pytest.raises(pgqrs.WorkflowFailedError, match="became a dead letter"):
        await pgqrs.run().message(trigger).store(store).result(timeout=10)
    await loop_consumer.interrupt()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task, 10)
    assert await archived.status() == "ERROR"  # both triggers were dead letters
    later = await make_store()
    later.clock = OffsetClock(2000)  # past the loop's time: the last leases are over
    assert sorted(await pgqrs.admin(later).dlq(WF)) == sorted(
        [crashed.message_id, archived.message_id]
    )
