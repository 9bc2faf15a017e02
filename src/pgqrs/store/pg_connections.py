"""The connections of a PostgreSQL store: a psycopg pool, and two things the pool does not do.

* A connection the server closed while it sat in the pool (every idle one, after a restart) is
  noticed before it is handed out, without a round trip: its socket has something to read (the
  server's goodbye, or the end of the stream). It is dropped and another one taken, so a
  restart costs callers no error once the server is back (issue 10, defect 15).
* After an outage the pool retries connecting with a doubling delay (1, 2, 4, 8, 16 s), so it
  may stay without connections for seconds after the server is back. A caller that waits for
  a connection while the pool has been failing to connect probes the server itself every
  `PROBE_SECONDS`; once it answers, a fresh pool (which connects at once) replaces the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import psycopg_pool

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

    @property
    def pool(self) -> Pool:
        return self.pools[-1]

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=self._timeout)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool, conn = await self._acquire()
        try:
            yield conn
        finally:
            await pool.putconn(conn)

    async def _acquire(self) -> tuple[Pool, psycopg.AsyncConnection[Any]]:
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
            retiring = asyncio.create_task(failing.close())
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)
            keep(retiring)

    async def close(self) -> None:
        for pool in list(self.pools):
            await pool.close()
        if self._retiring:
            await asyncio.wait(set(self._retiring))


def _errors(pool: Pool) -> int:
    """How many times the pool failed to open a connection so far."""
    return int(pool.get_stats().get("connections_errors", 0))
