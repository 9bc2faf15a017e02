"""Steps: acquisition, recorded outcomes and the retry policy, all with injected time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

import pgqrs
from tests.support.target import StoreFactory
from tests.support.workflows import at, message_of, new_run, parse, step_row

T0 = datetime(2030, 1, 1, tzinfo=UTC)
EXECUTE, SKIPPED = pgqrs.StepResultStatus.Execute, pgqrs.StepResultStatus.Skipped


async def guard_of(
    run: pgqrs.Run, name: str, when: datetime, retry: pgqrs.StepRetryPolicy | None = None
) -> pgqrs.StepGuard:
    result = await run.acquire_step(name, current_time=when, retry=retry)
    assert result.status == EXECUTE
    assert result.guard is not None
    return result.guard


async def test_acquire_then_succeed_then_skip(store: pgqrs.Store) -> None:
    run = await new_run(store)
    result = await run.acquire_step("fetch")
    assert result.status == EXECUTE
    assert result.value is None
    guard = result.guard
    assert guard is not None
    assert (guard.run_id, guard.step_name, guard.current_time) == (run.id(), "fetch", None)
    row = await step_row(store, run, "fetch")
    assert (row.status, row.retry_count, row.input, row.output) == (
        pgqrs.WorkflowStatus.Running,
        0,
        None,
        None,
    )
    assert row.started_at is not None
    # Returns nothing, as pgqrs does (checked at runtime: mypy already knows).
    assert await guard.success({"rows": [1, 2]}) is None  # type: ignore[func-returns-value]
    row = await step_row(store, run, "fetch")
    assert row.status == "SUCCESS"
    assert row.output == {"rows": [1, 2]}
    assert row.completed_at is not None
    again = await run.acquire_step("fetch")
    assert (again.status, again.value, again.guard) == (SKIPPED, {"rows": [1, 2]}, None)
    assert await run.status() == "QUEUED"  # steps of a QUEUED run need no start()
    with pytest.raises(AttributeError):
        again.value = 3  # type: ignore[misc]


async def test_a_running_step_has_no_lease(store: pgqrs.Store) -> None:
    run = await new_run(store)
    first, second = await asyncio.gather(run.acquire_step("s"), run.acquire_step("s"))
    assert first.status == second.status == EXECUTE
    assert len(await (await store.get_workflow_steps()).list_by_run(run.id())) == 1


async def test_default_policy_schedule(store: pgqrs.Store) -> None:
    """Four transient failures give retry_count 1, 2, 3, then 3 with no retry time; the fifth
    acquisition raises RetriesExhaustedError: four executions in total (semantics.md §13)."""
    run = await new_run(store)
    now, delays = T0, []
    for expected_count in (1, 2, 3):
        guard = await guard_of(run, "call", now)
        assert guard.current_time == now.isoformat()
        await guard.fail_transient("HTTP_503", "unavailable")
        row = await step_row(store, run, "call")
        assert (row.status, row.retry_count) == (pgqrs.WorkflowStatus.Error, expected_count)
        retry_at = parse(row.retry_at)
        delays.append((retry_at - now).total_seconds())
        # Not before its time ...
        early = at(retry_at, -0.001)
        with pytest.raises(pgqrs.StepNotReadyError) as info:
            await run.acquire_step("call", current_time=early)
        assert info.value.retry_at == retry_at.isoformat()
        assert str(info.value) == (
            f"Step not ready for execution (retry scheduled for {retry_at.isoformat()})"
        )
        now = retry_at  # ... and eligible exactly at it.
    assert delays[:2] == [1.0, 2.0]
    assert 3.0 <= delays[2] <= 5.0
    guard = await guard_of(run, "call", now)
    await guard.fail_transient("HTTP_503", "unavailable")
    row = await step_row(store, run, "call")
    assert (row.status, row.retry_count, row.retry_at) == (pgqrs.WorkflowStatus.Error, 3, None)
    assert row.error == {"is_transient": True, "code": "HTTP_503", "message": "unavailable"}
    with pytest.raises(pgqrs.RetriesExhaustedError) as exhausted:
        await run.acquire_step("call", current_time=at(now, 3600))
    assert exhausted.value.attempts == 3
    assert str(exhausted.value).startswith("Step failed after 3 attempts: {")
    assert '"code":"HTTP_503"' in str(exhausted.value)


async def test_reacquiring_a_failed_step_reopens_it(store: pgqrs.Store) -> None:
    run = await new_run(store)
    guard = await guard_of(run, "s", T0)
    await guard.fail_transient("E", "boom", retry_after=0)
    row = await step_row(store, run, "s")
    assert (row.status, parse(row.retry_at)) == (pgqrs.WorkflowStatus.Error, T0)
    await guard_of(run, "s", T0)  # retry_after 0: eligible at once
    row = await step_row(store, run, "s")
    assert (row.status, row.error, row.retry_at, row.retry_count) == (
        pgqrs.WorkflowStatus.Running,
        None,
        None,
        1,
    )


async def test_retry_after_overrides_the_backoff_with_fractions(store: pgqrs.Store) -> None:
    run = await new_run(store)
    policy = pgqrs.StepRetryPolicy(5, pgqrs.BackoffStrategy.fixed(60))
    guard = await guard_of(run, "s", T0, retry=policy)
    await guard.fail_transient("RATE", "slow down", retry_after=1.25)
    row = await step_row(store, run, "s")
    assert parse(row.retry_at) == at(T0, 1.25)
    assert row.error == {
        "is_transient": True,
        "code": "RATE",
        "message": "slow down",
        "retry_after": {"secs": 1, "nanos": 250000000},
    }
    with pytest.raises(pgqrs.StepNotReadyError):
        await run.acquire_step("s", current_time=at(T0, 1.2))
    assert (await run.acquire_step("s", current_time=at(T0, 1.25))).status == EXECUTE


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf")])
async def test_invalid_retry_after_writes_nothing(store: pgqrs.Store, bad: float) -> None:
    run = await new_run(store)
    guard = await guard_of(run, "s", T0)
    with pytest.raises(ValueError, match="Invalid retry_after"):
        await guard.fail_transient("E", "m", retry_after=bad)
    assert (await step_row(store, run, "s")).status == "RUNNING"


async def test_permanent_failure_exhausts_at_once(store: pgqrs.Store) -> None:
    run = await new_run(store)
    guard = await guard_of(run, "s", T0)
    await guard.fail("bad thing")
    row = await step_row(store, run, "s")
    assert (row.status, row.retry_count, row.retry_at) == (pgqrs.WorkflowStatus.Error, 0, None)
    assert row.error == {"is_transient": False, "code": "NON_RETRYABLE", "message": '"bad thing"'}
    with pytest.raises(pgqrs.RetriesExhaustedError) as info:
        await run.acquire_step("s", current_time=at(T0, 10**6))
    assert info.value.attempts == 0
    assert str(info.value).startswith("Step failed after 0 attempts: ")


async def test_zero_max_attempts_exhausts_on_the_first_transient_failure(
    store: pgqrs.Store,
) -> None:
    run = await new_run(store)
    guard = await guard_of(run, "s", T0, retry=pgqrs.StepRetryPolicy(max_attempts=0))
    await guard.fail_transient("E", "m", retry_after=1)
    row = await step_row(store, run, "s")
    assert (row.status, row.retry_count, row.retry_at) == (pgqrs.WorkflowStatus.Error, 0, None)
    with pytest.raises(pgqrs.RetriesExhaustedError):
        await run.acquire_step("s", current_time=T0)


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        (pgqrs.BackoffStrategy.fixed(7), [7, 7, 7, 7]),
        (pgqrs.BackoffStrategy.exponential(2, 10), [2, 4, 8, 10]),
    ],
)
async def test_policy_backoffs(
    store: pgqrs.Store, backoff: pgqrs.BackoffStrategy, expected: list[int]
) -> None:
    run = await new_run(store)
    policy = pgqrs.StepRetryPolicy(max_attempts=4, backoff=backoff)
    now, delays = T0, []
    for _ in expected:
        guard = await guard_of(run, "s", now, retry=policy)
        await guard.fail_transient("E", "m")
        retry_at = parse((await step_row(store, run, "s")).retry_at)
        delays.append((retry_at - now).total_seconds())
        now = retry_at
    assert delays == expected


async def test_policy_precedence(store: pgqrs.Store) -> None:
    """The explicit policy, else the run handle's, else the default."""
    inherited = pgqrs.StepRetryPolicy(3, pgqrs.BackoffStrategy.fixed(9))
    run = (await new_run(store)).with_retry(inherited)
    guard = await guard_of(run, "inherited", T0)
    await guard.fail_transient("E", "m")
    assert parse((await step_row(store, run, "inherited")).retry_at) == at(T0, 9)
    own = pgqrs.StepRetryPolicy(3, pgqrs.BackoffStrategy.fixed(4))
    guard = await guard_of(run, "own", T0, retry=own)
    await guard.fail_transient("E", "m")
    assert parse((await step_row(store, run, "own")).retry_at) == at(T0, 4)


