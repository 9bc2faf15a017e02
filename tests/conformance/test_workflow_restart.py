"""Restarting a finished run from a step (semantics.md §19.1), on every backend: the steps
before it keep their results, it and the later ones run again, the trigger is delivered again."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pgqrs
import pgqrs.sync
from pgqrs.decorators import WorkflowDef, step, workflow
from tests.support.target import Target
from tests.support.workflows import WF, message_of, new_run, run_in, step_row

S = pgqrs.WorkflowStatus


class Flow:
    """A 3-step workflow that counts the executions of its steps; `fail` names steps that
    fail (for good) the next time they run."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.fail: set[str] = set()

        @step
        async def one(run: pgqrs.Run, x: int) -> int:
            return self.count("one", x + 1)

        @step
        async def two(run: pgqrs.Run, x: int) -> int:
            return self.count("two", x * 10)

        @step
        async def three(run: pgqrs.Run, x: int) -> int:
            return self.count("three", x + 5)

        @workflow(name=WF)
        async def flow(run: pgqrs.Run, x: int) -> int:
            return await three(run, await two(run, await one(run, x)))

        self.flow: WorkflowDef = flow

    def count(self, name: str, value: int) -> int:
        self.calls[name] += 1
        if name in self.fail:
            self.fail.discard(name)
            raise RuntimeError(f"{name} broke")
        return value

    async def deliver(self, store: pgqrs.Store) -> int:
        """One claim of a workflow worker; the number of triggers it handled."""
        consumer = await store.consumer(WF)
        loop = pgqrs.dequeue().worker(consumer).handle_workflow(self.flow)
        try:
            return await loop.at(datetime.now(UTC) + timedelta(seconds=5)).execute(store)
        except RuntimeError:  # execute() re-raises what the workflow raised, once settled
            return 1
        finally:
            await consumer.shutdown()


async def failed_at_two(store: pgqrs.Store) -> tuple[Flow, pgqrs.Run]:
    flow = Flow()
    flow.fail.add("two")
    run = await new_run(store, 1)
    assert await flow.deliver(store) == 1
    assert await run.status() == "ERROR"
    assert flow.calls == Counter({"one": 1, "two": 1})
    assert (await message_of(store, run)).archived_at is not None
    return flow, run


async def step_names(store: pgqrs.Store, run: pgqrs.Run) -> list[str]:
    return [s.step_name for s in await (await store.get_workflow_steps()).list_by_run(run.id())]


async def test_restart_run_from_the_failed_step_runs_it_and_the_later_ones(
    store: pgqrs.Store,
) -> None:
    flow, run = await failed_at_two(store)
    admin = pgqrs.admin(store)
    done = await admin.restart_run(run.id(), from_step="two")
    assert (done.from_step, done.kept_steps, done.removed_steps) == ("two", ("one",), ("two",))
    assert done.redelivered_signals == 0
    record = done.run
    assert (record.id, record.status, record.output, record.error) == (
        run.id(),
        S.Queued,
        None,
        None,
    )
    assert (record.completed_at, record.paused_at) == (None, None)
    assert record.started_at is not None  # when the run first started, kept
    assert await step_names(store, run) == ["one"]
    trigger = await message_of(store, run)
    assert (trigger.archived_at, trigger.consumer_worker_id, trigger.read_ct) == (None, None, 0)

    assert await flow.deliver(store) == 1
    assert flow.calls == Counter({"one": 1, "two": 2, "three": 1})
    assert await run.status() == "SUCCESS"
    assert (await (await store.get_workflow_runs()).get(run.id())).output == 25
    assert await step_names(store, run) == ["one", "two", "three"]
    assert (await message_of(store, run)).archived_at is not None
    message = await message_of(store, run)
    assert await pgqrs.run().message(message).store(store).result(timeout=1) == 25


async def test_restart_run_of_a_success_run_from_its_first_step_runs_every_step(
    store: pgqrs.Store,
) -> None:
    flow = Flow()
    run = await new_run(store, 2)
    await flow.deliver(store)
    assert await run.status() == "SUCCESS"
    done = await pgqrs.admin(store).restart_run(run.id(), "one")
    assert done.kept_steps == ()
    assert done.removed_steps == ("one", "two", "three")
    assert await step_names(store, run) == []
    await flow.deliver(store)
    assert flow.calls == Counter({"one": 2, "two": 2, "three": 2})
    assert await run.status() == "SUCCESS"


