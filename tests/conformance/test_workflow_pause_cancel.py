"""Pause and resume, and cancellation while queued, running or paused, through the loop."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pgqrs
from pgqrs.decorators import WorkflowDef, step, workflow
from tests.support.workflows import WF, at, message_of, new_run


@pytest.fixture
def t() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=5)


async def execute(store: pgqrs.Store, fn: Any, when: datetime) -> int:
    consumer = await store.consumer(WF)
    return await pgqrs.dequeue().worker(consumer).handle_workflow(fn).at(when).execute(store)


def approval_flow(calls: Counter[str], approved: dict[str, bool]) -> WorkflowDef:
    @step
    async def prepare(run: pgqrs.Run) -> str:
        calls["prepare"] += 1
        return "draft"

    @step
    async def publish(run: pgqrs.Run, draft: str) -> str:
        calls["publish"] += 1
        return draft + ":published"

    @workflow(name=WF)
    async def flow(run: pgqrs.Run, _: Any) -> str:
        draft = await prepare(run)
        if not approved["yes"]:
            await run.pause("waiting for approval", 60)
            raise pgqrs.PausedError("not approved yet", resume_after=60)
        return await publish(run, draft)

    return flow


async def test_pause_and_resume(store: pgqrs.Store, t: datetime) -> None:
    calls: Counter[str] = Counter()
    approved = {"yes": False}
    flow = approval_flow(calls, approved)
    run = await new_run(store)
    assert await execute(store, flow, t) == 1
    record = await (await store.get_workflow_runs()).get(run.id())
    assert record.status == "PAUSED"
    assert record.error == {"message": "waiting for approval", "resume_after": 60}
    assert await execute(store, flow, at(t, 30)) == 0  # parked until the pause ends
    approved["yes"] = True
    assert await execute(store, flow, at(t, 61)) == 1
    builder = pgqrs.run().message(await message_of(store, run)).store(store)
    assert await builder.result(timeout=1) == "draft:published"
    assert calls == Counter({"prepare": 1, "publish": 1})
    assert (await message_of(store, run)).read_ct == 1  # the pause gave its claim back


async def test_cancel_while_queued(store: pgqrs.Store, t: datetime) -> None:
    calls: Counter[str] = Counter()
    run = await new_run(store)
    assert await run.cancel() is True
    assert await execute(store, approval_flow(calls, {"yes": True}), t) == 1
    assert calls == Counter()
    assert await run.status() == "CANCELLED"
    assert (await message_of(store, run)).archived_at is not None
    with pytest.raises(pgqrs.WorkflowCancelledError):
        await pgqrs.run().message(await message_of(store, run)).store(store).result(timeout=1)


async def test_cancel_while_running(store: pgqrs.Store, t: datetime) -> None:
    calls: Counter[str] = Counter()

    @step
    async def first(run: pgqrs.Run) -> None:
        calls["first"] += 1
        # Another process cancels the run while this step works.
        other = await pgqrs.run().message(await message_of(store, run)).store(store).execute()
        await other.cancel()

    @step
    async def second(run: pgqrs.Run) -> None:
        calls["second"] += 1

    @workflow(name=WF)
    async def flow(run: pgqrs.Run, _: Any) -> None:
        await first(run)
        await second(run)

    run = await new_run(store)
    assert await execute(store, flow, t) == 1
    assert calls == Counter({"first": 1})
    assert await run.status() == "CANCELLED"
    assert (await message_of(store, run)).archived_at is not None
    with pytest.raises(pgqrs.WorkflowCancelledError):
        await pgqrs.run().message(await message_of(store, run)).store(store).get()


async def test_cancel_while_paused(store: pgqrs.Store, t: datetime) -> None:
    calls: Counter[str] = Counter()
    flow = approval_flow(calls, {"yes": False})
    run = await new_run(store)
    await execute(store, flow, t)
    assert await run.status() == "PAUSED"
    await run.cancel()
    assert await run.status() == "CANCELLING"
    assert await execute(store, flow, at(t, 61)) == 1  # the loop meets it when it comes back
    assert calls == Counter({"prepare": 1})
    assert await run.status() == "CANCELLED"
    assert (await message_of(store, run)).archived_at is not None


async def test_pausing_a_cancelling_run_finalises_it(store: pgqrs.Store) -> None:
    run = await new_run(store)
    await run.start()
    await run.cancel()
    with pytest.raises(pgqrs.WorkflowCancelledError):
        await run.pause("later", 5)
    assert await run.status() == "CANCELLED"
