"""Signals and events (beyond pgqrs, semantics.md §18.1-18.2): `run.recv`, `pgqrs.send_signal`,
`run.set_event`, `pgqrs.get_event`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pgqrs
from pgqrs.decorators import WorkflowDef, step, workflow
from tests.support.workflows import WF, at, message_of, new_run, parse

RECV_1 = "__pgqrs_recv__:approval#1"
CANCELLED, ERROR = pgqrs.WorkflowStatus.Cancelled, pgqrs.WorkflowStatus.Error


def approval_flow(timeout: float | None = None) -> WorkflowDef:
    @workflow(name=WF)
    async def flow(run: pgqrs.Run, _: Any) -> Any:
        signal = await run.recv("approval", timeout=timeout)
        return None if signal is None else signal.payload

    return flow


async def deliver(store: pgqrs.Store, flow: Any, when: datetime | None = None) -> int:
    consumer = await store.consumer(WF)
    loop = pgqrs.dequeue().worker(consumer).handle_workflow(flow)
    if when is not None:
        loop = loop.at(when)
    return await loop.execute(store)


async def test_recv_waits_durably_until_a_signal_arrives(store: pgqrs.Store) -> None:
    run = await new_run(store)
    flow = approval_flow()
    assert await deliver(store, flow) == 1
    assert await run.status() == "RUNNING"  # waiting, with its message given back
    message = await message_of(store, run)
    assert (message.consumer_worker_id, message.read_ct) == (None, 0)
    assert await deliver(store, flow) == 0  # nothing to do until a signal comes
    signal_id = await pgqrs.send_signal(store, run.id(), "approval", {"by": "ann"})
    assert signal_id > 0
    assert await deliver(store, flow) == 1  # the signal made the message visible
    assert await run.status() == "SUCCESS"
    assert await pgqrs.run().message(message).store(store).get() == {"by": "ann"}
    steps = await (await store.get_workflow_steps()).list_by_run(run.id())
    assert [s.step_name for s in steps] == [RECV_1]
    assert steps[0].output["signal"]["payload"] == {"by": "ann"}


async def test_recv_consumes_each_signal_once_in_order_per_topic(store: pgqrs.Store) -> None:
    @workflow(name=WF)
    async def flow(run: pgqrs.Run, _: Any) -> list[Any]:
        first = await run.recv("t")
        other = await run.recv("u")
        second = await run.recv("t")
        assert first is not None
        assert other is not None
        assert second is not None
        return [first.payload, other.payload, second.payload, first.id < second.id]

    run = await new_run(store)
    await pgqrs.send_signal(store, run.id(), "t", 1)
    await pgqrs.send_signal(store, run.id(), "u", "x")
    with pytest.raises(pgqrs.RunWaitingError) as info:
        await flow(run)  # t and u received; the second t is not there yet
    assert (info.value.waiting_for, info.value.until) == ("signal:t", None)
    await pgqrs.send_signal(store, run.id(), "t", 2)
    await pgqrs.send_signal(store, run.id(), "t", 3)  # left for a later receive
    assert await flow(run) == [1, "x", 2, True]  # executed again: the first two come back
    assert await flow(run) == [1, "x", 2, True]  # a finished run returns its output
    names = [s.step_name for s in await (await store.get_workflow_steps()).list_by_run(run.id())]
    assert names == ["__pgqrs_recv__:t#1", "__pgqrs_recv__:u#1", "__pgqrs_recv__:t#2"]


async def test_recv_timeout_returns_none_and_leaves_later_signals(store: pgqrs.Store) -> None:
    run = await new_run(store)
    flow = approval_flow(timeout=60)
    t = datetime.now(UTC)
    assert await deliver(store, flow, t) == 1
    message = await message_of(store, run)
    assert parse(message.vt) >= at(t, 59)  # comes back when the timeout ends
    assert await deliver(store, flow, at(t, 61)) == 1
    assert await run.status() == "SUCCESS"
    assert await pgqrs.run().message(message).store(store).get() is None
    step_row = (await (await store.get_workflow_steps()).list_by_run(run.id()))[0]
    assert step_row.output == {"timed_out": True}


async def test_recv_is_woken_by_a_signal_sent_while_the_run_executes(store: pgqrs.Store) -> None:
    """The signal lands after the run looked and before its message is given back: the worker
    looks again under the run's lock, so the message is visible at once, not at the timeout."""
    run = await new_run(store)
    flow = approval_flow(timeout=3600)

    async def racing(r: pgqrs.Run) -> Any:
        try:
            return await flow(r)
        except pgqrs.RunWaitingError:
            await pgqrs.send_signal(store, r.id(), "approval", 7)  # the message is still held
            raise

    assert await deliver(store, racing) == 1
    message = await message_of(store, run)
    assert parse(message.vt) <= datetime.now(UTC) + timedelta(seconds=5)
    assert await deliver(store, flow) == 1
    assert await pgqrs.run().message(message).store(store).get() == 7


async def test_recv_on_a_trigger_message_before_its_first_delivery(store: pgqrs.Store) -> None:
    await pgqrs.workflow().name(WF).store(store).create()
    message = await pgqrs.workflow().name(WF).store(store).trigger({"n": 1}).execute()
    await pgqrs.send_signal(store, message, "approval", "early")  # creates the run
    assert await deliver(store, approval_flow()) == 1
    assert await pgqrs.run().message(message).store(store).get() == "early"


