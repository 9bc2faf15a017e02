"""The SQLite backend: the standard `sqlite3` module, driven from daemon threads.

One writer connection, guarded by an asyncio lock, takes every write inside `BEGIN IMMEDIATE`
(so concurrent processes queue on SQLite's busy timeout instead of failing on a stale
snapshot), and one reader connection serves the statements declared as reads beside it (WAL;
`read()` in store/sql). Each connection lives on its own daemon thread, so no blocking call runs
on the event loop and a store that is dropped without `close()` never keeps the interpreter
alive.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sqlite3
import urllib.parse
import weakref
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from .. import _clock
from .._cancel import cleanup
from .._clock import DatabaseClock, from_db, seconds, to_sqlite_text
from ..config import Dsn
from ..errors import InternalError, PgqrsConnectionError, PgqrsError
from .executor import Params, Queryable, Row, UniqueViolation, not_installed
from .migrate import LIBRARY_VERSION, Migration, adopted_from_sqlx, bookkeeping, migrations, plan
from .sql import NOW_PARAMS, Dialect, Read, Sql, render
from .sql.session import SqliteSession
from .threads import ConnectionRunner, DbThread, InlineConnection, stop_all
from .wakeup import Wakeups

T = TypeVar("T")


def add_seconds(value: str | None, secs: float | None) -> str | None:
    """SQL function `pgqrs_add_seconds(ts, s)`: SQLite date functions keep milliseconds only."""
    if value is None or secs is None:
        return None
    moment = from_db(value)
    assert moment is not None
    return to_sqlite_text(moment + seconds(secs))


def seconds_between(later: str | None, earlier: str | None) -> float | None:
    """SQL function `pgqrs_seconds_between(later, earlier)`, to the microsecond."""
    if later is None or earlier is None:
        return None
    a, b = from_db(later), from_db(earlier)
    assert a is not None
    assert b is not None
    return (a - b).total_seconds()


def register_functions(conn: Any) -> None:
    """The SQL functions the statements call (lease ends, delays, token buckets); registering
    them again replaces them."""
    conn.create_function("pgqrs_add_seconds", 2, add_seconds, deterministic=True)
    conn.create_function("pgqrs_seconds_between", 2, seconds_between, deterministic=True)


# A `now` parameter left to the database's clock: filled in on the writer thread, when the
# statement runs (after any wait for the lock), not when the call was made.
_AT_EXECUTION = object()


def adapt_params(params: Params | None) -> dict[str, Any]:
    """Python values as SQLite stores them: fixed-width UTC text, lists as JSON arrays."""
    if not params:
        return {}
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, datetime):
            value = to_sqlite_text(value)
        elif isinstance(value, (list, tuple)):
            value = json.dumps(list(value))
        elif value is None and key in NOW_PARAMS:
            value = _AT_EXECUTION
        out[key] = value
    return out


def bind_now(args: dict[str, Any], stamp: str | None = None) -> dict[str, Any]:
    """`args` with the time of execution (or `stamp`) for `now` parameters left to the clock."""
    if args.get("now") is _AT_EXECUTION or args.get("wall_now") is _AT_EXECUTION:
        if stamp is None:
            stamp = to_sqlite_text(_clock.local_now())
        return {k: stamp if v is _AT_EXECUTION else v for k, v in args.items()}
    return args


def translate(err: BaseException) -> PgqrsConnectionError:
    """A sqlite3 (or DB-API) error as the pgqrs exception callers expect."""
    text = str(err)
    if "UNIQUE constraint failed" in text:
        return UniqueViolation(f"Database query failed: {text}")
    if "no such table" in text and "pgqrs_" in text:
        return not_installed(text)
    if "database is locked" in text or "unable to open" in text:
        return PgqrsConnectionError(f"Database connection failed: {text}")
    # A full disk may have room again later; other refusals will not change.
    return PgqrsConnectionError(f"Database query failed: {text}", transient="is full" in text)


def _run(conn: Any, sql: str, params: dict[str, Any], stamp: str | None = None) -> list[Row]:
    cursor = conn.execute(sql, bind_now(params, stamp))
    rows: list[Any] = cursor.fetchall() if cursor.description else []
    if rows and type(rows[0]) is not tuple:  # sqlite3's rows are tuples; a driver's may not be
        return [tuple(row) for row in rows]
    return rows


def _run_count(conn: Any, sql: str, params: dict[str, Any]) -> int:
    cursor = conn.execute(sql, bind_now(params))
    if cursor.description:
        return len(cursor.fetchall())
    return int(cursor.rowcount)


def _in_write_txn(
    conn: Any, fn: Callable[[Any], T], marker: Callable[[Any], object], noted: Callable[[], None]
) -> tuple[T, bool]:
    """Run `fn` in one write transaction; its result and whether `marker` saw a change."""
    conn.execute(SqliteSession.BEGIN_WRITE)
    try:
        before = marker(conn)
        result = fn(conn)
    except BaseException:
        if conn.in_transaction:
            conn.execute(SqliteSession.ROLLBACK)
        raise
    return result, _commit(conn, marker, before, noted)


def _commit(
    conn: Any, marker: Callable[[Any], object], before: object, noted: Callable[[], None]
) -> bool:
    """COMMIT; whether `marker` saw a change, which `noted` learns on this thread already, so
    a change is counted even when the caller that awaited the commit was cancelled."""
    changed = marker(conn) != before
    try:
        conn.execute(SqliteSession.COMMIT)
    except BaseException:
        if conn.in_transaction:
            conn.execute(SqliteSession.ROLLBACK)
        raise
    if changed:
        noted()
    return changed


def _rollback_open(conn: Any) -> None:
    if conn.in_transaction:
        conn.execute(SqliteSession.ROLLBACK)


def _no_marker(conn: Any) -> object:
    return None


class _Tx:
    """Statements inside the writer's open transaction."""

    def __init__(self, executor: SqliteExecutor) -> None:
        self._ex = executor

    @property
    def sql(self) -> Sql:
        return self._ex.sql

    async def execute(self, sql: str, params: Params | None = None) -> int:
        args = adapt_params(params)
        return await self._ex.on_writer(lambda c: _run_count(c, sql, args))

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        args = adapt_params(params)
        return await self._ex.on_writer(lambda c: _run(c, sql, args))

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None


