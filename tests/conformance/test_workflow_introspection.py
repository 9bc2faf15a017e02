"""What a dashboard reads of workflow runs (semantics.md §19.2), on every backend: runs by
workflow, status and creation time; a run's timeline of steps, signals, events and children."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pgqrs
import pgqrs.sync
from pgqrs.decorators import step, workflow
from tests.support.clocks import FixedClock
from tests.support.target import Target
from tests.support.workflows import new_run, run_in

T0 = datetime(2030, 1, 1, tzinfo=UTC)
S = pgqrs.WorkflowStatus


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


async def runs_at(store: pgqrs.Store, plan: list[tuple[str, float]]) -> list[pgqrs.Run]:
    """A run of each workflow named, created `hours` after T0 (the store's clock is set)."""
    made = []
    for name, at in plan:
        store.clock = FixedClock(hours(at))
        made.append(await new_run(store, at, name=name))
    return made


def ids(found: list[pgqrs.RunRecord]) -> list[int]:
    return [r.id for r in found]


async def test_list_runs_filters_newest_first(store: pgqrs.Store) -> None:
    a1, b1, a2, b2 = await runs_at(store, [("a", 0), ("b", 1), ("a", 2), ("b", 3)])
    await a1.success("done")
    await b2.fail("broken")
    admin = pgqrs.admin(store)

    assert ids(await admin.list_runs()) == [b2.id(), a2.id(), b1.id(), a1.id()]
    assert ids(await admin.list_runs("a")) == [a2.id(), a1.id()]
    assert ids(await admin.list_runs(["b", "a"], limit=3)) == [b2.id(), a2.id(), b1.id()]
    assert ids(await admin.list_runs(status="queued")) == [a2.id(), b1.id()]
    assert ids(await admin.list_runs(status=[pgqrs.WorkflowStatus.Success, "ERROR"])) == [
        b2.id(),
        a1.id(),
    ]
    assert ids(await admin.list_runs("b", status="ERROR")) == [b2.id()]
    # Created at or after `since`, before `until`: [since, until).
    assert ids(await admin.list_runs(since=hours(1))) == [b2.id(), a2.id(), b1.id()]
    assert ids(await admin.list_runs(until=hours(1))) == [a1.id()]
    assert ids(await admin.list_runs(since=hours(1), until=hours(3))) == [a2.id(), b1.id()]
    assert ids(await admin.list_runs(since="2030-01-01T02:00:00Z")) == [b2.id(), a2.id()]
    assert ids(await admin.list_runs("a", since=hours(0.5), until=hours(2.5))) == [a2.id()]
    assert await admin.list_runs(since=hours(4)) == []
    [record] = await admin.list_runs(status="SUCCESS")
    assert record == await (await store.get_workflow_runs()).get(a1.id())


async def test_list_runs_refuses_bad_filters(store: pgqrs.Store) -> None:
    await new_run(store)
    admin = pgqrs.admin(store)
    with pytest.raises(pgqrs.NotFoundError, match="Workflow 'nope' not found"):
        await admin.list_runs("nope")
    with pytest.raises(pgqrs.ValidationError, match=r"unknown run status 'done' \(one of QUEUED"):
        await admin.list_runs(status="done")
    with pytest.raises(pgqrs.ValidationError, match="an empty list matches no run"):
        await admin.list_runs([])
    with pytest.raises(pgqrs.ValidationError, match="invalid workflow name"):
        await admin.list_runs("bad name")
    with pytest.raises(ValueError, match="no UTC offset"):
        await admin.list_runs(since=datetime(2030, 1, 1))
    with pytest.raises(pgqrs.ValidationError, match="must be before until"):
        await admin.list_runs(since=hours(1), until=hours(1))
    with pytest.raises(ValueError, match="limit must be >= 1"):
        await admin.list_runs(limit=0)
    with pytest.raises(TypeError):
        await admin.list_runs(status=3)  # type: ignore[arg-type]


async def test_run_timeline_of_a_run_that_retried_talked_and_started_a_child(
    store: pgqrs.Store,
) -> None:
    attempts: list[int] = []

    @step
    async def prepare(run: pgqrs.Run) -> str:
        return "ready"

    @step
    async def flaky(run: pgqrs.Run) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise pgqrs.TransientStepError("partner down", code="HTTP_503", retry_after=0)
        return "done"

    @workflow(name="parent")
    async def parent(run: pgqrs.Run, _: Any) -> str:
        await prepare(run)
        signal = await run.recv("go")
        await run.set_event("progress", {"pct": 50})
        await run.start_child("child", {"n": 1})
        await run.set_event("progress", {"pct": 100})
        assert signal is not None
        return await flaky(run)

    await pgqrs.workflow().name("child").store(store).create()
    run = await new_run(store, {}, name="parent")
    admin = pgqrs.admin(store)
    await pgqrs.send_signal(store, run.id(), "go", {"first": True})
    await pgqrs.send_signal(store, run.id(), "go", {"second": True})
    consumer = await store.consumer("parent")
    loop = pgqrs.dequeue().worker(consumer).handle_workflow(parent)
    when = datetime.now(UTC) + timedelta(seconds=5)
    await loop.at(when).execute(store)

    found = await admin.run_timeline(run.id())
    assert (found.run.id, found.run.status, found.workflow) == (run.id(), S.Running, "parent")
    names = [s.step_name for s in found.steps]
    assert (names[0], names[-1]) == ("prepare", "flaky")
    [failed] = [s for s in found.steps if s.step_name == "flaky"]
    assert (failed.status, failed.attempts, failed.completed_at) == (S.Error, 1, None)
    assert failed.retry_at is not None  # a retry is planned: it is not an attempt yet
    assert failed.last_error["code"] == "HTTP_503"
    assert failed.duration_seconds is not None
    assert failed.duration_seconds >= 0

    first, second = found.signals
    assert (first.topic, first.payload, second.payload) == ("go", {"first": True}, {"second": True})
    assert first.consumed_at is not None
    assert first.consumed_by in names
    assert (second.consumed_at, second.consumed_by) == (None, None)
    [event] = found.events
    assert (event.key, event.value) == ("progress", {"pct": 100})
    assert event.updated_at >= event.created_at
    [child] = found.children
    assert (child.parent_run_id, child.status, child.input) == (
        run.id(),
        S.Queued,
        {"input": {"n": 1}},
    )

    await loop.at(when + timedelta(minutes=1)).execute(store)  # the retry is due
    found = await admin.run_timeline(run.id())
    assert found.run.status == "SUCCESS"
    done = found.steps[-1]
    assert (done.step_name, done.status, done.attempts, done.last_error) == (
        "flaky",
        S.Success,
        2,
        None,
    )
    assert (done.output, done.retry_at) == ("done", None)
    assert done.completed_at is not None
    assert done.duration_seconds is not None
    assert [s.step_name for s in found.steps] == names  # steps keep the order they started
    await consumer.shutdown()


async def test_run_timeline_of_a_run_without_steps(store: pgqrs.Store) -> None:
    run = await run_in(store, "ERROR")
    found = await pgqrs.admin(store).run_timeline(run.id())
    assert found.run == await (await store.get_workflow_runs()).get(run.id())
    assert (found.steps, found.signals, found.events, found.children) == ((), (), (), ())
    with pytest.raises(pgqrs.NotFoundError, match="Run 999 not found"):
        await pgqrs.admin(store).run_timeline(999)


async def test_run_timeline_counts_attempts_of_a_step_that_exhausted_its_retries(
    store: pgqrs.Store,
) -> None:
    run = await new_run(store)
    policy = pgqrs.StepRetryPolicy(max_attempts=2, backoff=pgqrs.BackoffStrategy.fixed(0))
    run = run.with_retry(policy)
    transient = {"is_transient": True, "code": "X", "message": "again", "retry_after": 0}
    for _ in range(3):  # two retries, then exhausted: three executions
        await run.fail_step("call", transient)
    found = await pgqrs.admin(store).run_timeline(run.id())
    [call] = found.steps
    assert (call.status, call.retry_at, call.attempts) == (S.Error, None, 3)


def test_list_runs_and_run_timeline_blocking(target: Target) -> None:
    with pgqrs.sync.connect_with(target.config()) as store:
        admin = store.admin()
        admin.install()
        run = admin.create_workflow("wf", 1)
        [listed] = admin.list_runs("wf", status="QUEUED", since=T0 - timedelta(days=3650))
        assert listed.id == run.id()
        assert admin.run_timeline(run.id()).run == listed
