"""Runs: get-or-create, the guarded status machine (semantics.md §12.4), `get()` and `result()`."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

import pgqrs
from tests.support.target import StoreFactory
from tests.support.workflows import WF, message_of, new_run, run_in

STATES = ("QUEUED", "RUNNING", "PAUSED", "CANCELLING", "CANCELLED", "SUCCESS", "ERROR")
OPEN = ("QUEUED", "RUNNING", "PAUSED")
FINISHED = ("SUCCESS", "ERROR", "CANCELLED")


async def record(store: pgqrs.Store, run: pgqrs.Run) -> pgqrs.RunRecord:
    return await (await store.get_workflow_runs()).get(run.id())


# -- the status machine, one operation at a time, from every state --------------------------------


async def test_start(store: pgqrs.Store) -> None:
    for state in STATES:
        run = await run_in(store, state)
        before = await record(store, run)
        if state in ("QUEUED", "PAUSED", "RUNNING"):
            assert await run.start() is True
            after = await record(store, run)
            assert after.status == "RUNNING"
            assert after.started_at is not None
            if state != "QUEUED":  # started_at is set once
                assert after.started_at == before.started_at
        else:
            message = f"Validation failed: Run {run.id()} is in terminal {state} state"
            with pytest.raises(pgqrs.ValidationError) as info:
                await run.start()
            assert str(info.value) == message
            assert await record(store, run) == before  # nothing changed, not even CANCELLING


@pytest.mark.parametrize(
    ("operation", "to"),
    [("success", "SUCCESS"), ("complete", "SUCCESS"), ("fail", "ERROR"), ("pause", "PAUSED")],
)
async def test_finishing_transitions(store: pgqrs.Store, operation: str, to: str) -> None:
    async def apply(run: pgqrs.Run) -> bool:
        if operation == "pause":
            return await run.pause("wait for approval", 30)
        if operation == "fail":
            return await run.fail({"why": "broken"})
        return bool(await getattr(run, operation)({"total": 3}))

    for state in STATES:
        run = await run_in(store, state)
        before = await record(store, run)
        if state in OPEN:
            assert await apply(run) is True
            after = await record(store, run)
            assert after.status == to
            assert after.updated_at >= before.updated_at
            if to == "SUCCESS":
                assert after.output == {"total": 3}
                assert after.completed_at is not None
            elif to == "ERROR":
                assert after.error == {"why": "broken"}
                assert after.completed_at is not None
            else:
                assert after.error == {"message": "wait for approval", "resume_after": 30}
                assert after.paused_at is not None
                assert after.completed_at is None
        elif state == "CANCELLING":
            with pytest.raises(pgqrs.WorkflowCancelledError) as info:
                await apply(run)
            assert str(info.value) == f"Workflow cancelled for run {run.id()}"
            assert info.value.run_id == run.id()
            after = await record(store, run)
            assert after.status == "CANCELLED"  # the request is finalised
            assert after.completed_at is not None
        else:
            with pytest.raises(pgqrs.StateTransitionError) as refused:
                await apply(run)
            assert str(refused.value) == (
                f"Invalid state transition from {state} to {to}: run {run.id()} is already finished"
            )
            assert await record(store, run) == before


async def test_cancel(store: pgqrs.Store) -> None:
    for state in STATES:
        run = await run_in(store, state)
        before = await record(store, run)
        if state in (*OPEN, "CANCELLING"):
            assert await run.cancel() is True
            after = await record(store, run)
            assert after.status == "CANCELLING"
            assert after.completed_at is None
        else:
            with pytest.raises(pgqrs.StateTransitionError) as info:
                await run.cancel()
            assert str(info.value) == (
                f"Invalid state transition from {state} to CANCELLING: "
                f"run {run.id()} is already finished"
            )
            assert await record(store, run) == before


async def test_cancellation_is_finalised_by_step_acquisition(store: pgqrs.Store) -> None:
    run = await run_in(store, "CANCELLING")
    with pytest.raises(pgqrs.WorkflowCancelledError):
        await run.acquire_step("first")
    assert await run.status() == "CANCELLED"
    assert (await record(store, run)).completed_at is not None
    with pytest.raises(pgqrs.WorkflowCancelledError):
        await run.acquire_step("first")  # still refused once CANCELLED
    assert await (await store.get_workflow_steps()).list_by_run(run.id()) == []


async def test_bad_arguments_change_nothing(store: pgqrs.Store) -> None:
    run = await new_run(store)
    with pytest.raises(ValueError):
        await run.pause("later", -1)
    with pytest.raises(pgqrs.SerializationError):
        await run.success({"not json": object()})
    with pytest.raises(pgqrs.SerializationError):
        await run.fail(float("nan"))
    assert await run.status() == "QUEUED"


# -- the handle ---------------------------------------------------------------------------------


async def test_run_handle(store: pgqrs.Store) -> None:
    run = await new_run(store, {"x": 1})
    message = await message_of(store, run)
    assert run.message_id == message.id
    assert run.id() == (await record(store, run)).id
    assert run.input == {"input": {"x": 1}}
    assert run.current_time is None
    assert run.retry_policy is None
    timed = run.with_time("2030-01-02T03:04:05Z")
    assert timed.current_time == "2030-01-02T03:04:05+00:00"
    assert timed.id() == run.id()
    assert run.current_time is None  # with_time gives a new handle
    with pytest.raises(ValueError, match="Invalid ISO 8601 timestamp 'yesterday'"):
        run.with_time("yesterday")
    with pytest.raises(ValueError):
        run.with_time(datetime(2030, 1, 1))  # naive
    policy = pgqrs.StepRetryPolicy(max_attempts=1)
    assert run.with_retry(policy).retry_policy == policy
    assert run.with_retry(policy).with_retry(None).retry_policy is None
    with pytest.raises(TypeError):
        run.with_retry(3)  # type: ignore[arg-type]
    await run.start()
    fresh = await run.refresh()
    assert fresh.id() == run.id()
    assert await fresh.status() == pgqrs.WorkflowStatus.Running
    await pgqrs.admin(store).purge_queue(WF)
    with pytest.raises(pgqrs.NotFoundError, match=f"Run {run.id()} not found"):
        await run.refresh()


async def test_run_builder_gets_or_creates(store: pgqrs.Store) -> None:
    await pgqrs.workflow().name(WF).store(store).create()
    message = await pgqrs.workflow().name(WF).store(store).trigger([1, 2]).execute()
    runs = await asyncio.gather(
        *(pgqrs.run().message(message).store(store).execute() for _ in range(4))
    )
    assert len({r.id() for r in runs}) == 1  # racing creators end with one run
    [created] = await (await store.get_workflow_runs()).list()
    assert created.status == "QUEUED"
    assert created.input == {"input": [1, 2]}
    assert runs[0].input == {"input": [1, 2]}


async def test_run_builder_errors(store: pgqrs.Store, queue: str) -> None:
    with pytest.raises(pgqrs.ValidationError, match=r"^Validation failed: store is required$"):
        await pgqrs.run().execute()
    with pytest.raises(pgqrs.ValidationError, match=r"^Validation failed: message is required$"):
        await pgqrs.run().store(store).execute()
    with pytest.raises(TypeError):
        pgqrs.run().message({"id": 1})  # type: ignore[arg-type]
    mid = await pgqrs.produce(store, queue, {"input": 1})
    message = await (await store.get_messages()).get(mid)
    with pytest.raises(pgqrs.NotFoundError, match="No workflow registered for queue 'jobs'"):
        await pgqrs.run().message(message).store(store).execute()


# -- results ------------------------------------------------------------------------------------


async def test_get_outcomes(store: pgqrs.Store) -> None:
    await pgqrs.workflow().name(WF).store(store).create()
    message = await pgqrs.workflow().name(WF).store(store).trigger(1).execute()
    assert await pgqrs.run().message(message).store(store).get() is None  # no run yet
    for state in ("QUEUED", "RUNNING", "PAUSED", "CANCELLING"):
        run = await run_in(store, state)
        builder = pgqrs.run().message(await message_of(store, run)).store(store)
        assert await builder.get() is None
    run = await run_in(store, "SUCCESS")
    assert await pgqrs.run().message(await message_of(store, run)).store(store).get() == {
        "done": True
    }
    run = await new_run(store)
    await run.success(None)
    assert await pgqrs.run().message(await message_of(store, run)).store(store).get() is None
    run = await run_in(store, "ERROR")
    with pytest.raises(pgqrs.WorkflowFailedError) as failed:
        await pgqrs.run().message(await message_of(store, run)).store(store).get()
    assert str(failed.value) == f'Workflow run {run.id()} failed: "broken"'
    assert failed.value.run_id == run.id()
    assert failed.value.error == "broken"
    run = await run_in(store, "CANCELLED")
    with pytest.raises(pgqrs.WorkflowCancelledError) as cancelled:
        await pgqrs.run().message(await message_of(store, run)).store(store).result()
    assert str(cancelled.value) == f"Workflow cancelled for run {run.id()}"
    assert cancelled.value.run_id == run.id()


async def test_result_times_out(store: pgqrs.Store) -> None:
    run = await new_run(store)
    builder = pgqrs.run().message(await message_of(store, run)).store(store)
    started = time.monotonic()
    with pytest.raises(pgqrs.TimeoutError) as info:
        await builder.result(timeout=0.2)
    assert time.monotonic() - started >= 0.2
    assert str(info.value) == (
        f"Operation timeout: no result for message {run.message_id} after 0.2s"
    )
    assert not isinstance(info.value, TimeoutError)  # the builtin is unrelated
    with pytest.raises(pgqrs.TimeoutError):
        await builder.result(timeout=0)


@pytest.mark.serial  # a 0.4 s bound: not beside another worker's load
async def test_result_waits_for_the_run_to_finish(store: pgqrs.Store) -> None:
    run = await new_run(store)
    builder = pgqrs.run().message(await message_of(store, run)).store(store)
    waiter = asyncio.create_task(builder.result(timeout=10))
    await asyncio.sleep(0)  # let the waiter make its first check
    assert not waiter.done()
    started = time.monotonic()
    await run.success([1, 2, 3])
    assert await waiter == [1, 2, 3]
    assert time.monotonic() - started < 0.4  # woken by the change, not by the 500 ms re-read


async def test_result_sees_runs_finished_by_another_store(
    store: pgqrs.Store, make_store: StoreFactory
) -> None:
    other = await make_store()
    run = await new_run(store)
    builder = pgqrs.run().message(await message_of(store, run)).store(other)
    waiter = asyncio.create_task(builder.result(timeout=10))
    await asyncio.sleep(0)
    await run.fail("nope")
    with pytest.raises(pgqrs.WorkflowFailedError):
        await waiter