async def test_run_time_is_used_when_none_is_given(store: pgqrs.Store) -> None:
    run = (await new_run(store)).with_time(T0)
    result = await run.acquire_step("s")
    assert result.guard is not None
    assert result.guard.current_time == T0.isoformat()
    await result.guard.fail_transient("E", "m", retry_after=30)
    with pytest.raises(pgqrs.StepNotReadyError):
        await run.acquire_step("s")
    assert (await run.with_time(at(T0, 30)).acquire_step("s")).status == EXECUTE


async def test_complete_step_and_fail_step(store: pgqrs.Store) -> None:
    run = await new_run(store)
    assert await run.complete_step("a", 1) is None  # type: ignore[func-returns-value]  # returns nothing
    await run.complete_step("a", 2)  # recorded again, over the earlier SUCCESS
    assert (await run.acquire_step("a")).value == 2
    await run.fail_step("b", "plain", current_time=T0)
    assert (await step_row(store, run, "b")).error == {
        "is_transient": False,
        "code": "NON_RETRYABLE",
        "message": '"plain"',
    }
    transient = {"is_transient": True, "code": "X", "message": "m", "retry_after": 2.5}
    await run.fail_step("c", transient, current_time=T0)
    row = await step_row(store, run, "c")
    assert (row.error, parse(row.retry_at), row.retry_count) == (transient, at(T0, 2.5), 1)
    nanos = {**transient, "retry_after": {"secs": 1, "nanos": 500000000}}
    await run.fail_step("d", nanos, current_time=T0)
    assert parse((await step_row(store, run, "d")).retry_at) == at(T0, 1.5)
    not_transient = {"is_transient": False, "code": "MINE", "message": "stop"}
    await run.fail_step("e", not_transient, current_time=T0)
    row = await step_row(store, run, "e")
    assert (row.error, row.retry_at) == (not_transient, None)
    with pytest.raises(pgqrs.StepNotReadyError):
        await run.fail_step("c", "again", current_time=T0)  # acquisition errors propagate
    with pytest.raises(pgqrs.SerializationError):
        await run.complete_step("f", {1, 2})
    steps = await (await store.get_workflow_steps()).list_by_run(run.id())
    assert [s.step_name for s in steps] == ["a", "b", "c", "d", "e"]