async def test_restart_run_from_a_later_step_keeps_the_earlier_results(store: pgqrs.Store) -> None:
    flow = Flow()
    run = await new_run(store, 2)
    await flow.deliver(store)
    first = await step_row(store, run, "two")
    done = await pgqrs.admin(store).restart_run(run.id(), "three")
    assert done.kept_steps == ("one", "two")
    await flow.deliver(store)
    assert flow.calls == Counter({"one": 1, "two": 1, "three": 2})
    assert await step_row(store, run, "two") == first  # untouched, not run again


async def test_restart_run_without_a_step_starts_at_the_first_failed_step(
    store: pgqrs.Store,
) -> None:
    flow, run = await failed_at_two(store)
    admin = pgqrs.admin(store)
    done = await admin.restart_run(run.id())
    assert (done.from_step, done.kept_steps) == ("two", ("one",))
    await flow.deliver(store)
    assert flow.calls == Counter({"one": 1, "two": 2, "three": 1})
    # No failed step: from the beginning.
    done = await admin.restart_run(run.id())
    assert (done.from_step, done.kept_steps) == ("one", ())
    assert done.removed_steps == ("one", "two", "three")


async def test_restart_run_of_a_cancelled_run(store: pgqrs.Store) -> None:
    run = await new_run(store, 1)
    await run.start()
    await run.complete_step("one", 2)
    await run.cancel()
    with pytest.raises(pgqrs.WorkflowCancelledError):
        await run.acquire_step("two")  # acquisition finalises the cancellation
    assert await run.status() == "CANCELLED"
    done = await pgqrs.admin(store).restart_run(run.id())
    assert (done.run.status, done.from_step, done.removed_steps) == (S.Queued, "one", ("one",))
    flow = Flow()
    assert await flow.deliver(store) == 1
    assert await run.status() == "SUCCESS"
    assert flow.calls == Counter({"one": 1, "two": 1, "three": 1})


