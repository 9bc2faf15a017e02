"""Child runs and fan-out / fan-in (beyond pgqrs, semantics.md §18.3-18.4)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

import pgqrs
from pgqrs.decorators import WorkflowDef, step, workflow

PARENT, CHILD = "parent", "child"


def child_flow(calls: Counter[str]) -> WorkflowDef:
    @workflow(name=CHILD)
    async def child(run: pgqrs.Run, n: int) -> int:
        calls[f"child {n}"] += 1
        if n < 0:
            raise ValueError(f"negative {n}")
        return n * 10

    return child


async def setup(store: pgqrs.Store) -> None:
    for name in (PARENT, CHILD):
        await pgqrs.workflow().name(name).store(store).create()


async def trigger(store: pgqrs.Store, value: Any) -> pgqrs.QueueMessage:
    return await pgqrs.workflow().name(PARENT).store(store).trigger(value).execute()


async def deliver(store: pgqrs.Store, queue: str, flow: Any) -> int:
    consumer = await store.consumer(queue)
    return await pgqrs.dequeue().worker(consumer).batch(10).handle_workflow(flow).execute(store)


async def deliver_failing(store: pgqrs.Store, queue: str, flow: Any) -> None:
    """`deliver`, where a handler fails: `execute()` re-raises its exception."""
    with pytest.raises(ValueError, match="negative"):
        await deliver(store, queue, flow)


async def outcome(store: pgqrs.Store, message: pgqrs.QueueMessage) -> Any:
    return await pgqrs.run().message(message).store(store).get()


async def runs_of(store: pgqrs.Store) -> list[pgqrs.RunRecord]:
    return await (await store.get_workflow_runs()).list()


async def test_child_runs_and_its_result_wakes_the_parent(store: pgqrs.Store) -> None:
    await setup(store)
    calls: Counter[str] = Counter()
    child = child_flow(calls)

    @workflow(name=PARENT)
    async def parent(run: pgqrs.Run, n: int) -> int:
        handle = await run.start_child(child, n)
        total: int = await handle.result()
        return total + 1

    message = await trigger(store, 4)
    assert await deliver(store, PARENT, parent) == 1  # starts the child, then waits for it
    assert await deliver(store, PARENT, parent) == 0  # nothing wakes it yet
    [parent_run] = [r for r in await runs_of(store) if r.message_id == message.id]
    [child_run] = [r for r in await runs_of(store) if r.parent_run_id == parent_run.id]
    assert (child_run.status, child_run.input) == (pgqrs.WorkflowStatus.Queued, {"input": 4})
    assert await deliver(store, CHILD, child) == 1  # the child ends and wakes its parent
    assert await deliver(store, PARENT, parent) == 1
    assert await outcome(store, message) == 41
    assert calls == Counter({"child 4": 1})


async def test_child_is_started_once_however_often_the_parent_runs(store: pgqrs.Store) -> None:
    await setup(store)

    @workflow(name=PARENT)
    async def parent(run: pgqrs.Run, _: Any) -> list[int]:
        first = await run.start_child(CHILD, 1)
        second = await run.start_child(CHILD, 2)
        named = await run.start_child(CHILD, 3, name="the third")
        return [first.run_id, second.run_id, named.run_id]

    run = await pgqrs.admin(store).create_workflow(PARENT, 0)
    ids = await parent(run)
    assert await parent(run) == ids  # executed again (a crash, a retry): the same children
    children = [r for r in await runs_of(store) if r.parent_run_id == run.id()]
    assert sorted(r.id for r in children) == sorted(ids)
    names = [s.step_name for s in await (await store.get_workflow_steps()).list_by_run(run.id())]
    assert names == ["__pgqrs_child__:child#1", "__pgqrs_child__:child#2", "the third"]
    assert (await pgqrs.admin(store).queue_metrics(CHILD)).total_messages == 3


async def test_child_failure_surfaces_in_the_parent(store: pgqrs.Store) -> None:
    await setup(store)
    child = child_flow(Counter())

    @workflow(name=PARENT)
    async def parent(run: pgqrs.Run, _: Any) -> str:
        handle = await run.start_child(child, -1)
        try:
            await handle.result()
        except pgqrs.WorkflowFailedError as exc:
            return f"child failed: {exc.error} (run {exc.run_id == handle.run_id})"
        return "no failure"

    message = await trigger(store, None)
    await deliver(store, PARENT, parent)
    await deliver_failing(store, CHILD, child)
    assert await deliver(store, PARENT, parent) == 1
    assert await outcome(store, message) == "child failed: negative -1 (run True)"


async def test_fan_out_children_and_gather_in_order(store: pgqrs.Store) -> None:
    await setup(store)
    calls: Counter[str] = Counter()
    child = child_flow(calls)

    @workflow(name=PARENT)
    async def parent(run: pgqrs.Run, n: int) -> list[Any]:
        handles = [await run.start_child(child, i) for i in range(1, n + 1)]
        return await run.gather(*handles)

    message = await trigger(store, 3)
    assert await deliver(store, PARENT, parent) == 1
    assert await deliver(store, CHILD, child) == 3
    assert await deliver(store, PARENT, parent) == 1
    assert await outcome(store, message) == [10, 20, 30]
    assert calls == Counter({"child 1": 1, "child 2": 1, "child 3": 1})


async def test_fan_out_fail_fast_or_collect_all(store: pgqrs.Store) -> None:
    await setup(store)
    child = child_flow(Counter())

    @workflow(name=PARENT)
    async def parent(run: pgqrs.Run, collect: bool) -> Any:
        handles = [await run.start_child(child, i) for i in (1, -2, 3)]
        try:
            results = await run.gather(*handles, return_exceptions=collect)
        except pgqrs.WorkflowFailedError as exc:
            return f"failed fast: {exc.error}"
        return [r if not isinstance(r, Exception) else "error" for r in results]

    fast = await trigger(store, False)
    collect = await trigger(store, True)
    assert await deliver(store, PARENT, parent) == 2
    await deliver_failing(store, CHILD, child)  # every claimed child settled, failures too
    assert await deliver(store, PARENT, parent) == 2
    assert await outcome(store, fast) == "failed fast: negative -2"
    assert await outcome(store, collect) == [10, "error", 30]


async def test_fan_out_parallel_steps_keep_partial_progress(store: pgqrs.Store) -> None:
    calls: Counter[str] = Counter()

    # Steps are keyed by name: parallel steps are distinct steps (or `@step(name=...)`).
    @step
    async def steady(run: pgqrs.Run, n: int) -> int:
        calls[f"steady {n}"] += 1
        return n

    @step
    async def other(run: pgqrs.Run, n: int) -> int:
        calls[f"steady {n}"] += 1
        return n

    @step(retry=pgqrs.StepRetryPolicy(max_attempts=3))
    async def flaky(run: pgqrs.Run) -> str:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise pgqrs.TransientStepError("not yet", retry_after=0)
        return "ok"

    @workflow(name=PARENT)
    async def parent(run: pgqrs.Run, _: Any) -> list[Any]:
        return await run.gather(steady(run, 1), flaky(run), other(run, 2))

    await setup(store)
    run = await pgqrs.admin(store).create_workflow(PARENT, 0)
    with pytest.raises(pgqrs.TransientStepError):
        await parent(run)
    assert await parent(run) == [1, "ok", 2]
    assert calls == Counter({"steady 1": 1, "steady 2": 1, "flaky": 2})  # no step ran twice


async def test_child_arguments_are_checked_before_anything_is_written(
    store: pgqrs.Store,
) -> None:
    await setup(store)
    run = await pgqrs.admin(store).create_workflow(PARENT, 0)
    with pytest.raises(TypeError, match="workflow"):
        await run.start_child(42, 1)
    with pytest.raises(pgqrs.SerializationError):
        await run.start_child(CHILD, {1, 2})
    with pytest.raises(ValueError, match="deadline"):
        await run.start_child(CHILD, 1, deadline=-1)
    assert await (await store.get_workflow_steps()).list_by_run(run.id()) == []
    assert [r.id for r in await runs_of(store)] == [run.id()]