async def test_unencodable_output_leaves_the_step_running(store: pgqrs.Store) -> None:
    run = await new_run(store)
    result = await run.acquire_step("s")
    assert result.guard is not None
    with pytest.raises(pgqrs.SerializationError):
        await result.guard.success(object())
    assert (await step_row(store, run, "s")).status == "RUNNING"


async def test_step_names(store: pgqrs.Store) -> None:
    run = await new_run(store)
    with pytest.raises(pgqrs.ValidationError, match="step name must be 1-255 characters"):
        await run.acquire_step("")
    with pytest.raises(pgqrs.ValidationError):
        await run.acquire_step("x" * 256)
    with pytest.raises(TypeError):
        await run.acquire_step(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid ISO 8601 timestamp 'soon'"):
        await run.acquire_step("s", current_time="soon")
    with pytest.raises(TypeError):
        await run.acquire_step("s", retry=3)  # type: ignore[arg-type]
    assert await (await store.get_workflow_steps()).list() == []


async def test_step_builder(store: pgqrs.Store) -> None:
    run = await new_run(store)
    with pytest.raises(pgqrs.PgqrsError, match=r"^Run is required$"):
        await pgqrs.step().name("s").execute()
    with pytest.raises(pgqrs.PgqrsError, match=r"^Step name is required$"):
        await pgqrs.step().run(run).execute()
    with pytest.raises(ValueError):
        pgqrs.step().with_time("not a time")
    with pytest.raises(TypeError):
        pgqrs.step().run("run")  # type: ignore[arg-type]
    policy = pgqrs.StepRetryPolicy(2, pgqrs.BackoffStrategy.fixed(5))
    result = await pgqrs.step().run(run).id("s").with_time(T0).retry(policy).execute()
    assert result.guard is not None
    assert result.guard.current_time == T0.isoformat()
    await result.guard.fail_transient("E", "m")
    assert parse((await step_row(store, run, "s")).retry_at) == at(T0, 5)
    done = await pgqrs.step().run(run).name("t").execute()
    assert done.guard is not None
    await done.guard.success("ok")
    assert (await pgqrs.step().run(run).name("t").execute()).value == "ok"


# Not on S3: two writing stores on one object conflict by design (semantics.md §16).
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_concurrent_failures_of_a_step_are_each_counted(
    store: pgqrs.Store, make_store: StoreFactory
) -> None:
    """Issue 10, defect 6: on PostgreSQL two failures of one step recorded at the same time
    both read the same retry_count and wrote the same increment (29 of 30 trials), so a step
    could run more often than its policy allows. Every failure is now counted."""
    other = await make_store()
    policy = pgqrs.StepRetryPolicy(max_attempts=100)
    for _ in range(15):
        run = await new_run(store)
        twin = await pgqrs.run().message(await message_of(store, run)).store(other).execute()
        guards = [
            await guard_of(run, "charge", T0, retry=policy),
            await guard_of(twin, "charge", T0, retry=policy),
        ]
        await asyncio.gather(*(g.fail_transient("BUSY", "try later", 0) for g in guards))
        assert (await step_row(store, run, "charge")).retry_count == 2