async def test_send_signal_refusals_write_nothing(store: pgqrs.Store) -> None:
    run = await new_run(store)
    with pytest.raises(pgqrs.ValidationError, match="topic"):
        await pgqrs.send_signal(store, run.id(), "", 1)
    with pytest.raises(TypeError, match="topic"):
        await pgqrs.send_signal(store, run.id(), 5, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="run"):
        await pgqrs.send_signal(store, "1", "t", 1)
    with pytest.raises(pgqrs.SerializationError):
        await pgqrs.send_signal(store, run.id(), "t", {1, 2})
    with pytest.raises(pgqrs.NotFoundError):
        await pgqrs.send_signal(store, 999_999, "t", 1)
    await run.success("done")
    with pytest.raises(pgqrs.StateTransitionError, match="SUCCESS"):
        await pgqrs.send_signal(store, run.id(), "t", 1)
    with pytest.raises(ValueError, match="timeout"):
        await run.recv("t", timeout=-1)


async def test_set_event_and_get_event(store: pgqrs.Store) -> None:
    @step
    async def charge(run: pgqrs.Run) -> int:
        return 42

    @workflow(name=WF)
    async def flow(run: pgqrs.Run, _: Any) -> str:
        await run.set_event("stage", "charging")
        await run.set_event("stage", {"charged": await charge(run)})  # the latest value wins
        return "ok"

    run = await new_run(store)
    assert await pgqrs.get_event(store, run.id(), "stage", timeout=0) is None
    waiter = asyncio.create_task(pgqrs.get_event(store, run.id(), "stage", timeout=30))
    await asyncio.sleep(0)  # the waiter looks once and waits
    assert await deliver(store, flow) == 1
    first = await waiter  # woken by the first set_event (or sees the second)
    assert first is not None
    assert first.key == "stage"
    event = await pgqrs.get_event(store, run, "stage")
    assert event is not None
    assert event.value == {"charged": 42}
    assert event.updated_at
    with pytest.raises(pgqrs.NotFoundError):
        await pgqrs.get_event(store, 999_999, "stage", timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        await pgqrs.get_event(store, run.id(), "stage", timeout=-1)


# -- deadlines and step timeouts (semantics.md §18.5) -------------------------------------------


async def test_deadline_cancels_a_run_not_finished_in_time(store: pgqrs.Store) -> None:
    await pgqrs.workflow().name(WF).store(store).create()
    builder = pgqrs.workflow().name(WF).store(store).trigger(1)
    message = await builder.deadline(60).execute()
    runs = await (await store.get_workflow_runs()).list()
    [record] = runs
    assert record.deadline_at is not None
    assert record.status == "QUEUED"
    deadline = parse(record.deadline_at)
    flow = approval_flow()  # waits for a signal that never comes
    assert await deliver(store, flow, at(deadline, -30)) == 1
    waiting = await message_of(store, pgqrs.Run._wrap(store, record))
    assert parse(waiting.vt) <= deadline  # woken at the deadline, not later
    assert await deliver(store, flow, at(deadline, 1)) == 1
    record = await (await store.get_workflow_runs()).get(record.id)
    assert record.status == "CANCELLED"
    assert record.error["reason"] == "deadline_exceeded"
    with pytest.raises(pgqrs.WorkflowCancelledError) as info:
        await pgqrs.run().message(message).store(store).result(timeout=5)
    assert info.value.reason["reason"] == "deadline_exceeded"


async def test_deadline_cuts_a_running_handler_short(store: pgqrs.Store) -> None:
    await pgqrs.workflow().name(WF).store(store).create()
    await pgqrs.workflow().name(WF).store(store).trigger(1).deadline(60).execute()
    [record] = await (await store.get_workflow_runs()).list()
    never = asyncio.Event()

    @workflow(name=WF)
    async def stuck(run: pgqrs.Run, _: Any) -> None:
        await never.wait()

    # The loop's time is 50 ms before the deadline: the handler gets 50 ms.
    assert await deliver(store, stuck, at(parse(record.deadline_at), -0.05)) == 1
    record = await (await store.get_workflow_runs()).get(record.id)
    assert (record.status, record.error["reason"]) == (CANCELLED, "deadline_exceeded")


async def test_timeout_step_fails_transiently_and_the_retry_policy_applies(
    store: pgqrs.Store,
) -> None:
    never = asyncio.Event()
    calls: list[int] = []

    @step(timeout=0.05, retry=pgqrs.StepRetryPolicy(max_attempts=1))
    async def slow(run: pgqrs.Run) -> str:
        calls.append(1)
        if len(calls) == 1:
            await never.wait()
        return "fast enough"

    @workflow(name=WF)
    async def flow(run: pgqrs.Run, _: Any) -> str:
        return await slow(run)

    run = await new_run(store)
    with pytest.raises(pgqrs.WorkflowTimeoutError) as info:
        await flow(run)
    assert isinstance(info.value, pgqrs.TransientStepError)
    [row] = await (await store.get_workflow_steps()).list_by_run(run.id())
    assert (row.status, row.error["code"], row.retry_count) == (ERROR, "STEP_TIMEOUT", 1)
    assert await flow(run.with_time(parse(row.retry_at))) == "fast enough"
    with pytest.raises(ValueError, match="timeout"):
        step(timeout=-1)
