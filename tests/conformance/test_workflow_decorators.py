"""`@workflow` and `@step` (semantics.md §12.7), called directly on a run."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

import pgqrs
from pgqrs.decorators import WorkflowDef, step, workflow
from tests.support.workflows import at, new_run, parse, run_in, step_row

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Crash(BaseException):
    """Stands for a process dying mid-step: not an Exception, so nothing may record it."""


def make_flow(calls: Counter[str]) -> WorkflowDef:
    @step
    async def double(run: pgqrs.Run, x: int) -> int:
        calls["double"] += 1
        return x * 2

    @step(name="add-one")
    async def add_one(run: pgqrs.Run, x: int) -> int:
        calls["add-one"] += 1
        return x + 1

    @workflow(name="math")
    async def flow(run: pgqrs.Run, x: int) -> dict[str, int]:
        calls["flow"] += 1
        return {"result": await add_one(run, await double(run, x))}

    return flow


async def test_a_workflow_runs_its_steps_and_succeeds(store: pgqrs.Store) -> None:
    calls: Counter[str] = Counter()
    flow = make_flow(calls)
    assert isinstance(flow, WorkflowDef)
    assert (flow.name, flow.retry) == ("math", None)
    assert flow._func.__name__ == "flow"
    run = await new_run(store, 5)
    assert await flow(run) == {"result": 11}  # the input {"input": 5} is unwrapped
    assert await run.status() == "SUCCESS"
    assert (await (await store.get_workflow_runs()).get(run.id())).output == {"result": 11}
    steps = await (await store.get_workflow_steps()).list_by_run(run.id())
    assert [s.step_name for s in steps] == ["double", "add-one"]
    assert await flow.run(run, 100) == {"result": 11}  # finished: stored result, nothing runs
    assert calls == Counter({"flow": 1, "double": 1, "add-one": 1})


async def test_explicit_arguments_replace_the_input(store: pgqrs.Store) -> None:
    calls: Counter[str] = Counter()
    run = await new_run(store, 5)
    assert await make_flow(calls)(run, x=1) == {"result": 3}


async def test_input_without_the_wrapper_is_passed_as_is(store: pgqrs.Store) -> None:
    seen: list[Any] = []

    @workflow(name="wf")
    async def flow(run: pgqrs.Run, data: Any) -> None:
        seen.append(data)

    await pgqrs.workflow().name("wf").store(store).create()
    producer = await store.producer("wf")
    mid = await producer.enqueue({"input": 1, "other": 2})
    message = await (await store.get_messages()).get(mid)
    run = await pgqrs.run().message(message).store(store).execute()
    await flow(run)
    assert seen == [{"input": 1, "other": 2}]


async def test_a_crash_resumes_at_the_first_unfinished_step(store: pgqrs.Store) -> None:
    calls: Counter[str] = Counter()
    crash = {"second": True}

    @step
    async def first(run: pgqrs.Run) -> str:
        calls["first"] += 1
        return "one"

    @step
    async def second(run: pgqrs.Run, prev: str) -> str:
        calls["second"] += 1
        if crash.pop("second", False):
            raise Crash
        return prev + "+two"

    @workflow(name="wf")
    async def flow(run: pgqrs.Run, _: Any) -> str:
        return await second(run, await first(run))

    run = await new_run(store)
    with pytest.raises(Crash):
        await flow(run)
    assert await run.status() == "RUNNING"  # left as it was
    assert (await step_row(store, run, "second")).status == "RUNNING"
    assert await flow(run) == "one+two"
    assert calls == Counter({"first": 1, "second": 2})


async def test_nested_steps_are_recorded_each(store: pgqrs.Store) -> None:
    calls: Counter[str] = Counter()

    @step
    async def inner(run: pgqrs.Run, x: int) -> int:
        calls["inner"] += 1
        return x + 1

    @step
    async def outer(run: pgqrs.Run, x: int) -> int:
        calls["outer"] += 1
        return await inner(run, x) * 10

    @workflow(name="wf")
    async def flow(run: pgqrs.Run, x: int) -> int:
        return await outer(run, x)

    run = await new_run(store, 1)
    assert await flow(run) == 20
    assert (await step_row(store, run, "inner")).output == 2
    assert (await step_row(store, run, "outer")).output == 20


async def test_transient_failure_schedules_and_leaves_the_run(store: pgqrs.Store) -> None:
    @step(retry=pgqrs.StepRetryPolicy(1, pgqrs.BackoffStrategy.fixed(60)))
    async def flaky(run: pgqrs.Run) -> None:
        raise pgqrs.TransientStepError("try later", code="BUSY", retry_after=2.5)

    @workflow(name="wf")
    async def flow(run: pgqrs.Run, _: Any) -> None:
        await flaky(run)

    run = (await new_run(store)).with_time(T0)
    with pytest.raises(pgqrs.TransientStepError) as info:
        await flow(run)
    assert info.value.retry_at == at(T0, 2.5).isoformat()
    row = await step_row(store, run, "flaky")
    assert (row.status, row.retry_count, parse(row.retry_at)) == (
        pgqrs.WorkflowStatus.Error,
        1,
        at(T0, 2.5),
    )
    assert row.error["code"] == "BUSY"
    assert await run.status() == "RUNNING"
    # Before its time, acquisition refuses and the run is still untouched.
    with pytest.raises(pgqrs.StepNotReadyError):
        await flow(run)
    assert await run.status() == "RUNNING"
    # At its time it runs again and, with one attempt allowed, exhausts.
    with pytest.raises(pgqrs.TransientStepError) as info:
        await flow(run.with_time(at(T0, 2.5)))
    assert info.value.retry_at is None
    with pytest.raises(pgqrs.RetriesExhaustedError):
        await flow(run.with_time(at(T0, 9999)))
    record = await (await store.get_workflow_runs()).get(run.id())
    assert record.status == "ERROR"
    assert record.error.startswith("Step failed after 1 attempts")


async def test_workflow_policy_is_inherited_unless_the_handle_has_one(store: pgqrs.Store) -> None:
    @step
    async def flaky(run: pgqrs.Run) -> None:
        raise pgqrs.TransientStepError("again")

    @workflow(name="wf", retry=pgqrs.StepRetryPolicy(3, pgqrs.BackoffStrategy.fixed(9)))
    async def flow(run: pgqrs.Run, _: Any) -> None:
        await flaky(run)

    run = (await new_run(store)).with_time(T0)
    with pytest.raises(pgqrs.TransientStepError) as info:
        await flow(run)
    assert info.value.retry_at == at(T0, 9).isoformat()
    assert (await step_row(store, run, "flaky")).error["code"] == "TRANSIENT_ERROR"
    other = (await new_run(store)).with_time(T0)
    own = other.with_retry(pgqrs.StepRetryPolicy(3, pgqrs.BackoffStrategy.fixed(4)))
    with pytest.raises(pgqrs.TransientStepError) as info:
        await flow(own)
    assert info.value.retry_at == at(T0, 4).isoformat()


async def test_an_error_fails_the_step_and_the_run(store: pgqrs.Store) -> None:
    @step
    async def broken(run: pgqrs.Run) -> None:
        raise KeyError("missing")

    @workflow(name="wf")
    async def flow(run: pgqrs.Run, _: Any) -> None:
        await broken(run)

    run = await new_run(store)
    with pytest.raises(KeyError):
        await flow(run)
    row = await step_row(store, run, "broken")
    assert row.error == {"is_transient": False, "code": "NON_RETRYABLE", "message": "\"'missing'\""}
    record = await (await store.get_workflow_runs()).get(run.id())
    assert (record.status, record.error) == (pgqrs.WorkflowStatus.Error, "'missing'")
    with pytest.raises(pgqrs.ValidationError, match="terminal ERROR"):
        await flow(run)  # a failed run is not run again


async def test_unencodable_step_output_fails_the_step(store: pgqrs.Store) -> None:
    @step
    async def weird(run: pgqrs.Run) -> object:
        return object()

    @workflow(name="wf")
    async def flow(run: pgqrs.Run, _: Any) -> object:
        return await weird(run)

    run = await new_run(store)
    with pytest.raises(pgqrs.SerializationError):
        await flow(run)
    assert (await step_row(store, run, "weird")).status == "ERROR"
    assert await run.status() == "ERROR"


async def test_unencodable_result_fails_the_run(store: pgqrs.Store) -> None:
    @workflow(name="wf")
    async def flow(run: pgqrs.Run, _: Any) -> object:
        return {1, 2}

    run = await new_run(store)
    with pytest.raises(pgqrs.SerializationError):
        await flow(run)
    assert await run.status() == "ERROR"


@pytest.mark.parametrize(
    "exc",
    [pgqrs.PausedError("wait", resume_after=5), pgqrs.StepNotReadyError("waiting for approval")],
)
async def test_scheduling_exceptions_leave_the_run(store: pgqrs.Store, exc: Exception) -> None:
    @step
    async def waiting(run: pgqrs.Run) -> None:
        raise exc

    @workflow(name="wf")
    async def flow(run: pgqrs.Run, _: Any) -> None:
        await waiting(run)

    run = await new_run(store)
    with pytest.raises(type(exc)):
        await flow(run)
    assert await run.status() == "RUNNING"
    assert (await step_row(store, run, "waiting")).status == "RUNNING"


async def test_cancelled_runs(store: pgqrs.Store) -> None:
    calls: Counter[str] = Counter()
    flow = make_flow(calls)
    cancelling = await run_in(store, "CANCELLING")
    with pytest.raises(pgqrs.WorkflowCancelledError):
        await flow(cancelling)
    assert await cancelling.status() == "CANCELLED"
    with pytest.raises(pgqrs.WorkflowCancelledError):
        await flow(cancelling)
    assert calls == Counter()

    @step
    async def first(run: pgqrs.Run) -> None:
        await run.cancel()  # someone cancels while the run is working

    @step
    async def second(run: pgqrs.Run) -> None:
        calls["second"] += 1

    @workflow(name="wf")
    async def stopped(run: pgqrs.Run, _: Any) -> None:
        await first(run)
        await second(run)

    run = await new_run(store)
    with pytest.raises(pgqrs.WorkflowCancelledError):
        await stopped(run)
    assert await run.status() == "CANCELLED"
    assert calls["second"] == 0


async def test_decorator_arguments() -> None:
    with pytest.raises(TypeError):
        workflow(name=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        workflow(name="")
    with pytest.raises(TypeError):
        workflow(name="x", retry="often")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        step(name=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        step(retry=1)  # type: ignore[call-overload]

    @step
    async def s(run: pgqrs.Run) -> None: ...

    @workflow(name="x")
    async def w(run: pgqrs.Run) -> None: ...

    with pytest.raises(TypeError, match=r"must be a pgqrs\.Run"):
        await s("not a run")  # type: ignore[arg-type]  # the runtime check
    with pytest.raises(TypeError, match=r"must be a pgqrs\.Run"):
        await w(None)
    direct = WorkflowDef("n", w.run, w._func)
    assert (direct.name, direct.run, direct.retry) == ("n", w.run, None)
