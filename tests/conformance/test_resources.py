"""Stores leave nothing behind (semantics.md §2): closed, collected, or outlived by their loop."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from urllib.parse import urlencode

import psycopg

import pgqrs
from tests.support.target import PG_DSN, Target

PROGRAM = """
import asyncio, sys, pgqrs

async def main():
    config = pgqrs.Config(sys.argv[1])
    if sys.argv[2]:
        config.schema = sys.argv[2]
    if sys.argv[3]:
        config.s3_cache_dir = sys.argv[3]
    store = await pgqrs.connect_with(config)
    await pgqrs.admin(store).install()
    await store.queue("jobs")
    producer = await store.producer("jobs")
    consumer = await store.consumer("jobs")
    await producer.enqueue({"n": 1})
    await consumer.dequeue()
    # no close(): the program just ends

asyncio.run(main())
"""


def test_a_program_that_never_closes_its_store_exits_cleanly(target: Target) -> None:
    schema = target.schema if target.backend == "postgres" else ""
    cache = target.extra.get("s3_cache_dir", "")
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", PROGRAM, target.dsn, schema, cache],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warnings, no "Task was destroyed", no traceback


ABANDONED_LOOP = """
import asyncio, sys, pgqrs

async def main():
    config = pgqrs.Config(sys.argv[1])
    if sys.argv[2]:
        config.schema = sys.argv[2]
    if sys.argv[3]:
        config.s3_cache_dir = sys.argv[3]
    store = await pgqrs.connect_with(config)
    await pgqrs.admin(store).install()
    await store.queue("jobs")
    producer = await store.producer("jobs")

    async def enqueue_forever():
        while True:
            try:
                await producer.enqueue("x")
            except pgqrs.PgqrsError:
                await asyncio.sleep(0)

    builder = pgqrs.dequeue().from_queue("jobs").poll_interval(10).handle(lambda m: None)
    tasks = [asyncio.create_task(enqueue_forever()) for _ in range(8)]
    tasks.append(asyncio.create_task(builder.poll(store)))
    await asyncio.sleep(0.2)
    # Close under running work: calls already past the closed check reach stopped connection
    # threads; they must fail, or asyncio.run's cancellation below would wait for them forever.
    await store.close()

asyncio.run(main())
"""


def test_a_loop_left_running_when_its_store_closes_lets_the_program_end(target: Target) -> None:
    schema = target.schema if target.backend == "postgres" else ""
    cache = target.extra.get("s3_cache_dir", "")
    result = subprocess.run(
        [sys.executable, "-c", ABANDONED_LOOP, target.dsn, schema, cache],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _pgqrs_threads() -> int:
    return sum(t.name.startswith("pgqrs-") for t in threading.enumerate())


async def _until(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "resources were not released"
        gc.collect()
        await asyncio.sleep(0.02)


async def test_dropped_stores_release_their_connections(target: Target) -> None:
    if target.backend != "postgres":  # file backends: their connections live on threads
        before = _pgqrs_threads()
        for _ in range(3):
            store = await target.connect()
            await store.get_queues()
            del store
        await _until(lambda: _pgqrs_threads() <= before)
        return
    tag = f"pgqrs-gc-{uuid.uuid4().hex[:8]}"
    dsn = f"{target.dsn}{'&' if '?' in target.dsn else '?'}{urlencode({'application_name': tag})}"

    def server_connections() -> int:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [tag]
            ).fetchone()
            return int(row[0]) if row else 0

    loop = asyncio.get_running_loop()
    problems: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    try:
        for _ in range(3):
            store = await pgqrs.connect_with(pgqrs.Config(dsn, schema=target.schema))
            del store
        await _until(lambda: server_connections() == 0)
    finally:
        loop.set_exception_handler(None)
    assert problems == []  # e.g. "Task was destroyed but it is pending!" from the pool
