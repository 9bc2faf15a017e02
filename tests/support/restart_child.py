"""Child programs of the PostgreSQL fault scenarios (tests/faults/test_pg_restart.py).

    python -m tests.support.restart_child consumer QUEUE DIR LEASE
    python -m tests.support.restart_child workflow NAME DIR LEASE

The database comes from PGQRS_CHILD_DSN / PGQRS_CHILD_SCHEMA (`Target.env()`), the connection
timeout from PGQRS_CHILD_CONNECT_TIMEOUT. Each child runs `pgqrs.run_worker` until SIGTERM and
leaves files in DIR so the parent waits for events, never for time:

* `ready-<pid>`: the worker id, written before the loop starts;
* `handled-<pid>.jsonl` (consumer): one line per handling: message id, worker, start and end
  (epoch seconds) and the lease end the claim gave (`message.vt`, epoch seconds);
* `steps-<pid>.jsonl` (workflow): one line each time a step body starts: run id, step, time;
* `exit-<pid>`: `stopped` when `run_worker` returned after SIGTERM, else the error that ended it.

Logs (the library's warnings included) go to stderr, which the parent sends to a file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

import pgqrs
from pgqrs.decorators import WorkflowDef, step, workflow

WORK_SECONDS = 0.005  # what a plain handler "does"
STEP_SECONDS = 0.05  # what each workflow step "does"


def append_line(path: Path, record: dict[str, Any]) -> None:
    """One JSON line, written with a single O_APPEND write (never a torn line)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


def epoch(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


async def connect() -> pgqrs.Store:
    config = pgqrs.Config(
        os.environ["PGQRS_CHILD_DSN"],
        schema=os.environ["PGQRS_CHILD_SCHEMA"],
        heartbeat_interval_seconds=1,
        poll_interval_ms=50,
        connection_timeout_seconds=int(os.environ.get("PGQRS_CHILD_CONNECT_TIMEOUT", "10")),
    )
    return await pgqrs.connect_with(config)


async def consume(store: pgqrs.Store, queue: str, out: Path, lease: float) -> None:
    consumer = await store.consumer(queue)
    pid = os.getpid()
    handled = out / f"handled-{pid}.jsonl"

    async def handler(message: pgqrs.QueueMessage) -> None:
        start = time.time()
        await asyncio.sleep(WORK_SECONDS)
        record = {
            "id": message.id,
            "worker": consumer.worker_id,
            "pid": pid,
            "start": start,
            "end": time.time(),
            "vt": epoch(message.vt),
            "read_ct": message.read_ct,
        }
        append_line(handled, record)

    (out / f"ready-{pid}").write_text(str(consumer.worker_id))
    builder = pgqrs.dequeue().worker(consumer).handle(handler).lease(lease)
    await pgqrs.run_worker(store, builder)


def three_steps(name: str, out: Path) -> WorkflowDef:
    effects = out / f"steps-{os.getpid()}.jsonl"

    def started(run: pgqrs.Run, what: str) -> None:
        append_line(effects, {"run": run.id(), "step": what, "start": time.time()})

    @step
    async def prepare(run: pgqrs.Run, n: int) -> int:
        started(run, "prepare")
        await asyncio.sleep(STEP_SECONDS)
        return n + 1

    @step
    async def compute(run: pgqrs.Run, x: int) -> int:
        started(run, "compute")
        await asyncio.sleep(STEP_SECONDS)
        return x * 10

    @step
    async def finish(run: pgqrs.Run, x: int) -> dict[str, int]:
        started(run, "finish")
        await asyncio.sleep(STEP_SECONDS)
        return {"total": x + 3}

    @workflow(name=name)
    async def flow(run: pgqrs.Run, order: dict[str, int]) -> dict[str, int]:
        return await finish(run, await compute(run, await prepare(run, order["n"])))

    return flow


async def run_workflows(store: pgqrs.Store, name: str, out: Path, lease: float) -> None:
    consumer = await store.consumer(name)
    (out / f"ready-{os.getpid()}").write_text(str(consumer.worker_id))
    builder = pgqrs.dequeue().worker(consumer).handle_workflow(three_steps(name, out)).lease(lease)
    await pgqrs.run_worker(store, builder)


async def main(mode: str, name: str, out: Path, lease: float) -> None:
    store = await connect()
    try:
        if mode == "consumer":
            await consume(store, name, out, lease)
        elif mode == "workflow":
            await run_workflows(store, name, out, lease)
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        await store.close()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("pgqrs").setLevel(logging.INFO)
    directory = Path(sys.argv[3])
    exit_file = directory / f"exit-{os.getpid()}"
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], directory, float(sys.argv[4])))
    except BaseException as err:
        # Kept out of the log: tracebacks there are the library's own (the parent counts them).
        exit_file.write_text(f"{type(err).__name__}: {err}\n{traceback.format_exc()}")
        sys.exit(1)
    exit_file.write_text("stopped")
