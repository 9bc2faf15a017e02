"""A workflow worker process for the crash and multi-process tests.

Run as `python -m tests.support.workflow_child <flow>` with the environment of
`Target.env()` (PGQRS_CHILD_DSN, PGQRS_CHILD_SCHEMA) plus:

* PGQRS_CHILD_DIR: where side effects are logged (`effects.log`, one line per effect,
  `<run id> <what>`, appended with O_APPEND so several processes can share it) and where the
  crash marker lives;
* PGQRS_CHILD_LEASE: the lease in seconds (short, so a survivor can take over quickly).

Flows: `crash` has five steps and its third step SIGKILLs its own process the first time it
runs (when the marker file is absent); `three` has three plain steps. The worker polls until
SIGTERM, which interrupts its consumer; it then exits 0.
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

DIR = Path(os.environ["PGQRS_CHILD_DIR"])
EFFECTS = DIR / "effects.log"
MARKER = DIR / "crashed-once"


def effect(run: pgqrs.Run, what: str) -> None:
    fd = os.open(EFFECTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{run.id()} {what}\n".encode())
    finally:
        os.close(fd)


def crash_flow() -> WorkflowDef:
    @step
    async def step1(run: pgqrs.Run, x: int) -> int:
        effect(run, "step1")
        return x + 1

    @step
    async def step2(run: pgqrs.Run, x: int) -> int:
        effect(run, "step2")
        return x * 10

    @step
    async def step3(run: pgqrs.Run, x: int) -> int:
        effect(run, "step3 start")
        if not MARKER.exists():
            MARKER.touch()
            os.kill(os.getpid(), signal.SIGKILL)  # the process dies mid-step, for real
        effect(run, "step3 done")
        return x + 3

    @step
    async def step4(run: pgqrs.Run, x: int) -> int:
        effect(run, "step4")
        return x * 2

    @step
    async def step5(run: pgqrs.Run, x: int) -> dict[str, int]:
        effect(run, "step5")
        return {"total": x}

    @workflow(name="crash")
    async def flow(run: pgqrs.Run, order: dict[str, int]) -> dict[str, int]:
        x = await step1(run, order["n"])
        x = await step2(run, x)
        x = await step3(run, x)
        x = await step4(run, x)
        return await step5(run, x)

    return flow


def three_flow() -> WorkflowDef:
    @step
    async def one(run: pgqrs.Run, x: int) -> int:
        effect(run, "one")
        return x + 1

    @step
    async def two(run: pgqrs.Run, x: int) -> int:
        effect(run, "two")
        return x + 2

    @step
    async def three(run: pgqrs.Run, x: int) -> int:
        effect(run, "three")
        return x + 3

    @workflow(name="three")
    async def flow(run: pgqrs.Run, x: int) -> int:
        return await three(run, await two(run, await one(run, x)))

    return flow


FLOWS = {"crash": crash_flow, "three": three_flow}


async def main(name: str) -> None:
    config = pgqrs.Config(os.environ["PGQRS_CHILD_DSN"])
    schema = os.environ.get("PGQRS_CHILD_SCHEMA")
    if schema and config.dsn.startswith("postgres"):
        config.schema = schema
    if "PGQRS_CHILD_S3_CACHE_DIR" in os.environ:  # S3 targets (Target.env())
        config.s3_cache_dir = os.environ["PGQRS_CHILD_S3_CACHE_DIR"]
    store = await pgqrs.connect_with(config)
    try:
        consumer = await store.consumer(name)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(consumer.interrupt()))
        lease = float(os.environ.get("PGQRS_CHILD_LEASE", "30"))
        runner: Any = (
            pgqrs.dequeue()
            .worker(consumer)
            .handle_workflow(FLOWS[name]())
            .lease(lease)
            .poll_interval(20)
        )
        (DIR / f"ready-{os.getpid()}").touch()
        with contextlib.suppress(pgqrs.SuspendedError):
            await runner.poll(store)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
