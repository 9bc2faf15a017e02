"""What must hold after any cancelled operation (issue 10), checked from outside the store.

`Invariants` owns the store under test (opened so the PostgreSQL server can tell its sessions
apart from everyone else's) and checks, after each cancellation:

(a) no transaction was left open: another connection takes the write lock (SQLite, Turso and
    the S3 cache file: `BEGIN IMMEDIATE` with a 2 s busy timeout, then `ROLLBACK`; PostgreSQL:
    no session of the store is `idle in transaction`, and another connection updates every
    pgqrs row within a 2 s lock timeout), the store itself still writes (one message on a probe
    queue; on S3 the object then holds every write) and, when asked, another process writes too
    (a real subprocess, one write, with a deadline);
(b) no unarchived message is owned by a worker that is `suspended` or `stopped` (no operation
    driven here leaves one: recovery does keep the running leases of a worker it stopped, by
    design, but the suite only reclaims with `force`);
(c) every unarchived message is claimable (`vt <= now`) or delayed and unowned, or leased
    (`vt > now`) by a worker that exists and is `ready`, `polling` or `interrupted`: nothing is
    held by nobody who can finish it;
(d) no ephemeral worker (`__ephemeral__...`, one an operation registered for itself) is left
    `ready` or `polling` once its operation has ended.

Rows are read through a second, independent connection (sqlite3, pyturso, psycopg): what it
sees is what is committed, not what the store believes. On SQLite, Turso and S3 a cancelled
call may return while its statement still runs on the store's writer thread; `settle()` reads
the rows once as the call left them, then writes the probe (which the writer runs after
everything queued before it) and reads them again, so (b)-(d) judge the settled state.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

import pgqrs
from tests.support.target import Target

LIVE = ("ready", "polling", "interrupted")  # statuses of a worker that can still settle
DEAD = ("suspended", "stopped")
EPHEMERAL_PREFIX = "__ephemeral__"
PROBE_QUEUE = "cancel_probe"

LOCK_TIMEOUT_SECONDS = 2.0  # what another connection waits for the write lock
PROBE_SECONDS = 10.0  # what the store's own probe write may take
CHILD_DEADLINE_SECONDS = 20.0  # what the writing subprocess may take, start-up included
TURSO_OPEN_SECONDS = 5.0  # how long a Turso child waits for the file (pgqrs's busy timeout)

# Tables whose rows an operation may lock or change, each with a column to set to itself:
# another connection must be able to update every row of them.
TABLES = {
    "pgqrs_queues": "queue_name",
    "pgqrs_workers": "name",
    "pgqrs_messages": "queue_id",
    "pgqrs_workflows": "name",
    "pgqrs_workflow_runs": "status",
    "pgqrs_workflow_steps": "status",
}


@dataclass(frozen=True)
class MessageRow:
    id: int
    queue_id: int
    vt: datetime | None
    owner: int | None  # consumer_worker_id
    read_ct: int


@dataclass(frozen=True)
class WorkerRow:
    id: int
    name: str
    status: str
    queue_id: int | None


@dataclass(frozen=True)
class Snapshot:
    """Unarchived messages and every worker, as committed, at `taken_at`."""

    taken_at: datetime
    messages: tuple[MessageRow, ...]
    workers: dict[int, WorkerRow]

    def leased(self, message: MessageRow) -> bool:
        """Owned and within its lease: nobody else can claim it now."""
        return message.owner is not None and message.vt is not None and message.vt > self.taken_at

    def claimable(self, message: MessageRow) -> bool:
        return message.vt is None or message.vt <= self.taken_at

    def held_by(self, worker_id: int) -> list[MessageRow]:
        return [m for m in self.messages if m.owner == worker_id]

    def of_queue(self, queue_id: int) -> list[MessageRow]:
        return [m for m in self.messages if m.queue_id == queue_id]

    def status(self, worker_id: int) -> str | None:
        worker = self.workers.get(worker_id)
        return None if worker is None else worker.status

    def ephemeral(self) -> list[WorkerRow]:
        return [w for w in self.workers.values() if w.name.startswith(EPHEMERAL_PREFIX)]

    def violations(self) -> dict[tuple[Any, ...], str]:
        """(b), (c) and (d), each under a key that stays the same while it persists."""
        found: dict[tuple[Any, ...], str] = {}
        for m in self.messages:
            if m.owner is None:
                continue
            owner = self.workers.get(m.owner)
            if owner is not None and owner.status in DEAD:
                found["b", m.id, owner.id, owner.status] = (
                    f"(b) message {m.id} is owned by worker {owner.id} ({_who(owner)}), which is "
                    f"{owner.status}{self._lease(m)}"
                )
            elif self.leased(m) and (owner is None or owner.status not in LIVE):
                what = "a worker that does not exist" if owner is None else owner.status
                found["c", m.id, m.owner] = (
                    f"(c) message {m.id} is leased{self._lease(m)} by worker {m.owner} ({what})"
                )
        for w in self.ephemeral():
            if w.status in ("ready", "polling"):
                held = len(self.held_by(w.id))
                found["d", w.id, w.status] = (
                    f"(d) ephemeral worker {w.id} is left {w.status} after its operation ended"
                    + (f", holding {held} message(s)" if held else "")
                )
        return found

    def new_violations(self, before: Snapshot | None) -> list[str]:
        """The violations that were not there already in `before` (an earlier point's)."""
        known = before.violations() if before is not None else {}
        return [text for key, text in self.violations().items() if key not in known]

    def changes(self, later: Snapshot, *, ignore_queue: int | None = None) -> list[str]:
        """What differs in `later`: rows written between the two snapshots."""
        found: list[str] = []
        mine = {m.id: m for m in self.messages if m.queue_id != ignore_queue}
        theirs = {m.id: m for m in later.messages if m.queue_id != ignore_queue}
        for i in sorted(mine.keys() | theirs.keys()):
            a, b = mine.get(i), theirs.get(i)
            if a is None:
                found.append(f"message {i} appeared")
            elif b is None:
                found.append(f"message {i} was archived or deleted")
            elif (a.owner, a.vt) != (b.owner, b.vt):
                found.append(f"message {i} owner {a.owner}->{b.owner}")
        for i in sorted(self.workers.keys() | later.workers.keys()):
            was, now = self.status(i), later.status(i)
            if was != now:
                found.append(f"worker {i} {was or 'absent'}->{now or 'absent'}")
        return found

    def _lease(self, m: MessageRow) -> str:
        if m.vt is None or m.vt <= self.taken_at:
            return " (lease over)"
        left = (m.vt - self.taken_at).total_seconds()
        return f" ({left:.0f}s of lease left)"


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def _who(worker: WorkerRow) -> str:
    return "ephemeral" if worker.name.startswith(EPHEMERAL_PREFIX) else worker.name[:24]


def _time(value: Any) -> datetime | None:
    """A stored timestamp: aware on PostgreSQL, UTC text on SQLite and Turso."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _snapshot(
    taken_at: datetime, messages: Sequence[Sequence[Any]], workers: Sequence[Sequence[Any]]
) -> Snapshot:
    return Snapshot(
        taken_at,
        tuple(
            MessageRow(int(r[0]), int(r[1]), _time(r[2]), None if r[3] is None else int(r[3]), r[4])
            for r in messages
        ),
        {
            int(r[0]): WorkerRow(int(r[0]), str(r[1]), str(r[2]), None if r[3] is None else r[3])
            for r in workers
        },
    )


MESSAGES_SQL = (
    "SELECT id, queue_id, vt, consumer_worker_id, COALESCE(read_ct, 0) "
    "FROM {s}pgqrs_messages WHERE archived_at IS NULL ORDER BY id"
)
WORKERS_SQL = "SELECT id, name, status, queue_id FROM {s}pgqrs_workers ORDER BY id"

# Another process taking the write lock of a SQLite file (argv: path, commit|rollback).
SQLITE_CHILD = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=float(sys.argv[3]), isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE pgqrs_queues SET id = id")
conn.execute(sys.argv[2].upper())
conn.close()
"""

# The same on a Turso file: pyturso opens a file in one process at a time, so the child asks
# for it the way pgqrs's Turso backend does (a shared flock on `<file>-wait`; the holder closes
# its connections between calls while someone waits) and retries opening until its deadline.
TURSO_CHILD = """
import fcntl, os, sys, time, turso
path, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
fd = os.open(path + "-wait", os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_SH)
while True:
    try:
        conn = turso.connect(path, isolation_level=None)
        break
    except turso.Error as err:
        if "locked by another process" not in str(err) or time.monotonic() > deadline:
            raise
        time.sleep(0.005)
try:
    conn.execute("PRAGMA busy_timeout=%d" % int(float(sys.argv[3]) * 1000))
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE pgqrs_queues SET id = id")
    conn.execute("COMMIT")
finally:
    conn.close()
    fcntl.flock(fd, fcntl.LOCK_UN)
"""

# Another process writing every row of the schema, each lock waited for at most argv[3] s.
POSTGRES_CHILD = """
import psycopg, sys
with psycopg.connect(sys.argv[1], connect_timeout=10) as conn:
    conn.execute("SET lock_timeout = '%dms'" % int(float(sys.argv[4]) * 1000))
    for table, column in (pair.split(":") for pair in sys.argv[3].split(",")):
        conn.execute('UPDATE "%s".%s SET %s = %s' % (sys.argv[2], table, column, column))
"""


class Invariants:
    """The store under test, and the checks above."""

    def __init__(self, target: Target) -> None:
        self.target = target
        # PostgreSQL: the store's sessions carry this application_name, so pg_stat_activity
        # shows which sessions are its own on a server other tests share.
        self.application = f"pgqrs-cancel-{uuid.uuid4().hex[:12]}"
        self._store: pgqrs.Store | None = None
        self._probe: pgqrs.Producer | None = None
        self._threads: list[threading.Thread] = []  # the connection threads the store started
        self.probes = 0

    @property
    def probe_queue_id(self) -> int | None:
        """The queue the probe writes go to (its rows are the checks', not the operation's)."""
        return None if self._probe is None else self._probe.queue_id

    # -- the store -------------------------------------------------------------------------
    @property
    def store(self) -> pgqrs.Store:
        assert self._store is not None, "Invariants.open() first"
        return self._store

    def config(self) -> pgqrs.Config:
        if self.target.backend != "postgres":
            return self.target.config()
        separator = "&" if "?" in self.target.dsn else "?"
        dsn = f"{self.target.dsn}{separator}application_name={self.application}"
        return pgqrs.Config(dsn, schema=self.target.schema)

    async def open(self, *, install: bool = True) -> pgqrs.Store:
        existing = set(threading.enumerate())
        store = await pgqrs.connect_with(self.config())
        self._store = store
        self._threads = [t for t in threading.enumerate() if t not in existing]
        if install:
            await pgqrs.admin(store).install()
        await pgqrs.admin(store).create_queue(PROBE_QUEUE, exist_ok=True)
        self._probe = await store.producer(PROBE_QUEUE)
        return store

    async def recover(self) -> None:
        """Replace a store a failure may have left unusable (a connection stuck in a
        transaction holds the file's write lock until it is closed)."""
        old = self._store
        self._store = self._probe = None
        if old is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(PROBE_SECONDS):
                    await old.close()
            # Its connection threads end after the calls queued on them. Seen on Turso: after
            # a connection had been stuck in a transaction, pyturso kept the file locked against
            # other processes until the garbage collector freed the closed connection.
            for thread in self._threads:
                await asyncio.to_thread(thread.join, PROBE_SECONDS)
            del old
            gc.collect()
        await self.open(install=False)

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None

    # -- independent reads -----------------------------------------------------------------
    def _file(self) -> str:
        """The database file a second connection opens (S3: the store's cache file)."""
        if self.target.backend == "s3":
            path = getattr(self.store.db, "path", None)
            assert path, "the S3 store has no cache file"
            return str(path)
        return self.target.dsn.split("://", 1)[1]

    def _connect_file(self) -> Any:
        if self.target.backend == "turso":
            import turso

            conn = turso.connect(self._file(), isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(LOCK_TIMEOUT_SECONDS * 1000)}")
            return conn
        return sqlite3.connect(self._file(), timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)

    def _read_file(self) -> Snapshot:
        conn = self._connect_file()
        try:
            taken_at = datetime.now(UTC)
            messages = conn.execute(MESSAGES_SQL.replace("{s}", "")).fetchall()
            workers = conn.execute(WORKERS_SQL.replace("{s}", "")).fetchall()
        finally:
            conn.close()
        return _snapshot(taken_at, messages, workers)

    async def _pg(self) -> psycopg.AsyncConnection[Any]:
        dsn = self.target.dsn
        return await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=10)

    async def snapshot(self) -> Snapshot:
        if self.target.backend != "postgres":
            return await asyncio.to_thread(self._read_file)
        prefix = f'"{self.target.schema}".'
        async with await self._pg() as conn:
            taken_at = datetime.now(UTC)
            messages = await (await conn.execute(MESSAGES_SQL.replace("{s}", prefix))).fetchall()
            workers = await (await conn.execute(WORKERS_SQL.replace("{s}", prefix))).fetchall()
        return _snapshot(taken_at, messages, workers)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Plain SQL through a second connection: `{s}` is the schema prefix, `?` a
        parameter, on every backend."""
        if self.target.backend != "postgres":

            def read() -> list[tuple[Any, ...]]:
                conn = self._connect_file()
                try:
                    found = conn.execute(sql.replace("{s}", ""), tuple(params)).fetchall()
                finally:
                    conn.close()
                return [tuple(r) for r in found]

            return await asyncio.to_thread(read)
        text = sql.replace("{s}", f'"{self.target.schema}".').replace("?", "%s")
        async with await self._pg() as conn:
            cursor = await conn.execute(text, list(params))
            return [tuple(r) for r in await cursor.fetchall()]

    # -- (a) no transaction left open --------------------------------------------------------
    def _file_lock(self) -> str | None:
        conn = self._connect_file()
        start = time.monotonic()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except Exception as err:
            waited = time.monotonic() - start
            return (
                f"(a) another connection cannot take the write lock: {err} (after "
                f"{waited:.1f}s): a connection of the store is still inside a transaction"
            )
        finally:
            conn.close()
        return None

    async def _pg_sessions(self) -> list[str]:
        """The store's sessions left inside a transaction (pid, state, last statement)."""
        async with await self._pg() as conn:
            rows = await (
                await conn.execute(
                    "SELECT pid, state, left(query, 80) FROM pg_stat_activity "
                    "WHERE application_name = %s AND state LIKE 'idle in transaction%%'",
                    [self.application],
                )
            ).fetchall()
        return [f"pid {pid} {state} after {query!r}" for pid, state, query in rows]

    async def _pg_write(self) -> str | None:
        schema = self.target.schema
        try:
            async with await self._pg() as conn:
                ms = int(LOCK_TIMEOUT_SECONDS * 1000)
                await conn.execute(f"SET lock_timeout = '{ms}ms'")
                async with conn.transaction():
                    for table, column in TABLES.items():
                        await conn.execute(f'UPDATE "{schema}".{table} SET {column} = {column}')
        except psycopg.Error as err:
            return f"(a) another connection cannot write: {_first_line(str(err))}"
        return None

    async def lock_problems(self) -> list[str]:
        if self.target.backend != "postgres":
            problem = await asyncio.to_thread(self._file_lock)
            return [problem] if problem else []
        found = [
            f"(a) a session of the store is left inside a transaction: {s}"
            for s in await self._pg_sessions()
        ]
        problem = await self._pg_write()
        return [*found, problem] if problem else found

    def _child(self) -> list[str]:
        timeout = str(LOCK_TIMEOUT_SECONDS)
        backend = self.target.backend
        if backend == "postgres":
            psql = shutil.which("psql")
            if psql is not None:  # starts in milliseconds, where Python + psycopg take 0.3 s
                ms = int(LOCK_TIMEOUT_SECONDS * 1000)
                sql = f"SET lock_timeout = '{ms}ms'; " + "".join(
                    f'UPDATE "{self.target.schema}".{t} SET {c} = {c}; ' for t, c in TABLES.items()
                )
                return [psql, self.target.dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]
            tables = ",".join(f"{t}:{c}" for t, c in TABLES.items())
            schema = self.target.schema
            dsn = self.target.dsn
            return [sys.executable, "-c", POSTGRES_CHILD, dsn, schema, tables, timeout]
        if backend == "turso":
            # Waiting to open as long as pgqrs's own Turso opener would (its busy timeout).
            wait = str(TURSO_OPEN_SECONDS)
            return [sys.executable, "-c", TURSO_CHILD, self._file(), wait, timeout]
        # The S3 cache file is the store's alone to change: the child takes the lock only.
        end = "rollback" if backend == "s3" else "commit"
        return [sys.executable, "-S", "-c", SQLITE_CHILD, self._file(), end, timeout]

    async def other_process_problem(self) -> str | None:
        """A real subprocess writes once (takes the write lock), within a deadline."""
        args = self._child()
        start = time.monotonic()
        try:
            done = await asyncio.to_thread(
                subprocess.run, args, capture_output=True, text=True, timeout=CHILD_DEADLINE_SECONDS
            )
        except subprocess.TimeoutExpired:
            return f"(a) another process did not manage one write in {CHILD_DEADLINE_SECONDS:g}s"
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["?"]
            errors = [line for line in lines if "ERROR" in line or "Error" in line]
            waited = time.monotonic() - start
            return f"(a) another process cannot write ({waited:.1f}s): {(errors or lines)[-1]}"
        return None

    async def probe_problem(self) -> str | None:
        """The store itself still writes: one message on the probe queue."""
        assert self._probe is not None
        self.probes += 1
        try:
            async with asyncio.timeout(PROBE_SECONDS):
                await self._probe.enqueue({"probe": self.probes})
        except TimeoutError:
            return f"(a) the store cannot write any more: an enqueue hung for {PROBE_SECONDS:g}s"
        except pgqrs.PgqrsError as err:
            return f"(a) the store cannot write any more: {err}"
        if self.target.backend == "s3":
            try:
                state = await pgqrs.as_s3(self.store).state()
            except pgqrs.PgqrsError as err:
                return f"(a) the S3 store cannot tell its sync state: {err}"
            if state != pgqrs.SyncState.InSync:
                return f"(a) after a write the S3 object is not in sync with the store: {state}"
        return None

    # -- everything --------------------------------------------------------------------------
    async def settle(self, *, other_process: bool = False) -> tuple[Snapshot, Snapshot, list[str]]:
        """(a), between two snapshots: the rows as the operation left them when its call
        returned, and once every write the store still had queued has landed (the probe write
        goes through the store's writer after them). (a)'s problems, if any, come third."""
        returned = await self.snapshot()
        found = await self.lock_problems()
        if other_process:
            problem = await self.other_process_problem()
            if problem:
                found.append(problem)
        problem = await self.probe_problem()
        if problem:
            found.append(problem)
        return returned, await self.snapshot(), found

    async def problems(
        self, *, before: Snapshot | None = None, other_process: bool = False
    ) -> list[str]:
        """Every invariant that does not hold now: (a), then (b)-(d) on the settled rows (only
        the violations `before`, an earlier point's snapshot, did not show already)."""
        _, settled, found = await self.settle(other_process=other_process)
        return [*found, *settled.new_violations(before)]

    async def check(self, *, before: Snapshot | None = None, other_process: bool = False) -> None:
        found = await self.problems(before=before, other_process=other_process)
        if found:
            raise AssertionError("; ".join(found))
