"""Workflow throughput: completed runs per second of a 3-step workflow through `handle_workflow`.

    python benchmarks/workflow_throughput.py                 # SQLite and PostgreSQL
    python benchmarks/workflow_throughput.py --backend sqlite --runs 1000 --workers 8

All runs are triggered first (not timed); the clock runs from starting the workers until the
last run has succeeded. Each backend gets a fresh database: a temporary SQLite file, or a new
PostgreSQL schema (dropped afterwards) on PGQRS_TEST_DSN. Every run is checked to have ended
SUCCESS with each step executed exactly once, so a fast wrong answer cannot pass as a result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pgqrs
from pgqrs.decorators import step, workflow

PG_DSN = os.environ.get("PGQRS_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def make_flow(executed: Counter[tuple[int, str]]) -> pgqrs.WorkflowDef:
    @step
    async def reserve(run: pgqrs.Run, order: int) -> dict[str, int]:
        executed[run.id(), "reserve"] += 1
        return {"order": order, "items": 3}

    @step
    async def charge(run: pgqrs.Run, reservation: dict[str, int]) -> dict[str, int]:
        executed[run.id(), "charge"] += 1
        return {**reservation, "paid": reservation["items"] * 10}

    @step
    async def ship(run: pgqrs.Run, payment: dict[str, int]) -> str:
        executed[run.id(), "ship"] += 1
        return f"order {payment['order']} shipped"

    @workflow(name="bench")
    async def flow(run: pgqrs.Run, order: int) -> str:
        return await ship(run, await charge(run, await reserve(run, order)))

    return flow


async def measure(config: pgqrs.Config, runs: int, workers: int, batch: int) -> float:
    """Runs per second for one configuration."""
    store = await pgqrs.connect_with(config)
    try:
        await pgqrs.admin(store).install()
        admin = pgqrs.admin(store)
        for order in range(runs):
            await admin.create_workflow("bench", order)
        executed: Counter[tuple[int, str]] = Counter()
        flow = make_flow(executed)
        finished = asyncio.Event()
        done = 0

        async def handler(run: pgqrs.Run) -> None:
            nonlocal done
            await flow(run)
            done += 1
            if done == runs:
                finished.set()

        consumers = [await store.consumer("bench") for _ in range(workers)]
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(
                pgqrs.dequeue()
                .worker(c)
                .batch(batch)
                .handle_workflow(handler)
                .poll_interval(10)
                .poll(store)
            )
            for c in consumers
        ]
        await asyncio.wait_for(finished.wait(), 600)
        elapsed = time.perf_counter() - started
        for c in consumers:
            await c.interrupt()
        await asyncio.gather(*tasks, return_exceptions=True)
        records = await (await store.get_workflow_runs()).list()
        if len(records) != runs or any(r.status != "SUCCESS" for r in records):
            raise RuntimeError("not every run ended SUCCESS")
        if len(executed) != 3 * runs or set(executed.values()) != {1}:
            raise RuntimeError("a step was skipped or executed more than once")
        return runs / elapsed
    finally:
        await store.close()


async def on_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    rates = []
    for _ in range(args.repeat):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                config = pgqrs.Config(f"sqlite://{Path(tmp) / 'bench.db'}")
                rates.append(await measure(config, args.runs, args.workers, args.batch))
        else:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            config = pgqrs.Config(args.dsn, schema=schema)
            try:
                rates.append(await measure(config, args.runs, args.workers, args.batch))
            finally:
                await drop_schema(args.dsn, schema)
    return {
        "backend": backend,
        "runs": args.runs,
        "workers": args.workers,
        "batch": args.batch,
        "runs_per_second": round(statistics.median(rates), 1),
        "all": [round(r, 1) for r in rates],
    }


async def drop_schema(dsn: str, schema: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="report the median of N rounds")
    parser.add_argument("--dsn", default=PG_DSN, help="PostgreSQL DSN")
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    for backend in backends:
        result = await on_backend(backend, args)
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"{backend:9} {result['runs_per_second']:8.1f} runs/s  "
                f"(3-step workflow, {args.runs} runs, {args.workers} workers, batch {args.batch}; "
                f"rounds {result['all']})"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
