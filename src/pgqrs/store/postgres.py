"""The PostgreSQL backend: psycopg 3 with an async connection pool.

Connections run in autocommit mode, so a lone statement is one round trip; `transaction()` wraps
several in BEGIN/COMMIT. JSON columns and timestamps are read back as text (pg_types.py), so
decoding is the same code on every backend, and every statement names its tables through the
quoted schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator, Sequence
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from .. import _clock
from .._cancel import cleanup, keep
from .._clock import SYSTEM_CLOCK, DatabaseClock
from ..config import Config, parse_dsn
from ..errors import InternalError, PgqrsConnectionError, PgqrsError
from . import pg_types
from .executor import (
    JsonTexts,
    LimitsOvershot,
    Params,
    Queryable,
    Row,
    UniqueViolation,
    not_installed,
)
from .migrate import LIBRARY_VERSION, adopted_from_sqlx, bookkeeping, migrations, plan
from .pg_connections import Connections
from .sql import PostgresSql, Sql, render
from .sql.session import PostgresSession
from .sql.spelling import notify_channel, quote_ident, schema_prefix
from .wakeup import Wakeups, queue_key

log = logging.getLogger("pgqrs")

LISTEN_RETRY_SECONDS = 1.0


# The SQLSTATE of `pgqrs_limits_overshot()` (migration 17).
LIMITS_OVERSHOT = "PGQL1"


def translate(err: Exception) -> PgqrsConnectionError:
    if isinstance(err, psycopg.Error) and err.sqlstate == LIMITS_OVERSHOT:
        return LimitsOvershot(f"Database query failed: {err}")
    if isinstance(err, pg_errors.UniqueViolation):
        return UniqueViolation(f"Database query failed: {err}")
    if isinstance(err, (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName)):
        return not_installed(str(err).splitlines()[0])
    if isinstance(err, (psycopg.OperationalError, psycopg_pool.PoolTimeout)):
        return PgqrsConnectionError(f"Database connection failed: {err}")
    # (Deadlocks and serialization failures are OperationalErrors: transient, above.)
    return PgqrsConnectionError(f"Database query failed: {err}", transient=False)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except (psycopg.Error, psycopg_pool.PoolTimeout) as err:
        raise translate(err) from err


def _is_id(value: object) -> bool:
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def adapt_params(params: Params | None) -> Params | None:
    """What psycopg would send slowly, sent as text: id lists as array literals, and stored
    JSON texts as one JSON array (the driver dumps list elements one by one in Python)."""
    if not params:
        return params
    out: dict[str, Any] | None = None
    for key, value in params.items():
        if isinstance(value, JsonTexts):
            text = "[" + ",".join(value) + "]"
        elif type(value) is list and value and all(_is_id(v) for v in value):
            # Written as text, so int subclasses (`EnqueuedId`) mix with plain ints: psycopg
            # refuses a list whose elements are of different types.
            text = "{" + ",".join(map(str, map(int, value))) + "}"
        else:
            continue
        if out is None:
            out = dict(params)
        out[key] = text
    return params if out is None else out


# psycopg parses a statement's placeholders again on every call once its text is longer than
# its query cache keeps (4,096 bytes): the limited claims, at ~6 kB, spent ~200 us of CPU per
# call on it (3.6 kB now, but over 4 kB in a schema with a long name). Such statements are
# parsed once here into the server's own $n placeholders and sent through a raw cursor, which
# passes the text as it is.
_CACHED_BYTES = 4096
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%|%")


@functools.lru_cache(maxsize=64)
def _native(sql: str) -> tuple[bytes, tuple[str, ...]] | None:
    """`sql` with $n placeholders and the parameter name of each n; None when psycopg's cache
    keeps it (or it holds a placeholder other than %(name)s and %%, which psycopg checks)."""
    query = sql.encode()
    if len(query) <= _CACHED_BYTES:
        return None
    numbers: dict[str, int] = {}  # each name's n, in order of first use
    odd = False

    def number(match: re.Match[str]) -> str:
        nonlocal odd
        name = match.group(1)
        if name is None:
            odd = odd or match.group(0) == "%"
            return "%"
        return f"${numbers.setdefault(name, len(numbers) + 1)}"

    native = _PLACEHOLDER.sub(number, sql)
    return None if odd else (native.encode(), tuple(numbers))


async def _run(
    conn: psycopg.AsyncConnection[Any], sql: str, params: Params | None
) -> psycopg.AsyncCursor[Any]:
    native = _native(sql) if params and len(sql) > _CACHED_BYTES else None
    if native is None:
        return await conn.execute(sql, adapt_params(params))
    query, names = native
    adapted = adapt_params(params) or {}
    return await psycopg.AsyncRawCursor(conn).execute(query, [adapted[n] for n in names])


class _Conn:
    """Statements on one checked-out connection (inside a transaction)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], sql: Sql) -> None:
        self._conn = conn
        self._sql = sql

    @property
    def sql(self) -> Sql:
        return self._sql

    async def execute(self, sql: str, params: Params | None = None) -> int:
        with translated():
            cursor = await _run(self._conn, sql, params)
            return cursor.rowcount

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        with translated():
            cursor = await _run(self._conn, sql, params)
            return await cursor.fetchall()

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        with translated():
            cursor = await _run(self._conn, sql, params)
            return await cursor.fetchone()