async def test_restart_run_of_a_dead_lettered_trigger(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    run = await new_run(store)
    await admin.update_queue(WF, max_read_ct=1)
    consumer = await store.consumer(WF)

    async def crash(r: pgqrs.Run) -> None:
        await r.start()
        raise ValueError("not a workflow's failure: the handler itself broke")

    loop = pgqrs.dequeue().worker(consumer).handle_workflow(crash)
    with pytest.raises(ValueError):
        await loop.at(datetime.now(UTC) + timedelta(seconds=5)).execute(store)
    await consumer.shutdown()
    assert await run.status() == "ERROR"  # its trigger became a dead letter
    assert await admin.dlq(WF) == [run.message_id]
    await admin.update_queue(WF, max_read_ct=5)

    await admin.restart_run(run.id())
    trigger = await message_of(store, run)
    assert (trigger.archived_at, trigger.read_ct) == (None, 0)
    assert await admin.dlq_list(WF) == []
    flow = Flow()
    assert await flow.deliver(store) == 1
    assert await run.status() == "SUCCESS"


@pytest.mark.parametrize("state", ["QUEUED", "RUNNING", "PAUSED"])
async def test_restart_run_refuses_an_open_run(store: pgqrs.Store, state: str) -> None:
    run = await run_in(store, state)
    await run.complete_step("kept", 1)
    with pytest.raises(pgqrs.StateTransitionError) as refused:
        await pgqrs.admin(store).restart_run(run.id())
    assert str(refused.value) == (
        f"Run {run.id()} is {state}: only a finished run (SUCCESS, ERROR or CANCELLED) can be "
        "restarted; wait for it to finish, or cancel it and restart it once it is CANCELLED"
    )
    assert await run.status() == state
    assert await step_names(store, run) == ["kept"]


async def test_restart_run_refuses_a_run_being_cancelled(store: pgqrs.Store) -> None:
    run = await run_in(store, "CANCELLING")
    with pytest.raises(pgqrs.StateTransitionError, match="is CANCELLING: restart it once"):
        await pgqrs.admin(store).restart_run(run.id())
    assert await run.status() == "CANCELLING"


async def test_restart_run_refuses_an_unknown_step_and_changes_nothing(
    store: pgqrs.Store,
) -> None:
    _, run = await failed_at_two(store)
    before = await (await store.get_workflow_runs()).get(run.id())
    with pytest.raises(pgqrs.NotFoundError) as refused:
        await pgqrs.admin(store).restart_run(run.id(), from_step="four")
    assert str(refused.value) == (
        f"Step 'four' of run {run.id()} not found; its steps, in the order they started: "
        "'one', 'two'"
    )
    assert await (await store.get_workflow_runs()).get(run.id()) == before
    assert await step_names(store, run) == ["one", "two"]
    assert (await message_of(store, run)).archived_at is not None


async def test_restart_run_refuses_bad_arguments(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    with pytest.raises(pgqrs.NotFoundError, match=r"^Run 999 not found$"):
        await admin.restart_run(999)
    run = await run_in(store, "SUCCESS")
    with pytest.raises(pgqrs.NotFoundError, match="its steps, in the order they started: none"):
        await admin.restart_run(run.id(), "one")
    with pytest.raises(TypeError):
        await admin.restart_run("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await admin.restart_run(run.id(), from_step=3)  # type: ignore[arg-type]
    with pytest.raises(pgqrs.ValidationError):
        await admin.restart_run(run.id(), from_step="")
    assert await run.status() == "SUCCESS"


async def test_restart_run_redelivers_the_signals_of_removed_steps(store: pgqrs.Store) -> None:
    got: list[Any] = []

    @step
    async def before(run: pgqrs.Run) -> str:
        return "before"

    @workflow(name=WF)
    async def listener(run: pgqrs.Run, _: Any) -> list[Any]:
        await before(run)
        first = await run.recv("go")
        second = await run.recv("go")
        received = [s.payload if s else None for s in (first, second)]
        got.append(received)
        return received

    run = await new_run(store)
    await pgqrs.send_signal(store, run.id(), "go", 1)
    await pgqrs.send_signal(store, run.id(), "go", 2)
    consumer = await store.consumer(WF)
    loop = pgqrs.dequeue().worker(consumer).handle_workflow(listener)
    when = datetime.now(UTC) + timedelta(seconds=5)
    await loop.at(when).execute(store)
    assert await run.status() == "SUCCESS"
    names = await step_names(store, run)
    assert names == ["before", "__pgqrs_recv__:go#1", "__pgqrs_recv__:go#2"]

    done = await pgqrs.admin(store).restart_run(run.id(), names[2])
    assert done.redelivered_signals == 1
    await loop.at(when).execute(store)
    assert got == [[1, 2], [1, 2]]  # the second receive got the same signal again
    done = await pgqrs.admin(store).restart_run(run.id(), "before")
    assert done.redelivered_signals == 2
    await loop.at(when).execute(store)
    assert got[-1] == [1, 2]
    await consumer.shutdown()


async def test_restart_run_wakes_an_idle_worker(store: pgqrs.Store) -> None:
    """A worker of this process waiting for work picks the restarted run up at once, not at
    its next poll (a minute away)."""
    flow, run = await failed_at_two(store)
    consumer = await store.consumer(WF)
    loop = pgqrs.dequeue().worker(consumer).handle_workflow(flow.flow).poll_interval(60_000)
    task = asyncio.create_task(loop.poll(store))
    try:
        while await consumer.status() != "polling":
            await asyncio.sleep(0.01)
        await pgqrs.admin(store).restart_run(run.id())
        message = await message_of(store, run)
        assert await pgqrs.run().message(message).store(store).result(timeout=10) == 25
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_restart_run_blocking(target: Target) -> None:
    with pgqrs.sync.connect_with(target.config()) as store:
        admin = store.admin()
        admin.install()
        run = admin.create_workflow(WF, 3)
        assert run.fail("broken")
        done = admin.restart_run(run.id())
        assert (done.run.status, done.from_step) == (S.Queued, None)
        assert run.status() == "QUEUED"
