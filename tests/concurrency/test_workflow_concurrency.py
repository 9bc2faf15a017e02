"""Many runs across several workers: every run succeeds and every step runs exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import pgqrs
from pgqrs.decorators import step, workflow
from tests.support.target import Target
from tests.support.workflows import effects, spawn_worker, stop_worker, wait_until

RUNS = 200
WORKERS = 4
# S3 uploads the whole database file on every write (200 runs: ~40 s); Turso processes take
# turns on the file (200 runs in two processes: ~22 s). Fewer runs there keep the suite fast.
S3_RUNS = 60
TURSO_RUNS = 100


async def trigger_all(store: pgqrs.Store, name: str, count: int) -> list[pgqrs.Run]:
    admin = pgqrs.admin(store)
    return [await admin.create_workflow(name, i) for i in range(count)]


async def assert_all_succeeded(store: pgqrs.Store, runs: list[pgqrs.Run]) -> None:
    records = {r.id: r for r in await (await store.get_workflow_runs()).list()}
    for i, run in enumerate(runs):
        record = records[run.id()]
        assert record.status == "SUCCESS"
        assert record.output == i + 6
    steps = await (await store.get_workflow_steps()).list()
    assert len(steps) == 3 * len(runs)
    assert all(s.status == "SUCCESS" for s in steps)
    assert await (await store.get_messages()).count() == 0  # every trigger archived


@pytest.mark.slow
async def test_concurrent_runs_in_one_process(store: pgqrs.Store, backend: str) -> None:
    count = S3_RUNS if backend == "s3" else RUNS
    executed: Counter[tuple[int, str]] = Counter()

    @step
    async def one(run: pgqrs.Run, x: int) -> int:
        executed[run.id(), "one"] += 1
        await asyncio.sleep(0)  # let the other workers interleave
        return x + 1

    @step
    async def two(run: pgqrs.Run, x: int) -> int:
        executed[run.id(), "two"] += 1
        return x + 2

    @step
    async def three(run: pgqrs.Run, x: int) -> int:
        executed[run.id(), "three"] += 1
        return x + 3

    @workflow(name="three")
    async def flow(run: pgqrs.Run, x: int) -> int:
        return await three(run, await two(run, await one(run, x)))

    runs = await trigger_all(store, "three", count)
    finished = asyncio.Event()
    done: list[int] = []
    handled_by: Counter[int] = Counter()

    def handler_for(consumer: pgqrs.Consumer) -> Any:
        async def handler(run: pgqrs.Run) -> None:
            await flow(run)
            handled_by[consumer.worker_id] += 1
            done.append(run.id())
            if len(done) == count:
                finished.set()

        return handler

    consumers = [await store.consumer("three") for _ in range(WORKERS)]
    tasks = [
        asyncio.create_task(
            pgqrs.dequeue().worker(c).handle_workflow(handler_for(c)).poll_interval(10).poll(store)
        )
        for c in consumers
    ]
    try:
        await asyncio.wait_for(finished.wait(), 30)
    finally:
        for c in consumers:
            await c.interrupt()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, pgqrs.SuspendedError) for o in outcomes), outcomes
    assert sorted(done) == sorted(r.id() for r in runs)
    assert len(executed) == 3 * count
    assert set(executed.values()) == {1}
    assert len(handled_by) > 1  # the work was actually shared
    await assert_all_succeeded(store, runs)


@pytest.mark.slow
# Not on S3: an S3 object has one writer (semantics.md §16); concurrent writers from several
# stores get sync conflicts by design.
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_concurrent_runs_in_two_processes(
    store: pgqrs.Store, target: Target, tmp_path: Path, backend: str
) -> None:
    runs = await trigger_all(store, "three", TURSO_RUNS if backend == "turso" else RUNS)
    workers = [spawn_worker(target.env(), "three", tmp_path, 30) for _ in range(2)]

    async def all_finished() -> bool:
        records = await (await store.get_workflow_runs()).list()
        return all(r.status == "SUCCESS" for r in records)

    try:
        await wait_until(all_finished, 60, "every run to succeed")
    finally:
        codes = [await stop_worker(w) for w in workers]
    assert codes == [0, 0]
    seen = effects(tmp_path)
    assert set(seen) == {(r.id(), s) for r in runs for s in ("one", "two", "three")}
    assert set(seen.values()) == {1}
    await assert_all_succeeded(store, runs)