class PostgresExecutor:
    backend = "postgres"
    migration_kind = "postgres"

    def __init__(self, config: Config) -> None:
        self.schema = config.schema
        self.quoted_schema = quote_ident(config.schema)
        self.channel = notify_channel(config.schema)  # LISTEN/NOTIFY wake-ups of this schema
        self.sql: PostgresSql = render(
            "postgres",
            schema_prefix=schema_prefix(config.schema),
            notify_channel=self.channel if config.listen_notify else None,
        )
        self._config = config
        # The server's clock; every new connection measures how far the local one is off.
        self.clock = DatabaseClock()
        self._conninfo = parse_dsn(config.dsn).conninfo
        self.scope: Hashable | None = ("postgres", self._conninfo, config.schema)
        self._closed = False
        # (The factory must not reference the executor: see the finalizer below.)
        make_pool = functools.partial(
            _new_pool, self._conninfo, config, _configurer(self.quoted_schema, self.clock)
        )
        self._connections = Connections(
            make_pool, self._conninfo, config.connection_timeout_seconds
        )
        # The LISTEN task, started by the first idle consumer (one connection per store).
        self._listener: list[asyncio.Task[None]] = []
        # A store dropped without close() still gives its connections back: its connections
        # (pools and spares) and the listener, which must not reference the executor, are
        # closed on the store's loop once it is collected.
        self._finalizer = weakref.finalize(
            self,
            _close_abandoned,
            self._connections,
            self._listener,
            asyncio.get_running_loop(),
        )

    async def start(self) -> None:
        """Fail fast on a refused connection, a bad host or bad credentials, then open the pool."""
        timeout = self._config.connection_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                probe = await psycopg.AsyncConnection.connect(
                    self._conninfo, connect_timeout=timeout
                )
            await probe.close()
            await self._connections.open()
        except (TimeoutError, psycopg.Error, psycopg_pool.PoolTimeout, OSError) as err:
            await self._connections.close()
            if isinstance(
                err, TimeoutError | pg_errors.ConnectionTimeout | psycopg_pool.PoolTimeout
            ):
                # The bare TimeoutError says nothing; say what did not happen and what to check.
                detail = (
                    f"the server did not answer within {timeout}s "
                    "(connection_timeout_seconds); check the host, port and firewall"
                )
            else:
                detail = str(err).strip() or type(err).__name__
            raise PgqrsConnectionError(f"Database connection failed: {detail}") from err

    def _check_open(self) -> None:
        if self._closed:
            raise PgqrsError("Store is closed")

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection outside any transaction (install uses it for its advisory lock)."""
        self._check_open()
        with translated():
            async with self._connections.connection() as conn:
                yield conn

    # A lone statement is the common case (a workflow run makes five): one pooled connection
    # and one try, without the layers `connection()` and `_Conn` add (about a tenth of the
    # client's time per statement, measured).
    async def execute(self, sql: str, params: Params | None = None) -> int:
        self._check_open()
        try:
            async with self._connections.connection() as conn:
                return (await _run(conn, sql, params)).rowcount
        except (psycopg.Error, psycopg_pool.PoolTimeout) as err:
            raise translate(err) from err

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        self._check_open()
        try:
            async with self._connections.connection() as conn:
                return await (await _run(conn, sql, params)).fetchall()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as err:
            raise translate(err) from err

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        self._check_open()
        try:
            async with self._connections.connection() as conn:
                return await (await _run(conn, sql, params)).fetchone()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as err:
            raise translate(err) from err

    async def batch(self, steps: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        """A lone statement runs on its own (autocommit: one round trip, one commit). Several
        run as one transaction in pipeline mode: the statements (prepared, as any statement
        run often) go out together, each with a snapshot of its own (what a lock taken by an
        earlier one needs), and the pipeline's one Sync ends them: what the server receives
        before a Sync is one transaction, committed there, or undone whole if a statement
        failed (the extended query protocol's rule; no BEGIN and COMMIT to send, prepare or
        skip). A `sync()` inside the pipeline as well would cost a second round trip."""
        if len(steps) == 1:
            return [await self.fetch(*steps[0])]
        async with self.connection() as conn:
            with translated():
                try:
                    async with conn.pipeline():
                        cursors = [await _run(conn, sql, p) for sql, p in steps]
                    return [await c.fetchall() if c.description else [] for c in cursors]
                except BaseException as err:
                    if conn.closed:
                        raise
                    if isinstance(err, psycopg.Error) and err.sqlstate != LIMITS_OVERSHOT:
                        # The server skipped the statements after the failed one, and
                        # psycopg may still count one it was preparing then as prepared
                        # (every later run of it on this connection would fail: "prepared
                        # statement ... does not exist"): the connection is not reused, the
                        # pool opens another. An overshot check, expected often, is always
                        # the last statement: it keeps its connection.
                        await cleanup(conn.close())
                    elif conn.info.transaction_status != TransactionStatus.IDLE:
                        # A cancellation cut the batch short: end its transaction before the
                        # connection goes back to the pool.
                        await cleanup(conn.execute(PostgresSession.ROLLBACK))
                    raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queryable]:
        async with self.connection() as conn:
            with translated():
                async with conn.transaction():
                    yield _Conn(conn, self.sql)

    async def install(self) -> None:
        """Migrate under a session advisory lock keyed on the schema, so concurrent installers
        from several processes run one after another and the later ones find nothing to do."""
        key = f"pgqrs-install:{self.schema}"
        async with self.connection() as conn:
            try:
                await conn.execute(PostgresSession.INSTALL_LOCK, [key])
                try:
                    await self._install_locked(conn)
                finally:
                    await conn.execute(PostgresSession.INSTALL_UNLOCK, [key])
            except InternalError:
                raise
            except (psycopg.Error, PgqrsConnectionError) as err:
                raise InternalError(f"Database migration failed: {err}") from err

    async def _install_locked(self, conn: psycopg.AsyncConnection[Any]) -> None:
        db = _Conn(conn, self.sql)
        params = {"schema": self.schema}
        if not await db.fetchone(self.sql.SCHEMA_PRESENT, params):
            await conn.execute(PostgresSession.CREATE_SCHEMA.format(schema=self.quoted_schema))
        await conn.execute(bookkeeping("postgres").sql.replace("{schema}", self.quoted_schema))
        applied = {row[0] for row in await db.fetch(self.sql.MIGRATIONS_APPLIED)}
        present = {f"table:{r[0]}" for r in await db.fetch(self.sql.TABLES_PRESENT, params)}
        present |= {f"type:{r[0]}" for r in await db.fetch(self.sql.TYPES_PRESENT, params)}
        present |= {f"function:{r[0]}" for r in await db.fetch(self.sql.FUNCTIONS_PRESENT, params)}
        present |= {f"column:{r[0]}" for r in await db.fetch(self.sql.COLUMNS_PRESENT, params)}
        adopted = None
        if "table:_sqlx_migrations" in present:
            rows = await db.fetch(self.sql.SQLX_MIGRATIONS)
            adopted = adopted_from_sqlx("postgres", [(int(v), bool(ok)) for v, ok in rows])
        for migration, method in plan(migrations("postgres"), applied, adopted, present):
            async with conn.transaction():
                if method == "applied":
                    await conn.execute(migration.sql.replace("{schema}", self.quoted_schema))
                await db.execute(
                    self.sql.MIGRATION_RECORD,
                    {
                        "version": migration.version,
                        "name": migration.name,
                        "now": SYSTEM_CLOCK.now(),
                        "method": method,
                        "library_version": LIBRARY_VERSION,
                    },
                )

    def watch(self, wakeups: Wakeups) -> None:
        """Wake idle loops of this store when any process enqueues into this schema."""
        if self._config.listen_notify and not self._listener and not self._closed:
            self._listener.append(
                asyncio.create_task(
                    _listen(self._conninfo, self.channel, wakeups), name="pgqrs-listen"
                )
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        for task in self._listener:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._connections.close()


def _new_pool(
    conninfo: str,
    config: Config,
    configure: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]],
) -> psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    return psycopg_pool.AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=config.max_connections,
        open=False,
        timeout=config.connection_timeout_seconds,
        kwargs={"autocommit": True, "connect_timeout": config.connection_timeout_seconds},
        configure=configure,
        name="pgqrs",
    )


def _configurer(
    quoted_schema: str, clock: DatabaseClock
) -> Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]:
    """The pool's per-connection setup: JSON and timestamps read back as text (pg_types.py),
    the schema on the search path, UTC as the session's time zone, and the offset of the
    local clock from the server's measured again."""

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        pg_types.register(conn)
        await conn.execute(PostgresSession.SEARCH_PATH.format(schema=quoted_schema))
        await conn.execute(PostgresSession.TIME_ZONE)
        await measure_offset(conn, clock)

    return configure


