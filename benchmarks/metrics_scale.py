"""Time the metrics statements on a PostgreSQL queue of N rows (default 1,000,000).

    python -m benchmarks.metrics_scale [ROWS]     (from the repository root)

Builds a fresh schema with one queue of ROWS messages (97.5 % archived, the rest pending,
delayed, leased and poison; see tests/support/bulk.py) and a second queue of 5,000, then prints
the best of five runs of each metrics call. Not part of the test run: the build takes a while.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from tests.support.bulk import fill
from tests.support.clocks import at

import pgqrs

DSN = os.environ.get("PGQRS_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def best_of(call: Callable[[], Awaitable[Any]], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        best = min(best, time.perf_counter() - started)
    return best * 1000


async def main(rows: int) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    store = await pgqrs.connect_with(pgqrs.Config(DSN, schema=schema))
    try:
        admin = pgqrs.admin(store)
        await admin.install()
        for name in ("big", "small"):
            await admin.create_queue(name)
        worker = await store.consumer("big")
        started = time.perf_counter()
        now = at(0)
        await fill(store, "big", rows, worker.worker_id, now)
        await fill(store, "small", 5_000, worker.worker_id, now)
        print(f"built {rows:,} + 5,000 rows in {time.perf_counter() - started:.1f} s")
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            f"queue_metrics (queue of {rows:,})": lambda: admin.queue_metrics("big"),
            "queue_metrics (queue of 5,000)": lambda: admin.queue_metrics("small"),
            "all_queues_metrics": admin.all_queues_metrics,
            "system_stats": admin.system_stats,
            "worker_health_stats": lambda: admin.worker_health_stats(60, group_by_queue=True),
            f"dlq_list (queue of {rows:,})": lambda: admin.dlq_list("big"),
        }
        for label, call in calls.items():
            print(f"{label:40s} {await best_of(call):8.1f} ms")
    finally:
        await store.db.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
