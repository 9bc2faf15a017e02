"""A consumer process for crash and signal tests.

    python -m tests.support.child_consumer MODE QUEUE DIR

The database comes from PGQRS_CHILD_DSN / PGQRS_CHILD_SCHEMA (`Target.env()`). The child writes
`DIR/worker` (its worker id) before it polls, and marker files as it goes, so the parent waits
for events, never for time. Modes:

* `hold`: a poll loop (heartbeat 1 s, lease 3 s) whose handler records the claimed ids in
  `DIR/claimed`, then never returns (the parent kills it). While it lives, its heartbeats keep
  the leases running; once it is dead they end within 3 s.
* `graceful`: `run_worker`; the handler writes `DIR/started`, waits until its worker has been
  interrupted (by the parent's SIGTERM), writes `DIR/finished` and returns.
* `stubborn`: `run_worker`; the handler writes `DIR/started` and never returns.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pgqrs


async def connect() -> pgqrs.Store:
    config = pgqrs.Config(
        os.environ["PGQRS_CHILD_DSN"],
        schema=os.environ.get("PGQRS_CHILD_SCHEMA", "public"),
        heartbeat_interval_seconds=1,
        poll_interval_ms=20,
    )
    if "PGQRS_CHILD_S3_CACHE_DIR" in os.environ:  # S3 targets (Target.env())
        config.s3_cache_dir = os.environ["PGQRS_CHILD_S3_CACHE_DIR"]
    return await pgqrs.connect_with(config)


HOLD_LEASE_SECONDS = 3


async def hold(store: pgqrs.Store, queue: str, out: Path) -> None:
    consumer = await store.consumer(queue)
    (out / "worker").write_text(str(consumer.worker_id))

    async def handler(messages: list[pgqrs.QueueMessage]) -> None:
        (out / "claimed").write_text(",".join(str(m.id) for m in messages))
        await asyncio.Event().wait()

    builder = pgqrs.dequeue().worker(consumer).batch(10).lease(HOLD_LEASE_SECONDS)
    await builder.handle_batch(handler).poll(store)


async def under_run_worker(store: pgqrs.Store, queue: str, out: Path, graceful: bool) -> None:
    consumer = await store.consumer(queue)
    (out / "worker").write_text(str(consumer.worker_id))

    async def handler(message: pgqrs.QueueMessage) -> None:
        (out / "started").write_text(str(message.id))
        if not graceful:
            await asyncio.Event().wait()
        deadline = time.monotonic() + 20
        while await consumer.status() != pgqrs.WorkerStatus.Interrupted:
            if time.monotonic() > deadline:
                raise RuntimeError("never interrupted")
            await asyncio.sleep(0.02)
        (out / "finished").write_text(str(message.id))

    await pgqrs.run_worker(store, pgqrs.dequeue().worker(consumer).handle(handler))
    (out / "returned").write_text("ok")


async def main(mode: str, queue: str, out: Path) -> None:
    store = await connect()
    try:
        runs: dict[str, Any] = {
            "hold": lambda: hold(store, queue, out),
            "graceful": lambda: under_run_worker(store, queue, out, graceful=True),
            "stubborn": lambda: under_run_worker(store, queue, out, graceful=False),
        }
        await runs[mode]()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
