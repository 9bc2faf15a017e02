"""The physical limit: the queue scenarios as hand-written SQL (psycopg 3 / sqlite3).

One claim statement and one archive statement per batch, on tables equal to the libraries'
(schema.md: the same columns, types, foreign keys and indexes) plus the one index a
hand-tuned claim needs, `(queue_id, enqueued_at, id) WHERE archived_at IS NULL`, which lets
the claim walk the index in claim order and stop after `batch` rows. The statements keep the
library's semantics: pending = not archived, `vt` passed, `read_ct` below the limit; claim in
`(enqueued_at, id)` order with SKIP LOCKED; the archive is fenced on the owner; every claimed
row is returned whole and its payload decoded.

PostgreSQL: one autocommit connection per consumer on one asyncio loop (as the libraries run
their consumers), statements prepared from the first execution. SQLite: one connection per
consumer on its own thread, writers taking turns through a mutex, WAL, `synchronous=NORMAL`,
`BEGIN IMMEDIATE`, and prepared statements through the sqlite3 statement cache.

    python benchmarks/raw_sql.py --quick
    python benchmarks/raw_sql.py --scenario drain --backend sqlite --consumers 1 --batches 100

Prints one JSON line per case, like scenarios.py (impl "raw"); the drain cases are reported
with mode "explicit" and serve as the baseline of both drain modes.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import bench_config
import bench_support as support
import psycopg
from bench_support import Target
from psycopg.types.json import Jsonb

IMPL = "raw"
IMPL_VERSION = f"raw SQL (psycopg {psycopg.__version__} / sqlite3 {sqlite3.sqlite_version})"
MAX_READ_CT = 3  # Config.max_read_ct's default
LEASE_S = 30.0  # Config.default_lock_time_seconds's default
COLUMNS = (
    "id, queue_id, payload, vt, enqueued_at, read_ct, dequeued_at, "
    "producer_worker_id, consumer_worker_id, archived_at"
)
CLAIM_INDEX = "(queue_id, enqueued_at, id) WHERE archived_at IS NULL"

PG_DDL = (
    "CREATE TYPE {s}.worker_status AS ENUM ('ready', 'polling', 'suspended', 'interrupted', "
    "'stopped')",
    "CREATE TABLE {s}.pgqrs_queues (id BIGSERIAL PRIMARY KEY, queue_name VARCHAR UNIQUE NOT NULL,"
    " created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    "CREATE TABLE {s}.pgqrs_workers (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "name TEXT UNIQUE NOT NULL, queue_id BIGINT REFERENCES {s}.pgqrs_queues(id), "
    "started_at TIMESTAMPTZ DEFAULT now(), heartbeat_at TIMESTAMPTZ DEFAULT now(), "
    "shutdown_at TIMESTAMPTZ, status {s}.worker_status NOT NULL DEFAULT 'ready')",
    "CREATE TABLE {s}.pgqrs_messages (id BIGSERIAL PRIMARY KEY, "
    "queue_id BIGINT NOT NULL REFERENCES {s}.pgqrs_queues(id), payload JSONB NOT NULL, "
    "vt TIMESTAMPTZ DEFAULT now(), enqueued_at TIMESTAMPTZ DEFAULT now(), read_ct INTEGER "
    "DEFAULT 0, dequeued_at TIMESTAMPTZ, "
    "producer_worker_id BIGINT REFERENCES {s}.pgqrs_workers(id), "
    "consumer_worker_id BIGINT REFERENCES {s}.pgqrs_workers(id), archived_at TIMESTAMPTZ)",
    "CREATE INDEX idx_pgqrs_messages_hot_path ON {s}.pgqrs_messages "
    "(queue_id, vt, enqueued_at, id) WHERE archived_at IS NULL",
    "CREATE INDEX idx_pgqrs_messages_consumer_worker_id_active ON {s}.pgqrs_messages "
    "(consumer_worker_id) WHERE archived_at IS NULL AND consumer_worker_id IS NOT NULL",
    "CREATE INDEX idx_pgqrs_messages_archived_at ON {s}.pgqrs_messages (queue_id, archived_at) "
    "WHERE archived_at IS NOT NULL",
    "CREATE INDEX idx_pgqrs_messages_producer_worker_id ON {s}.pgqrs_messages (producer_worker_id)",
    "CREATE INDEX idx_raw_claim_order ON {s}.pgqrs_messages " + CLAIM_INDEX,
)
SQLITE_DDL = (
    "CREATE TABLE pgqrs_queues (id INTEGER PRIMARY KEY AUTOINCREMENT, queue_name TEXT UNIQUE "
    "NOT NULL, created_at TEXT NOT NULL DEFAULT (datetime('now')))",
    "CREATE TABLE pgqrs_workers (id INTEGER PRIMARY KEY AUTOINCREMENT, queue_id INTEGER "
    "REFERENCES pgqrs_queues(id), name TEXT NOT NULL UNIQUE, started_at TEXT NOT NULL DEFAULT "
    "(datetime('now')), heartbeat_at TEXT NOT NULL DEFAULT (datetime('now')), shutdown_at TEXT,"
    " status TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready','polling','suspended',"
    "'interrupted','stopped')))",
    "CREATE TABLE pgqrs_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, queue_id INTEGER NOT "
    "NULL REFERENCES pgqrs_queues(id), payload TEXT NOT NULL, vt TEXT DEFAULT (datetime('now')),"
    " enqueued_at TEXT DEFAULT (datetime('now')), read_ct INTEGER DEFAULT 0, dequeued_at TEXT, "
    "producer_worker_id INTEGER REFERENCES pgqrs_workers(id), consumer_worker_id INTEGER "
    "REFERENCES pgqrs_workers(id), archived_at TEXT)",
    "CREATE INDEX idx_messages_hot_path ON pgqrs_messages (queue_id, vt, enqueued_at, id) "
    "WHERE archived_at IS NULL",
    "CREATE INDEX idx_messages_consumer_active ON pgqrs_messages (consumer_worker_id) "
    "WHERE archived_at IS NULL AND consumer_worker_id IS NOT NULL",
    "CREATE INDEX idx_messages_archived_at ON pgqrs_messages (queue_id, archived_at) "
    "WHERE archived_at IS NOT NULL",
    "CREATE INDEX idx_raw_claim_order ON pgqrs_messages " + CLAIM_INDEX,
)


# -- PostgreSQL -----------------------------------------------------------------------------


class PgQueue:
    """One consumer's or producer's connection, with the statements of the baseline."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], target: Target, queue_id: int) -> None:
        self.conn = conn
        self.queue_id = queue_id
        self.worker_id = 0
        m = target.messages
        self.claim_sql = (
            f"WITH c AS (SELECT id FROM {m} WHERE queue_id = %(q)s AND archived_at IS NULL "
            "AND (vt IS NULL OR vt <= now()) AND read_ct < %(max)s "
            "ORDER BY enqueued_at, id LIMIT %(n)s FOR UPDATE SKIP LOCKED) "
            f"UPDATE {m} AS m SET consumer_worker_id = %(w)s, "
            "vt = now() + make_interval(secs => %(lease)s), read_ct = m.read_ct + 1, "
            "dequeued_at = COALESCE(m.dequeued_at, now()) FROM c WHERE m.id = c.id "
            "RETURNING " + ", ".join(f"m.{c}" for c in COLUMNS.split(", "))
        )
        self.archive_sql = (
            f"UPDATE {m} SET archived_at = now() WHERE id = ANY(%(ids)s) "
            "AND consumer_worker_id = %(w)s AND archived_at IS NULL RETURNING id"
        )
        self.enqueue_sql = (
            f"INSERT INTO {m} (queue_id, payload, vt, enqueued_at, read_ct, producer_worker_id) "
            "VALUES (%(q)s, %(p)s, now(), now(), 0, %(w)s) RETURNING id"
        )
        self.enqueue_many_sql = (
            f"INSERT INTO {m} (queue_id, payload, vt, enqueued_at, read_ct, producer_worker_id) "
            "SELECT %(q)s, p, now(), now(), 0, %(w)s "
            "FROM unnest(CAST(%(ps)s AS jsonb[])) WITH ORDINALITY AS u(p, ord) ORDER BY ord "
            "RETURNING id"
        )

    @classmethod
    async def open(cls, target: Target, queue_id: int, name: str) -> PgQueue:
        conn = await psycopg.AsyncConnection.connect(
            target.dsn, autocommit=True, prepare_threshold=0
        )
        queue = cls(conn, target, queue_id)
        cur = await conn.execute(
            f'INSERT INTO "{target.schema}".pgqrs_workers (name, queue_id) VALUES (%s, %s) '
            "RETURNING id",
            (name, queue_id),
        )
        row = await cur.fetchone()
        assert row is not None
        queue.worker_id = int(row[0])
        return queue

    async def claim(self, n: int) -> list[tuple[Any, ...]]:
        cur = await self.conn.execute(
            self.claim_sql,
            {"q": self.queue_id, "max": MAX_READ_CT, "n": n, "w": self.worker_id, "lease": LEASE_S},
        )
        rows = await cur.fetchall()
        rows.sort(key=lambda r: (r[4], r[0]))
        return rows

    async def archive(self, ids: list[int]) -> list[bool]:
        cur = await self.conn.execute(self.archive_sql, {"ids": ids, "w": self.worker_id})
        done = {row[0] for row in await cur.fetchall()}
        return [i in done for i in ids]

    async def enqueue(self, body: Any) -> int:
        cur = await self.conn.execute(
            self.enqueue_sql, {"q": self.queue_id, "p": Jsonb(body), "w": self.worker_id}
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def enqueue_many(self, bodies: list[Any]) -> list[int]:
        cur = await self.conn.execute(
            self.enqueue_many_sql,
            {"q": self.queue_id, "ps": [Jsonb(b) for b in bodies], "w": self.worker_id},
        )
        return [int(r[0]) for r in await cur.fetchall()]

    async def close(self) -> None:
        await self.conn.close()


async def pg_install(target: Target) -> int:
    s = f'"{target.schema}"'
    async with await psycopg.AsyncConnection.connect(target.dsn, autocommit=True) as conn:
        for statement in PG_DDL:
            await conn.execute(statement.format(s=s))
        cur = await conn.execute(
            f"INSERT INTO {s}.pgqrs_queues (queue_name) VALUES ('bench') RETURNING id"
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


# -- SQLite ---------------------------------------------------------------------------------


def now_text() -> str:
    return support.sqlite_time(datetime.now(UTC))


class SqliteQueue:
    """One connection (one thread) with the statements of the baseline."""

    CLAIM = (
        "UPDATE pgqrs_messages SET consumer_worker_id = :w, vt = :vt, read_ct = read_ct + 1, "
        "dequeued_at = COALESCE(dequeued_at, :now) WHERE id IN (SELECT id FROM pgqrs_messages "
        "WHERE queue_id = :q AND archived_at IS NULL AND (vt IS NULL OR vt <= :now) "
        f"AND read_ct < :max ORDER BY enqueued_at, id LIMIT :n) RETURNING {COLUMNS}"
    )
    ARCHIVE = (
        "UPDATE pgqrs_messages SET archived_at = :now WHERE id IN (SELECT value FROM "
        "json_each(:ids)) AND consumer_worker_id = :w AND archived_at IS NULL RETURNING id"
    )
    ENQUEUE = (
        "INSERT INTO pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct, "
        "producer_worker_id) VALUES (:q, :p, :now, :now, 0, :w) RETURNING id"
    )
    ENQUEUE_MANY = (
        "INSERT INTO pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct, "
        "producer_worker_id) SELECT :q, value, :now, :now, 0, :w FROM json_each(:ps) "
        "ORDER BY key RETURNING id"
    )

    def __init__(self, target: Target, queue_id: int, name: str) -> None:
        assert target.path is not None
        self.conn = sqlite3.connect(
            target.path, isolation_level=None, check_same_thread=False, cached_statements=64
        )
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.queue_id = queue_id
        row = self.conn.execute(
            "INSERT INTO pgqrs_workers (name, queue_id) VALUES (?, ?) RETURNING id",
            (name, queue_id),
        ).fetchone()
        self.worker_id = int(row[0])

    # Consumers of one process take turns through a mutex instead of SQLite's busy handler,
    # which sleeps (milliseconds) when the write lock is taken: one writer at a time, as the
    # library's SQLite store does with its single writer connection.
    WRITER = threading.Lock()

    def claim(self, n: int) -> list[tuple[Any, ...]]:
        now = datetime.now(UTC)
        params = {
            "w": self.worker_id,
            "vt": support.sqlite_time(now + timedelta(seconds=LEASE_S)),
            "now": support.sqlite_time(now),
            "q": self.queue_id,
            "max": MAX_READ_CT,
            "n": n,
        }
        with self.WRITER:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self.conn.execute(self.CLAIM, params).fetchall()
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        decoded = [(*r[:2], json.loads(r[2]), *r[3:]) for r in rows]
        decoded.sort(key=lambda r: (r[4], r[0]))
        return decoded

    def archive(self, ids: list[int]) -> list[bool]:
        params = {"now": now_text(), "ids": json.dumps(ids), "w": self.worker_id}
        with self.WRITER:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                done = {r[0] for r in self.conn.execute(self.ARCHIVE, params).fetchall()}
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return [i in done for i in ids]

    def enqueue(self, body: Any) -> int:
        params = {
            "q": self.queue_id,
            "p": json.dumps(body, separators=(",", ":")),
            "now": now_text(),
            "w": self.worker_id,
        }
        return int(self.conn.execute(self.ENQUEUE, params).fetchone()[0])

    def enqueue_many(self, bodies: list[Any]) -> list[int]:
        params = {
            "q": self.queue_id,
            "ps": json.dumps(bodies, separators=(",", ":")),
            "now": now_text(),
            "w": self.worker_id,
        }
        return sorted(int(r[0]) for r in self.conn.execute(self.ENQUEUE_MANY, params).fetchall())

    def close(self) -> None:
        self.conn.close()


def sqlite_install(target: Target) -> int:
    assert target.path is not None
    conn = sqlite3.connect(target.path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        for statement in SQLITE_DDL:
            conn.execute(statement)
        row = conn.execute(
            "INSERT INTO pgqrs_queues (queue_name) VALUES ('bench') RETURNING id"
        ).fetchone()
    finally:
        conn.close()
    return int(row[0])


# -- one interface over both ----------------------------------------------------------------


class Raw:
    """Async facade: PostgreSQL runs on the loop, SQLite on a thread per connection."""

    def __init__(self, target: Target, queue_id: int, inner: Any) -> None:
        self.target, self.queue_id, self.inner = target, queue_id, inner

    @classmethod
    async def open(cls, target: Target, queue_id: int, name: str) -> Raw:
        if target.backend == "postgres":
            return cls(target, queue_id, await PgQueue.open(target, queue_id, name))
        return cls(target, queue_id, SqliteQueue(target, queue_id, name))

    @property
    def on_loop(self) -> bool:
        return isinstance(self.inner, PgQueue)

    async def close(self) -> None:
        if self.on_loop:
            await self.inner.close()
        else:
            self.inner.close()


async def install(target: Target) -> int:
    if target.backend == "postgres":
        return await pg_install(target)
    return sqlite_install(target)


def pending(target: Target, queue_id: int) -> int:
    return support.pending_count(target, queue_id)


# -- scenarios ------------------------------------------------------------------------------


async def enqueue_single(target: Target, s: dict[str, Any]) -> dict[str, Any]:
    count = s["enqueue_single"]
    queue_id = await install(target)
    raw = await Raw.open(target, queue_id, "producer")
    latencies = []
    bodies = [bench_config.payload(n) for n in range(count)]
    started = time.perf_counter()
    if raw.on_loop:
        for body in bodies:
            t0 = time.perf_counter()
            await raw.inner.enqueue(body)
            latencies.append(time.perf_counter() - t0)
    else:
        for body in bodies:
            t0 = time.perf_counter()
            raw.inner.enqueue(body)
            latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    await raw.close()
    if pending(target, queue_id) != count:
        raise RuntimeError("not every message was stored")
    return support.result(
        "enqueue_single",
        IMPL,
        target.backend,
        {"messages": count},
        count,
        elapsed,
        latencies=latencies,
    )


async def enqueue_batch(target: Target, s: dict[str, Any]) -> dict[str, Any]:
    count, size = s["enqueue_batch"], s["enqueue_batch_size"]
    batches = bench_config.payload_batches(count, size)
    queue_id = await install(target)
    raw = await Raw.open(target, queue_id, "producer")
    latencies = []
    ids: list[int] = []
    started = time.perf_counter()
    for batch in batches:
        t0 = time.perf_counter()
        if raw.on_loop:
            ids.extend(await raw.inner.enqueue_many(batch))
        else:
            ids.extend(raw.inner.enqueue_many(batch))
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    await raw.close()
    if len(set(ids)) != count or pending(target, queue_id) != count:
        raise RuntimeError("not every message was stored")
    return support.result(
        "enqueue_batch",
        IMPL,
        target.backend,
        {"batch": size, "messages": count},
        count,
        elapsed,
        latencies=latencies,
    )


async def fill(target: Target, queue_id: int, count: int) -> None:
    """The drain backlog, enqueued in batches of 100 like scenarios.fill (not timed)."""
    raw = await Raw.open(target, queue_id, "filler")
    for first in range(0, count, 100):
        bodies = [bench_config.payload(n) for n in range(first, min(first + 100, count))]
        if raw.on_loop:
            await raw.inner.enqueue_many(bodies)
        else:
            raw.inner.enqueue_many(bodies)
    await raw.close()


async def drain(
    target: Target, s: dict[str, Any], consumers: int, batch: int, mode: str
) -> dict[str, Any]:
    """Claim + archive until a claim comes back empty, `consumers` connections at once."""
    count = s["drain"]
    queue_id = await install(target)
    await fill(target, queue_id, count)
    workers = [await Raw.open(target, queue_id, f"consumer-{i}") for i in range(consumers)]
    seen: list[int] = []

    async def on_loop(raw: Raw) -> None:
        while rows := await raw.inner.claim(batch):
            ids = [r[0] for r in rows]
            seen.extend(ids)
            if not all(await raw.inner.archive(ids)):
                raise RuntimeError("archive lost a message it owned")

    def on_thread(raw: Raw) -> None:
        while rows := raw.inner.claim(batch):
            ids = [r[0] for r in rows]
            seen.extend(ids)  # list.extend is atomic under the GIL
            if not all(raw.inner.archive(ids)):
                raise RuntimeError("archive lost a message it owned")

    started = time.perf_counter()
    if workers[0].on_loop:
        await asyncio.gather(*(on_loop(w) for w in workers))
    else:
        await asyncio.gather(*(asyncio.to_thread(on_thread, w) for w in workers))
    elapsed = time.perf_counter() - started
    for w in workers:
        await w.close()
    if len(seen) != count or len(set(seen)) != count or pending(target, queue_id):
        raise RuntimeError(f"handled {len(seen)} ({len(set(seen))} distinct) of {count}")
    params = {"consumers": consumers, "batch": batch, "mode": "explicit", "messages": count}
    return support.result("drain", IMPL, target.backend, params, count, elapsed)


async def backlog_scaling(target: Target, s: dict[str, Any], size: int) -> dict[str, Any]:
    samples, budget = s["backlog_samples"], s["backlog_budget_s"]
    queue_id = await install(target)
    load_s = support.bulk_load(target, queue_id, visible=size, archived=size)
    raw = await Raw.open(target, queue_id, "consumer")
    latencies: list[float] = []

    async def claim() -> float:
        t0 = time.perf_counter()
        if raw.on_loop:
            rows = await raw.inner.claim(bench_config.BACKLOG_CLAIM)
            oks = await raw.inner.archive([r[0] for r in rows])
        else:
            rows = raw.inner.claim(bench_config.BACKLOG_CLAIM)
            oks = raw.inner.archive([r[0] for r in rows])
        took = time.perf_counter() - t0
        if len(rows) != bench_config.BACKLOG_CLAIM or not all(oks):
            raise RuntimeError(f"claimed {len(rows)} of {bench_config.BACKLOG_CLAIM}")
        return took

    for _ in range(bench_config.BACKLOG_WARMUP):
        await claim()
    started = time.perf_counter()
    while len(latencies) < samples:
        latencies.append(await claim())
        if time.perf_counter() - started > budget and len(latencies) >= min(20, samples):
            break
    elapsed = time.perf_counter() - started
    await raw.close()
    return support.result(
        "backlog_scaling",
        IMPL,
        target.backend,
        {"visible": size, "archived": size},
        len(latencies) * bench_config.BACKLOG_CLAIM,
        elapsed,
        latencies=latencies,
        samples=len(latencies),
        load_seconds=round(load_s, 1),
    )


SCENARIOS = bench_config.RAW_SCENARIOS


def cases(scenario: str, s: dict[str, Any]) -> list[Any]:
    if scenario == "enqueue_single":
        return [lambda t: enqueue_single(t, s)]
    if scenario == "enqueue_batch":
        return [lambda t: enqueue_batch(t, s)]
    if scenario == "drain":
        # One raw run per (consumers, batch): it is the baseline of both library drain modes.
        return [
            lambda t, c=c, b=b: drain(t, s, c, b, "explicit")
            for c in s["drain_consumers"]
            for b in s["drain_batches"]
        ]
    if scenario == "backlog_scaling":
        return [lambda t, n=n: backlog_scaling(t, s, n) for n in s["backlog_sizes"]]
    raise ValueError(f"unknown scenario {scenario!r}")


async def main(argv: list[str] | None = None) -> None:
    args = bench_config.parse_args(argv, SCENARIOS, __doc__, bench_config.RAW_BACKENDS)
    for backend in args.backend:
        for scenario in args.scenario:
            for case in cases(scenario, args.sizes(backend)):
                with support.fresh_target(backend, args.dsn) as target:
                    line = await case(target)
                line["impl_version"] = IMPL_VERSION
                support.emit(line)


if __name__ == "__main__":
    asyncio.run(main())
