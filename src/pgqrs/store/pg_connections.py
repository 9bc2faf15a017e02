"""The connections of a PostgreSQL store: a psycopg pool, and two things the pool does not do.

* A connection the server closed while it sat in the pool (every idle one, after a restart) is
  noticed before it is handed out, without a round trip: its socket has something to read (the
  server's goodbye, or the end of the stream). It is dropped and another one taken, so a
  restart costs callers no error once the server is back (issue 10, defect 15).
* After an outage the pool retries connecting with a doubling delay (1, 2, 4, 8, 16 s), so it
  may stay without connections for seconds after the server is back. A caller that waits for
  a connection while the pool has been failing to connect probes the server itself every
  `PROBE_SECONDS`; once it answers, a fresh pool (which connects at once) replaces the old one.

A connection given back idle is kept aside (`spare`, last in, first out) for the next caller
instead of going back into the pool: the pool's checkout and return cost about 25 µs of CPU
per statement on the benchmark machine, a tenth of a single enqueue (benchmarks/README.md,
"Profile"); taking a spare costs the closed-while-idle check alone. The pool still opens,
replaces and counts every connection: a spare is one the pool sees as in use, so spares never
exceed its size, and anything not idle, broken, or of a pool since replaced goes back to it.
"""

from __future__ import annotations

import asyncio
import logging
import select
import time
from collections.abc import Callable, Coroutine
from typing import Any

import psycopg
import psycopg_pool
from psycopg.pq import TransactionStatus

from .._cancel import keep

log = logging.getLogger("pgqrs")

# How often a caller waiting on a pool that cannot connect checks whether the server is back.
PROBE_SECONDS = 0.25

Pool = psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]


def closed_while_idle(conn: psycopg.AsyncConnection[Any]) -> bool:
    """The server closed `conn` while nobody used it: readable without a request pending."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


class Connections:
    """The pool of one store, renewed after an outage (see the module docstring)."""

    def __init__(self, make_pool: Callable[[], Pool], conninfo: str, timeout: float) -> None:
        self._make_pool = make_pool
        self._conninfo = conninfo
        self._timeout = timeout
        # The pools this store has made: the current one last; older ones are being closed.
        # A list that outlives the store's executor, for its finalizer (see postgres.py).
        self.pools: list[Pool] = [make_pool()]
        # Failed connection attempts of the current pool as of its last connection handed out:
        # more than that means it has been failing since.
        self._errors_when_ok = 0
        self._renewing = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        # Idle connections checked out of a pool and kept for the next caller (see above).
        self.spare: list[tuple[Pool, psycopg.AsyncConnection[Any]]] = []
        # Callers waiting on the pool: a connection given back then goes to the pool, which
        # hands it to one of them (kept aside, it would starve them).
        self._waiting = 0

    @property
    def pool(self) -> Pool:
        return self.pools[-1]

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=self._timeout)

    def connection(self) -> _Lease:
        """`async with connections.connection() as conn`: a connection for the block."""
        return _Lease(self)

    async def release(self, pool: Pool, conn: psycopg.AsyncConnection[Any]) -> None:
        if not self._waiting and pool is self.pool and _idle(conn):
            self.spare.append((pool, conn))
        else:
            await pool.putconn(conn)

    def _take_spare(self) -> tuple[Pool, psycopg.AsyncConnection[Any]] | None:
        """The last spare still usable; the others go back to their pool, which checks them."""
        while self.spare:
            pool, conn = self.spare.pop()
            if pool is self.pool and _idle(conn) and not closed_while_idle(conn):
                return pool, conn
            self._in_background(pool.putconn(conn))
        return None

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Give a pool or a connection back without waiting; `close()` waits for it."""
        task = asyncio.create_task(work)
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        keep(task)

    async def acquire(self) -> tuple[Pool, psycopg.AsyncConnection[Any]]:
        return self._take_spare() or await self._acquire()

    async def _acquire(self) -> tuple[Pool, psycopg.AsyncConnection[Any]]:
        self._waiting += 1
        try:
            return await self._from_pool()
        finally:
            self._waiting -= 1

    async def _from_pool(self) -> tuple[Pool, psycopg.AsyncConnection[Any]]:
        deadline = time.monotonic() + self._timeout
        while True:
            pool = self.pool
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise psycopg_pool.PoolTimeout(
                    f"couldn't get a connection after {self._timeout:.2f} sec"
                )
            # In slices: the pool may start failing to connect while this caller waits.
            failing = _errors(pool) > self._errors_when_ok
            try:
                conn = await pool.getconn(timeout=min(remaining, PROBE_SECONDS))
            except psycopg_pool.PoolTimeout:
                if _errors(pool) > self._errors_when_ok:
                    await self._renew_if_server_answers(pool)
                continue
            except psycopg_pool.PoolClosed:
                if pool is self.pool:
                    raise
                continue  # renewed while this caller waited: take the fresh pool
            if closed_while_idle(conn):
                await conn.close()
                await pool.putconn(conn)  # dropped: the pool opens a replacement
                continue
            if failing and pool is self.pool:
                self._errors_when_ok = _errors(pool)
            return pool, conn

    async def _renew_if_server_answers(self, failing: Pool) -> None:
        async with self._renewing:
            if failing is not self.pool:
                return  # another caller renewed it meanwhile
            try:
                probe = await psycopg.AsyncConnection.connect(
                    self._conninfo, connect_timeout=max(1, int(PROBE_SECONDS * 4))
                )
            except psycopg.Error:
                return  # still away: keep waiting
            await probe.close()
            log.info("the database answers again; reconnecting at once")
            fresh = self._make_pool()
            await fresh.open(wait=False)
            self._errors_when_ok = 0
            self.pools.append(fresh)
            self.pools.remove(failing)
            self._in_background(failing.close())

    async def close(self) -> None:
        spare, self.spare = self.spare, []
        for pool, conn in spare:
            await pool.putconn(conn)
        for pool in list(self.pools):
            await pool.close()
        if self._retiring:
            await asyncio.wait(set(self._retiring))


class _Lease:
    """The async context manager of `Connections.connection()`: a class rather than a
    generator, as it runs around every statement."""

    __slots__ = ("_conn", "_connections", "_pool")

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        self._pool, self._conn = await self._connections.acquire()
        return self._conn

    async def __aexit__(self, *exc_info: object) -> None:
        await self._connections.release(self._pool, self._conn)


def _idle(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Usable by the next caller as it is: open, and outside any transaction."""
    return not conn.broken and conn.pgconn.transaction_status == TransactionStatus.IDLE


def _errors(pool: Pool) -> int:
    """How many times the pool failed to open a connection so far."""
    return int(pool.get_stats().get("connections_errors", 0))
