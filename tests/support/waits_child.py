"""A worker process for tests/crash/test_workflow_waits_crash.py: runs that wait, SIGKILLed.

Run as `python -m tests.support.waits_child <scenario>` with the environment of
tests/support/workflow_child.py (PGQRS_CHILD_DSN, PGQRS_CHILD_SCHEMA, PGQRS_CHILD_DIR,
PGQRS_CHILD_LEASE); side effects go to the same `effects.log`. Scenarios and the queues the
process polls, one poll loop (and consumer) each:

* `recv`: the `recv` workflow. Step `a`, `run.recv("go")`, step `checkpoint`, step `b`. With
  input `{"crash": true}`, `checkpoint` SIGKILLs its own process the first time it runs (the
  `checkpoint-crashed` marker file is absent), right after the signal was consumed.
* `gather`: the `gather` workflow and three loops on `child`, so its three children run at
  once. The parent logs step `plan`, starts one child per input and gathers their results.
* `fan_out`: the `fan_out` workflow and one loop on `child`. The parent starts five children
  one after another; between the 2nd and the 3rd, step `midway` SIGKILLs its own process the
  first time it runs (the `midway-crashed` marker file is absent).

The `child` workflow's one step blocks until the `release` marker file exists (its work never
ends before the test allows it), then returns ten times its input.

SIGTERM interrupts every consumer; the process exits 0 once all its loops have ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pgqrs
from pgqrs.decorators import WorkflowDef, step, workflow
from tests.support.workflow_child import DIR, effect

CHECKPOINT_MARKER = DIR / "checkpoint-crashed"
MIDWAY_MARKER = DIR / "midway-crashed"
RELEASE = DIR / "release"


def die_the_first_time(marker: Path) -> None:
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies mid-step, for real


def recv_flow() -> WorkflowDef:
    @step
    async def a(run: pgqrs.Run, n: int) -> int:
        effect(run, "a")
        return n + 1

    @step
    async def checkpoint(run: pgqrs.Run, crash: bool) -> None:
        effect(run, "checkpoint start")
        if crash:
            die_the_first_time(CHECKPOINT_MARKER)
        effect(run, "checkpoint done")

    @step
    async def b(run: pgqrs.Run, got: Any, n: int) -> dict[str, Any]:
        effect(run, "b")
        return {"got": got, "n": n}

    @workflow(name="recv")
    async def flow(run: pgqrs.Run, order: dict[str, Any]) -> dict[str, Any]:
        n = await a(run, order["n"])
        signal_ = await run.recv("go")
        assert signal_ is not None  # no timeout: it waits for one
        await checkpoint(run, bool(order.get("crash")))
        return await b(run, signal_.payload, n)

    return flow


def child_flow() -> WorkflowDef:
    @step
    async def work(run: pgqrs.Run, n: int) -> int:
        effect(run, f"child {n} start")
        while not RELEASE.exists():
            await asyncio.sleep(0.02)
        effect(run, f"child {n} done")
        return n * 10

    @workflow(name="child")
    async def flow(run: pgqrs.Run, n: int) -> int:
        return await work(run, n)

    return flow


def gather_flow() -> WorkflowDef:
    @step
    async def plan(run: pgqrs.Run, inputs: list[int]) -> list[int]:
        effect(run, "plan")
        return inputs

    @workflow(name="gather")
    async def flow(run: pgqrs.Run, inputs: list[int]) -> list[Any]:
        planned = await plan(run, inputs)
        children = [await run.start_child("child", n) for n in planned]
        return await run.gather(*children)

    return flow


def fan_out_flow() -> WorkflowDef:
    @step
    async def midway(run: pgqrs.Run) -> None:
        effect(run, "midway start")
        die_the_first_time(MIDWAY_MARKER)
        effect(run, "midway done")

    @workflow(name="fan_out")
    async def flow(run: pgqrs.Run, count: int) -> list[Any]:
        children = []
        for n in range(1, count + 1):
            children.append(await run.start_child("child", n))
            if n == 2:
                await midway(run)
        return await run.gather(*children)

    return flow


SCENARIOS = {
    "recv": [recv_flow],
    "gather": [gather_flow, child_flow, child_flow, child_flow],
    "fan_out": [fan_out_flow, child_flow],
}


async def poll(
    store: pgqrs.Store, consumer: pgqrs.Consumer, flow: WorkflowDef, lease: float
) -> None:
    runner: Any = (
        pgqrs.dequeue().worker(consumer).handle_workflow(flow).lease(lease).poll_interval(20)
    )
    with contextlib.suppress(pgqrs.SuspendedError):
        await runner.poll(store)


async def main(scenario: str) -> None:
    config = pgqrs.Config(os.environ["PGQRS_CHILD_DSN"])
    schema = os.environ.get("PGQRS_CHILD_SCHEMA")
    if schema and config.dsn.startswith("postgres"):
        config.schema = schema
    if "PGQRS_CHILD_S3_CACHE_DIR" in os.environ:  # S3 targets (Target.env())
        config.s3_cache_dir = os.environ["PGQRS_CHILD_S3_CACHE_DIR"]
    lease = float(os.environ.get("PGQRS_CHILD_LEASE", "30"))
    store = await pgqrs.connect_with(config)
    try:
        flows = [make() for make in SCENARIOS[scenario]]
        consumers = [await store.consumer(flow.name) for flow in flows]

        interrupts: list[asyncio.Future[None]] = []

        def interrupt_all() -> None:
            interrupts.extend(asyncio.ensure_future(c.interrupt()) for c in consumers)

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, interrupt_all)
        await asyncio.gather(
            *(poll(store, c, f, lease) for c, f in zip(consumers, flows, strict=True))
        )
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
