"""Durable sleep (beyond pgqrs): `await run.sleep(s)` pauses the run; resumption skips it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pgqrs
from pgqrs.decorators import WorkflowDef, step, workflow
from tests.support.workflows import WF, at, message_of, new_run, parse

T0 = datetime(2030, 1, 1, tzinfo=UTC)
SLEEP_1 = "__pgqrs_sleep__#1"


def sleepy_flow(calls: Counter[str], seconds: float = 60) -> WorkflowDef:
    @step
    async def before(run: pgqrs.Run) -> int:
        calls["before"] += 1
        return 1

    @step
    async def after(run: pgqrs.Run, x: int) -> int:
        calls["after"] += 1
        return x + 1

    @workflow(name=WF)
    async def flow(run: pgqrs.Run, _: Any) -> int:
        x = await before(run)
        await run.sleep(seconds)
        return await after(run, x)

    return flow


async def test_a_sleeping_run_resumes_after_the_sleep(store: pgqrs.Store) -> None:
    calls: Counter[str] = Counter()
    flow = sleepy_flow(calls)
    run = await new_run(store)
    consumer = await store.consumer(WF)
    t = datetime.now(UTC) + timedelta(seconds=1)

    async def deliver(when: datetime) -> int:
        loop = pgqrs.dequeue().worker(consumer).handle_workflow(flow).at(when)
        return await loop.execute(store)

    assert await deliver(t) == 1
    record = await (await store.get_workflow_runs()).get(run.id())
    assert record.status == "PAUSED"
    message = await message_of(store, run)
    assert message.consumer_worker_id is None
    assert message.read_ct == 0
    assert parse(message.vt) >= at(t, 59)  # visible again when the sleep ends, not before
    assert await deliver(at(t, 30)) == 0
    assert await deliver(at(t, 61)) == 1
    assert await run.status() == "SUCCESS"
    assert await pgqrs.run().message(message).store(store).get() == 2
    assert calls == Counter({"before": 1, "after": 1})
    steps = await (await store.get_workflow_steps()).list_by_run(run.id())
    assert [s.step_name for s in steps] == ["before", SLEEP_1, "after"]
    assert steps[1].output == {"wake_at": at(t, 60).isoformat(), "seconds": 60}


async def test_an_early_wake_up_sleeps_only_the_rest(store: pgqrs.Store) -> None:
    calls: Counter[str] = Counter()
    flow = sleepy_flow(calls)
    run = await new_run(store)
    with pytest.raises(pgqrs.PausedError) as info:
        await flow(run.with_time(T0))
    assert info.value.resume_after == 60
    with pytest.raises(pgqrs.PausedError) as info:
        await flow(run.with_time(at(T0, 20)))  # delivered early (say, by an operator)
    assert info.value.resume_after == 40
    record = await (await store.get_workflow_runs()).get(run.id())
    assert (record.status, record.error["resume_after"]) == (pgqrs.WorkflowStatus.Paused, 40)
    assert await flow(run.with_time(at(T0, 60))) == 2
    assert calls == Counter({"before": 1, "after": 1})
    [sleep] = [s for s in await (await store.get_workflow_steps()).list() if s.step_name == SLEEP_1]
    assert sleep.output["wake_at"] == at(T0, 60).isoformat()  # recorded once


async def test_sleeps_are_numbered_and_zero_does_not_pause(store: pgqrs.Store) -> None:
    @workflow(name=WF)
    async def flow(run: pgqrs.Run, _: Any) -> str:
        await run.sleep(0)
        await run.sleep(5)
        await run.sleep(1, name="custom")
        return "awake"

    run = (await new_run(store)).with_time(T0)
    with pytest.raises(pgqrs.PausedError):
        await flow(run)
    with pytest.raises(pgqrs.PausedError) as info:
        await flow(run.with_time(at(T0, 5)))
    assert info.value.resume_after == 1
    assert await flow(run.with_time(at(T0, 6))) == "awake"
    names = [s.step_name for s in await (await store.get_workflow_steps()).list_by_run(run.id())]
    assert names == ["__pgqrs_sleep__#1", "__pgqrs_sleep__#2", "custom"]


async def test_sleep_arguments_and_cancellation(store: pgqrs.Store) -> None:
    run = await new_run(store)
    with pytest.raises(ValueError):
        await run.sleep(-1)
    with pytest.raises(TypeError):
        await run.sleep("soon")  # type: ignore[arg-type]
    await run.cancel()
    with pytest.raises(pgqrs.WorkflowCancelledError):
        await run.sleep(1)
    assert await run.status() == "CANCELLED"