class SqliteExecutor:
    """A SQLite file (or private memory database) behind the `Executor` protocol."""

    backend = "sqlite"
    migration_kind = "sqlite"
    schema = ""
    dialect: Dialect = "sqlite"  # S3 too: a SQLite file, SQLite's statements
    journal_mode = "WAL"
    driver_errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, dsn: Dsn, *, synchronous: str = "NORMAL", inline: bool = False) -> None:
        """`inline`: run the connections' calls on the event loop's own thread instead of
        their own threads (only for a loop that serves blocking callers: pgqrs.sync)."""
        self.sql: Sql = render(self.dialect)
        self._dsn = dsn
        self.scope: Hashable | None = (
            None if dsn.memory else ("sqlite", os.path.realpath(dsn.path or ""))
        )
        self._synchronous = synchronous
        self.clock = DatabaseClock()  # the file lives here: the local clock is the shared one
        self._lock = asyncio.Lock()
        self._closed = False
        self._inline = inline
        self._writer = self._new_thread(dsn.mode, "w")
        self._reader: ConnectionRunner | None = None
        self._threads: list[ConnectionRunner] = [self._writer]
        self._finalizer = weakref.finalize(self, stop_all, self._threads)

    # -- connections ---------------------------------------------------------------------
    def _new_thread(self, mode: str, role: str) -> ConnectionRunner:
        """The thread of one connection (`role` "w" writer, "r" reader) opened with `mode`."""
        name = f"pgqrs-{self.backend}-{role}"
        if self._inline:
            return InlineConnection(self._opener(mode), name)
        return DbThread(self._opener(mode), name)

    def _opener(self, mode: str) -> Callable[[], Any]:
        """What a connection thread calls to open its connection.

        It must not reference the executor: the thread would keep it alive, and a store that
        is dropped without `close()` could then never be collected and stop its threads.
        """
        return functools.partial(type(self).open_connection, self._dsn, mode, self._synchronous)

    @classmethod
    def open_connection(cls, dsn: Dsn, mode: str, synchronous: str) -> sqlite3.Connection:
        # Used by one thread at a time, but closed by whichever thread stops the store.
        if dsn.memory:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        else:
            path = urllib.parse.quote(dsn.path or "")
            conn = sqlite3.connect(
                f"file:{path}?mode={mode}",
                uri=True,
                isolation_level=None,
                timeout=5.0,
                check_same_thread=False,
            )
        try:
            # The first statement reads the file: one that is not a database fails here, and
            # its connection must not be left for the collector (a ResourceWarning on 3.13).
            cls.configure(conn, dsn, synchronous, readonly=mode == "ro")
        except BaseException:
            conn.close()
            raise
        return conn

    @classmethod
    def configure(cls, conn: Any, dsn: Dsn, synchronous: str, *, readonly: bool) -> None:
        cls.set_pragmas(conn, dsn, synchronous, readonly=readonly)
        register_functions(conn)

    @classmethod
    def set_pragmas(cls, conn: Any, dsn: Dsn, synchronous: str, *, readonly: bool) -> None:
        conn.execute(SqliteSession.BUSY_TIMEOUT)
        if not readonly and not dsn.memory:
            conn.execute(SqliteSession.JOURNAL_MODE.format(mode=cls.journal_mode))
        conn.execute(SqliteSession.FOREIGN_KEYS)
        conn.execute(SqliteSession.SYNCHRONOUS.format(level=synchronous))
        conn.execute(SqliteSession.TEMP_STORE)

    async def start(self) -> None:
        """Open the connections now, so a bad path fails at connect time.

        The reader opens after the writer has created the file; a private memory database
        lives in one connection only, so there reads share the writer.
        """
        try:
            await self._writer.call(lambda c: None)
            if not self._dsn.memory:
                self._reader = self._new_thread("ro" if self._dsn.mode == "ro" else "rw", "r")
                self._threads.append(self._reader)
                await self._reader.call(lambda c: None)
        except self.driver_errors as err:
            self._closed = True
            self._finalizer()
            # sqlite3 never says which file it could not open (or found not to be a database).
            where = ":memory:" if self._dsn.memory else self._dsn.path
            hint = " (mode=rw needs an existing file)" if self._dsn.mode == "rw" else ""
            raise PgqrsConnectionError(f"Database connection failed: {err}: {where}{hint}") from err

    # -- hooks for backends built on this one (S3) -----------------------------------------
    async def _before_operation(self) -> None:
        """Runs before each read, write and transaction, outside the write lock."""

    async def _after_commit(self, changed: bool) -> None:
        """Runs after a write transaction committed, outside the write lock; `changed` says
        whether `change_marker` moved during it."""

    # A function of the writer connection (run inside each write transaction) whose value
    # differs after a transaction that changed the database; only S3 needs to know.
    change_marker: Callable[[Any], object] = staticmethod(_no_marker)

    def _note_change(self) -> None:
        """Called on the writer thread right after a commit that changed the database."""

    # -- plumbing ------------------------------------------------------------------------
    def translate_error(self, err: BaseException) -> PgqrsConnectionError:
        return translate(err)

    async def _guard(self, future: asyncio.Future[T]) -> T:
        try:
            return await future
        except self.driver_errors as err:
            raise self.translate_error(err) from err

    def _check_open(self) -> None:
        if self._closed:
            raise PgqrsError("Store is closed")

    async def on_writer(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(connection)` on the writer thread (the caller holds the write lock)."""
        return await self._guard(self._writer.call(fn))

    async def write(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(connection)` as one write transaction, in a single trip to the writer thread."""
        self._check_open()
        await self._before_operation()
        marker = self.change_marker
        async with self._lock:
            result, changed = await self._guard(
                self._writer.call(lambda c: _in_write_txn(c, fn, marker, self._note_change))
            )
        await self._after_commit(changed)
        return result

    async def read(self, fn: Callable[[Any], T]) -> T:
        self._check_open()
        await self._before_operation()
        if self._reader is None:
            async with self._lock:
                return await self._guard(self._writer.call(fn))
        return await self._guard(self._reader.call(fn))

    # -- Queryable -----------------------------------------------------------------------
    async def execute(self, sql: str, params: Params | None = None) -> int:
        args = adapt_params(params)
        return await self.write(lambda c: _run_count(c, sql, args))

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        args = adapt_params(params)
        if type(sql) is Read:  # declared a read (store/sql): the reader connection may run it
            return await self.read(lambda c: _run(c, sql, args))
        return await self.write(lambda c: _run(c, sql, args))

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queryable]:
        self._check_open()
        await self._before_operation()
        marker = self.change_marker
        async with self._lock:
            # A cancellation at any await below does not stop the writer thread: the BEGIN,
            # a statement or the COMMIT still runs. The rollback queued behind it (the thread
            # runs calls in order) ends whatever transaction is left open, before the lock is
            # given up; after a COMMIT that went through, it finds nothing to roll back.
            try:
                before = await self.on_writer(
                    lambda c: (c.execute(SqliteSession.BEGIN_WRITE), marker(c))[1]
                )
                yield _Tx(self)
                changed = await self.on_writer(
                    lambda c: _commit(c, marker, before, self._note_change)
                )
            except BaseException:
                await cleanup(self._rollback())
                raise
        await self._after_commit(changed)

    async def _rollback(self) -> None:
        await self.on_writer(_rollback_open)

    def watch(self, wakeups: Wakeups) -> None:
        """Nothing to do: in-process wake-ups already cover the one process that writes."""

    async def batch(self, steps: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        """One `BEGIN IMMEDIATE` transaction, in a single trip to the writer thread. Its
        statements share one "now": the time the transaction began (after any wait for the
        lock)."""
        prepared = [(sql, adapt_params(params)) for sql, params in steps]

        def run_all(conn: Any) -> list[list[Row]]:
            stamp = to_sqlite_text(_clock.local_now())
            return [_run(conn, sql, args, stamp) for sql, args in prepared]

        return await self.write(run_all)

    # -- install -------------------------------------------------------------------------
    async def install(self) -> None:
        """Each migration in its own `BEGIN IMMEDIATE` transaction that re-reads the bookkeeping,
        so installers in several processes take turns and never apply a migration twice."""
        kind = self.migration_kind
        known = migrations(kind)

        def prepare(conn: Any) -> list[tuple[Migration, str]]:
            for statement in bookkeeping(kind).statements():
                conn.execute(statement)
            applied = {row[0] for row in conn.execute(self.sql.MIGRATIONS_APPLIED)}
            tables = conn.execute(self.sql.TABLES_PRESENT, {"schema": ""}).fetchall()
            present = {f"table:{row[0]}" for row in tables}
            columns = conn.execute(self.sql.COLUMNS_PRESENT, {"schema": ""}).fetchall()
            present |= {f"column:{row[0]}" for row in columns}
            return plan(known, applied, self.adopted_versions(conn, present), present)

        for migration, method in await self._migrating(prepare):
            await self._migrating(
                functools.partial(self._record, migration=migration, method=method)
            )

    def adopted_versions(self, conn: Any, present: set[str]) -> set[int] | None:
        """Versions pgqrs's own bookkeeping vouches for, or None when it has none."""
        if "table:_sqlx_migrations" not in present:
            return None
        rows = conn.execute(self.sql.SQLX_MIGRATIONS).fetchall()
        return adopted_from_sqlx("sqlite", [(int(v), bool(ok)) for v, ok in rows])

    def _record(self, conn: Any, *, migration: Migration, method: str) -> None:
        done = conn.execute(self.sql.MIGRATION_DONE, {"version": migration.version}).fetchone()
        if done:
            return  # another installer got here first
        if method == "applied":
            for statement in migration.statements():
                conn.execute(statement)
        conn.execute(
            self.sql.MIGRATION_RECORD,
            {
                "version": migration.version,
                "name": migration.name,
                "now": to_sqlite_text(_clock.local_now()),
                "method": method,
                "library_version": LIBRARY_VERSION,
            },
        )

    async def _migrating(self, fn: Callable[[Any], T]) -> T:
        try:
            return await self.write(fn)
        except InternalError:
            raise
        except PgqrsConnectionError as err:  # driver errors arrive translated by `write`
            raise InternalError(f"Database migration failed: {err}") from err

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Wait for queued work to finish before the threads close their connections.
        async with self._lock:
            self._finalizer()
