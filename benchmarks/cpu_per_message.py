"""CPU per message of the hot paths (issue 16): this process's user and system CPU seconds
(getrusage) per message, beside the wall-clock rate, for

* `drain`: a backlog drained by C consumers of one store, each looping `dequeue(B)` +
  `archive_many` (the explicit drain of scenarios.py); PostgreSQL backlogs are bulk-loaded
  behind the library's back, SQLite ones enqueued through the API (neither is timed);
* `enqueue`: single `producer.enqueue(payload)` calls.

It runs against whichever `pgqrs` the interpreter imports, so one command measures this
checkout, pgqrs 0.15.3 (the reference virtualenv of compare.py) or an older checkout:

    .venv/bin/python benchmarks/cpu_per_message.py                 # every case, 3 rounds
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/cpu_per_message.py --case drain
    benchmarks/results/work/venv-pgqrs/bin/python benchmarks/cpu_per_message.py --backend postgres

One line per run: `case backend C B: msgs/s, user us/msg, sys us/msg`. On a machine shared with
the database server the rate moves with the load; the CPU per message moves much less, which
is why the profile of benchmarks/README.md ("Profile") is in these units.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bench_config
import psycopg

import pgqrs

PAYLOAD = {"n": 1, "kind": "bench", "ref": "order-1"}
REFERENCE = hasattr(pgqrs, "_pgqrs")  # pgqrs 0.15.3: a compiled extension, PostgreSQL only
DRAINS = [(4, 100), (1, 100), (4, 10)]


def cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def measure(count: int, work: Callable[[], Awaitable[None]]) -> str:
    (user0, sys0), started = cpu(), time.perf_counter()
    await work()
    (user1, sys1), wall = cpu(), time.perf_counter() - started
    return (
        f"{count / wall:8.0f} msgs/s, user {(user1 - user0) / count * 1e6:6.1f} us/msg, "
        f"sys {(sys1 - sys0) / count * 1e6:5.1f} us/msg"
    )


async def open_store(backend: str, workdir: Path) -> tuple[Any, str | None]:
    """A fresh store: a new schema on PostgreSQL, a new file on SQLite."""
    if backend == "postgres":
        schema = "cpu_" + uuid.uuid4().hex[:10]
        with psycopg.connect(bench_config.PG_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        config = pgqrs.Config(bench_config.PG_DSN, schema=schema)
    else:
        schema = None
        config = pgqrs.Config(f"sqlite://{workdir / (uuid.uuid4().hex + '.db')}")
    config.max_enqueue_per_second = None  # pgqrs 0.15.3 limits enqueues by default
    config.max_enqueue_burst = None
    store = await pgqrs.connect_with(config)
    await pgqrs.admin(store).install()
    return store, schema


async def close(store: Any, schema: str | None) -> None:
    if hasattr(store, "close"):  # pgqrs 0.15.3's Store has no close()
        await store.close()
    if schema is not None:
        with psycopg.connect(bench_config.PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def fill(store: Any, schema: str | None, count: int) -> None:
    queue = await store.queue("q")
    if schema is None:
        producer = await store.producer("q")
        for first in range(0, count, 1000):
            payloads = [{**PAYLOAD, "n": n} for n in range(first, min(first + 1000, count))]
            await pgqrs.enqueue_batch(producer, payloads)
        return
    with psycopg.connect(bench_config.PG_DSN, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{schema}".pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct) '
            "SELECT %s, jsonb_build_object('n', g, 'kind', 'bench', 'ref', 'order-' || g), t, t, 0 "
            "FROM generate_series(1, %s) AS g, "
            "LATERAL (SELECT now() - interval '1 hour' + g * interval '1 microsecond') AS s(t)",
            (queue.id, count),
        )
        conn.execute(f'VACUUM ANALYZE "{schema}".pgqrs_messages')


async def drain(backend: str, workdir: Path, consumers: int, batch: int, count: int) -> str:
    store, schema = await open_store(backend, workdir)
    try:
        await fill(store, schema, count)
        workers = [await store.consumer("q") for _ in range(consumers)]
        done: list[int] = []

        async def run(consumer: Any) -> None:
            while messages := await consumer.dequeue(batch):
                ids = [m.id for m in messages]
                if not all(await consumer.archive_many(ids)):
                    raise RuntimeError("archive_many lost a message it owned")
                done.extend(ids)

        async def everyone() -> None:
            await asyncio.gather(*(run(c) for c in workers))

        line = await measure(count, everyone)
        if len(done) != count or len(set(done)) != count:
            raise RuntimeError(f"drained {len(done)} messages, not {count}")
        return line
    finally:
        await close(store, schema)


async def enqueue(backend: str, workdir: Path, count: int) -> str:
    store, schema = await open_store(backend, workdir)
    try:
        await store.queue("q")
        producer = await store.producer("q")
        for _ in range(200):  # warm: statements prepared, connections open
            await producer.enqueue(PAYLOAD)

        async def send() -> None:
            for _ in range(count):
                await producer.enqueue(PAYLOAD)

        return await measure(count, send)
    finally:
        await close(store, schema)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="drain,enqueue")
    parser.add_argument("--backend", default="postgres,sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=20_000, help="drain backlog")
    parser.add_argument("--enqueues", type=int, default=5_000)
    args = parser.parse_args()
    cases, backends = args.case.split(","), args.backend.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for round_ in range(1, args.rounds + 1):
            for backend in backends:
                if backend != "postgres" and REFERENCE:
                    continue
                if "drain" in cases:
                    for consumers, batch in DRAINS:
                        line = await drain(backend, workdir, consumers, batch, args.messages)
                        print(f"round {round_} drain {backend} C={consumers} B={batch}: {line}")
                if "enqueue" in cases:
                    line = await enqueue(backend, workdir, args.enqueues)
                    print(f"round {round_} enqueue {backend}: {line}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