async def measure_offset(conn: psycopg.AsyncConnection[Any], clock: DatabaseClock) -> None:
    """Set `clock.offset` to server time minus local time, to within half a round trip. Only
    Python-side decisions use it; statements read the server's clock themselves."""
    before = _clock.local_now()
    cursor = await conn.execute(PostgresSession.SERVER_CLOCK)
    row = await cursor.fetchone()
    after = _clock.local_now()
    if row is not None:
        server = _clock.from_db(row[0])
        assert server is not None
        clock.offset = server - (before + (after - before) / 2)


async def _listen(conninfo: str, channel: str, wakeups: Wakeups) -> None:
    """Turn notifications of enqueues into in-process wake-ups, until cancelled.

    A lost connection is re-opened after a pause; meanwhile loops fall back to their poll
    interval, so a missed notification costs latency, never a message.
    """
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        except (psycopg.Error, OSError) as err:
            log.warning("LISTEN connection failed, retrying: %s", err)
            await asyncio.sleep(LISTEN_RETRY_SECONDS)
            continue
        try:
            await conn.execute(PostgresSession.LISTEN.format(channel=quote_ident(channel)))
            # Enqueues made before LISTEN took effect were not notified: look once more.
            wakeups.notify_all()
            async for note in conn.notifies():
                if note.payload.isdigit():
                    wakeups.notify(queue_key(int(note.payload)))
        except (psycopg.Error, OSError) as err:
            log.warning("LISTEN connection lost, reconnecting: %s", err)
            await asyncio.sleep(LISTEN_RETRY_SECONDS)
        finally:
            await conn.close()


def _close_abandoned(
    connections: Connections,
    listener: list[asyncio.Task[None]],
    loop: asyncio.AbstractEventLoop,
) -> None:
    def close() -> None:
        for running in listener:
            running.cancel()
        keep(loop.create_task(connections.close()))

    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(close)
