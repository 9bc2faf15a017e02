"""What a workflow run costs the database (issue 14; docs/decisions.md, "Workflow round trips").

A 3-step run (the benchmark's workflow) executed by a `handle_workflow` poll loop costs at most 5
round trips to PostgreSQL, counted where the driver waits for the server: every call of
`AsyncConnection.wait` whose operation waits for a reply counts one. On SQLite, the trips to the
store's connection threads and the statements they run. A run's share is the count between the
start of one run's handler and the next one's, in the steady state (the claim that delivers the
next run also archives the last one's message), averaged over several runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

import psycopg
import pytest
from psycopg.waiting import Wait

import pgqrs
from pgqrs.decorators import WorkflowDef, step, workflow
from pgqrs.store.executor import Params
from pgqrs.store.sqlite import SqliteExecutor
from pgqrs.store.threads import DbThread
from tests.support.fault_report import report
from tests.support.target import StoreFactory

WF = "round_trips"
# Before issue 14: claim, get-or-create, start, acquire and success of each step, run success.
BEFORE_POSTGRES = 10
BEFORE_SQLITE = {"trips": 10, "statements": 12}
# Runs before counting: psycopg prepares a statement at its 6th execution on a connection (one
# more round trip), so every statement is first run often enough on each pooled connection.
WARM_UP = 20
MEASURED = 10


class Counts:
    """What the poll loop asked of the database, apart from its background tasks."""

    def __init__(self) -> None:
        self.trips = 0
        self.statements = 0


def _counted() -> bool:
    """Not a heartbeat (its own task, on its own schedule) nor the LISTEN task."""
    task = asyncio.current_task()
    name = task.get_name() if task is not None else ""
    return not name.startswith(("pgqrs-heartbeat-", "pgqrs-listen"))


def _three_steps() -> WorkflowDef:
    """The benchmark's workflow (benchmarks/scenarios.py, `three_step_workflow`)."""

    @step
    async def reserve(run: pgqrs.Run, order: dict[str, int]) -> dict[str, int]:
        return {"order": order["order"], "items": 3}

    @step
    async def charge(run: pgqrs.Run, reservation: dict[str, int]) -> dict[str, int]:
        return {**reservation, "paid": reservation["items"] * 10}

    @step
    async def ship(run: pgqrs.Run, payment: dict[str, int]) -> str:
        return f"order {payment['order']} shipped"

    @workflow(name=WF)
    async def flow(run: pgqrs.Run, order: dict[str, int]) -> str:
        return await ship(run, await charge(run, await reserve(run, order)))

    return flow


async def per_run(store: pgqrs.Store, counts: Counts) -> tuple[float, float]:
    """Trips and statements per run: WARM_UP runs, then MEASURED runs counted."""
    await pgqrs.workflow().name(WF).store(store).create()
    total = WARM_UP + MEASURED + 1
    for n in range(total):
        await pgqrs.workflow().name(WF).store(store).trigger({"order": n}).execute()
    flow = _three_steps()
    marks: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def handler(run: pgqrs.Run) -> None:
        marks.append((counts.trips, counts.statements))
        await flow(run)
        if len(marks) == total:
            done.set()

    consumer = await store.consumer(WF)
    loop = pgqrs.dequeue().worker(consumer).handle_workflow(handler).poll(store)
    task = asyncio.create_task(loop)
    await asyncio.wait_for(done.wait(), 30)
    await consumer.interrupt()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(task, 10)
    runs = await (await store.get_workflow_runs()).list()
    assert [r.status for r in runs] == [pgqrs.WorkflowStatus.Success] * total
    (trips0, statements0), (trips1, statements1) = marks[WARM_UP], marks[WARM_UP + MEASURED]
    return (trips1 - trips0) / MEASURED, (statements1 - statements0) / MEASURED


def _spy(gen: Generator[Any, Any, Any], counts: Counts) -> Generator[Any, Any, Any]:
    """`gen` (a driver operation) unchanged; one trip counted if it waits for a reply."""
    waited = False
    try:
        state = next(gen)
        while True:
            if state == Wait.R and not waited:
                counts.trips += 1
                waited = True
            state = gen.send((yield state))
    except StopIteration as finished:
        return finished.value


@pytest.mark.backends("postgres")
async def test_round_trips_of_a_three_step_run_postgres(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await make_store(listen_notify=False, heartbeat_interval_seconds=60)
    await pgqrs.admin(store).install()
    counts = Counts()
    wait = psycopg.AsyncConnection.wait

    async def counting_wait(
        self: psycopg.AsyncConnection[Any], gen: Generator[Any, Any, Any], *args: Any, **kw: Any
    ) -> Any:
        if _counted():
            counts.statements += 1  # (driver operations, not statements: not asserted)
            gen = _spy(gen, counts)
        return await wait(self, gen, *args, **kw)

    monkeypatch.setattr(psycopg.AsyncConnection, "wait", counting_wait)
    trips, _ = await per_run(store, counts)
    report("workflow round trips, postgres", per_run=trips, before=BEFORE_POSTGRES)
    assert trips <= 5


@pytest.mark.backends("sqlite")
async def test_round_trips_of_a_three_step_run_sqlite(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await make_store(heartbeat_interval_seconds=60)
    await pgqrs.admin(store).install()
    counts = Counts()
    call = DbThread.call

    def counting_call(self: DbThread, fn: Callable[[Any], Any]) -> asyncio.Future[Any]:
        if _counted():
            counts.trips += 1
        return call(self, fn)

    execute, fetch, batch = SqliteExecutor.execute, SqliteExecutor.fetch, SqliteExecutor.batch

    async def counting_execute(self: SqliteExecutor, sql: str, params: Params | None = None) -> int:
        counts.statements += _counted()
        return await execute(self, sql, params)

    async def counting_fetch(self: SqliteExecutor, sql: str, params: Params | None = None) -> Any:
        counts.statements += _counted()  # (fetchone is a fetch)
        return await fetch(self, sql, params)

    async def counting_batch(self: SqliteExecutor, steps: Any) -> Any:
        counts.statements += len(steps) if _counted() else 0
        return await batch(self, steps)

    monkeypatch.setattr(DbThread, "call", counting_call)
    monkeypatch.setattr(SqliteExecutor, "execute", counting_execute)
    monkeypatch.setattr(SqliteExecutor, "fetch", counting_fetch)
    monkeypatch.setattr(SqliteExecutor, "batch", counting_batch)
    trips, statements = await per_run(store, counts)
    report(
        "workflow round trips, sqlite",
        trips_per_run=trips,
        statements_per_run=statements,
        before=f"{BEFORE_SQLITE['trips']} trips, {BEFORE_SQLITE['statements']} statements",
    )
    assert trips <= 6
    assert statements <= BEFORE_SQLITE["statements"]
