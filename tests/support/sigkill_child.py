"""Child programs of the SIGKILL storm (tests/faults/test_sigkill_storm.py).

    python -m tests.support.sigkill_child drain QUEUE LOG LEASE BATCH WORK_MS
    python -m tests.support.sigkill_child workflow LOG LEASE STEP_MS

The database comes from `Target.env()` (tests/support/process.py `child_store`). Each child
appends JSON lines to its own LOG file, one `os.write` per line or batch of lines (so a SIGKILL
never leaves half a line behind, and what was written reaches the file even when the process
dies right after): `{"ev": "ready", ...}` once its worker is registered, then

* drain: `start` for every claimed message when the batch handler is called (message id, pid,
  monotonic and wall time, the lease end `vt` and `read_ct`), then WORK_MS of simulated work per
  message, then `end` for each message;
* workflow: `start` and `end` around the body of each step of the three-step `storm` workflow
  (run id, step name, pid, times), STEP_MS of simulated work inside each body.

Monotonic time is the system-wide CLOCK_MONOTONIC, comparable with the parent's. The worker runs
its poll loop until SIGTERM interrupts its consumer; it then exits 0. `max_read_ct` is raised so
that repeated kills never make a message poison (the storm is about loss and duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from typing import Any

import pgqrs
from pgqrs.decorators import WorkflowDef, step, workflow
from tests.support.process import child_store

HEARTBEAT = 1
POLL_MS = 20
MAX_READ_CT = 1000
WORKFLOW = "storm"


class Log:
    """Appends JSON lines to one file with O_APPEND; each `write` is a single system call."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, *events: dict[str, Any]) -> None:
        data = "".join(json.dumps(event, separators=(",", ":")) + "\n" for event in events)
        os.write(self.fd, data.encode())

    def close(self) -> None:
        os.close(self.fd)


def stamp(ev: str, **fields: Any) -> dict[str, Any]:
    return {"ev": ev, "pid": os.getpid(), "mono": time.monotonic(), "wall": time.time(), **fields}


async def connect() -> pgqrs.Store:
    return await child_store(
        heartbeat_interval_seconds=HEARTBEAT, poll_interval_ms=POLL_MS, max_read_ct=MAX_READ_CT
    )


def interrupt_on_sigterm(consumer: pgqrs.Consumer) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(consumer.interrupt()))


async def drain(queue: str, log: Log, lease: float, batch: int, work_ms: float) -> None:
    store = await connect()
    try:
        consumer = await store.consumer(queue)
        interrupt_on_sigterm(consumer)

        async def handle(messages: list[pgqrs.QueueMessage]) -> None:
            log.write(*(stamp("start", id=m.id, vt=m.vt, read_ct=m.read_ct) for m in messages))
            await asyncio.sleep(work_ms * len(messages) / 1000)  # the simulated work
            log.write(*(stamp("end", id=m.id) for m in messages))

        builder = (
            pgqrs.dequeue()
            .worker(consumer)
            .batch(batch)
            .lease(lease)
            .poll_interval(POLL_MS)
            .handle_batch(handle)
        )
        log.write(stamp("ready", worker=consumer.worker_id))
        with contextlib.suppress(pgqrs.SuspendedError):
            await builder.poll(store)
        log.write(stamp("stopped", worker=consumer.worker_id))
    finally:
        await store.close()


def storm_flow(log: Log, step_ms: float) -> WorkflowDef:
    async def body(run: pgqrs.Run, name: str, x: int, plus: int) -> int:
        log.write(stamp("start", run=run.id(), step=name))
        await asyncio.sleep(step_ms / 1000)  # the simulated work
        log.write(stamp("end", run=run.id(), step=name))
        return x + plus

    @step
    async def one(run: pgqrs.Run, x: int) -> int:
        return await body(run, "one", x, 1)

    @step
    async def two(run: pgqrs.Run, x: int) -> int:
        return await body(run, "two", x, 2)

    @step
    async def three(run: pgqrs.Run, x: int) -> int:
        return await body(run, "three", x, 3)

    @workflow(name=WORKFLOW)
    async def flow(run: pgqrs.Run, x: int) -> int:
        return await three(run, await two(run, await one(run, x)))

    return flow


async def workflow_worker(log: Log, lease: float, step_ms: float) -> None:
    store = await connect()
    try:
        consumer = await store.consumer(WORKFLOW)
        interrupt_on_sigterm(consumer)
        builder = (
            pgqrs.dequeue()
            .worker(consumer)
            .lease(lease)
            .poll_interval(POLL_MS)
            .handle_workflow(storm_flow(log, step_ms))
        )
        log.write(stamp("ready", worker=consumer.worker_id))
        with contextlib.suppress(pgqrs.SuspendedError):
            await builder.poll(store)
        log.write(stamp("stopped", worker=consumer.worker_id))
    finally:
        await store.close()


async def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "drain":
        queue, path, lease, batch, work_ms = argv[1:6]
        log = Log(path)
        try:
            await drain(queue, log, float(lease), int(batch), float(work_ms))
        finally:
            log.close()
    elif mode == "workflow":
        path, lease, step_ms = argv[1:4]
        log = Log(path)
        try:
            await workflow_worker(log, float(lease), float(step_ms))
        finally:
            log.close()
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
