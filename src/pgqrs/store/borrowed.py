"""Statements on a connection the application holds: enqueue inside the caller's transaction.

`borrow(connection, executor)` gives a `Queryable` over the application's own connection, so a
message is written in the application's transaction and exists if and only if that transaction
commits (the outbox pattern). The library never begins, commits or rolls back on it. Accepted:
psycopg 3 connections (async or blocking) for a PostgreSQL store, `sqlite3` connections on the
store's own file for a SQLite store, and SQLAlchemy connections (sync or async engines) whose
driver connection is one of those. Anything else is refused before any write.

A borrowed connection is read as it is configured by its owner, so each statement runs on a cursor
of its own that returns plain tuples and, on PostgreSQL, JSON as text (what the store's own
connections do). A blocking connection blocks the caller's thread for the statement: it is meant
for blocking code (`pgqrs.sync`), where the caller waits anyway.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from ..errors import ValidationError
from . import pg_types, postgres, sqlite
from .executor import Executor, Params, Queryable, Row
from .sql import Sql

ACCEPTED = (
    "a psycopg connection (PostgreSQL store), a sqlite3 connection on the store's file (SQLite "
    "store), or a SQLAlchemy connection over one of those"
)


async def borrow(connection: object, executor: Executor) -> Queryable:
    """A `Queryable` over `connection` for `executor`'s database, or `ValidationError`."""
    connection = await _driver_connection(connection)
    if executor.backend == "postgres" and isinstance(connection, psycopg.AsyncConnection):
        return _PgAsync(connection, executor.sql)
    if executor.backend == "postgres" and isinstance(connection, psycopg.Connection):
        return _PgBlocking(connection, executor.sql)
    if executor.backend == "sqlite" and isinstance(connection, sqlite3.Connection):
        _check_same_file(connection, executor)
        return _Sqlite(connection, executor.sql)
    raise ValidationError(
        f"Validation failed: connection= takes {ACCEPTED}; got {type(connection).__name__} "
        f"for a {executor.backend} store"
    )


async def _driver_connection(connection: object) -> object:
    """The DB-API connection under a SQLAlchemy one (without importing SQLAlchemy)."""
    if not type(connection).__module__.startswith("sqlalchemy"):
        return connection
    raw: Any = connection
    if hasattr(raw, "get_raw_connection"):  # AsyncConnection
        raw = await raw.get_raw_connection()
    elif hasattr(raw, "connection"):  # Connection
        raw = raw.connection
    return getattr(raw, "driver_connection", raw)


def _check_same_file(connection: sqlite3.Connection, executor: Executor) -> None:
    """A sqlite3 connection on another file would write the message where no consumer looks."""
    rows = connection.execute("PRAGMA database_list").fetchall()
    path = next((row[2] for row in rows if row[1] == "main"), "")
    scope = executor.scope
    mine = scope[1] if isinstance(scope, tuple) else None
    if not path or mine is None or os.path.realpath(path) != mine:
        raise ValidationError(
            f"Validation failed: connection= is a sqlite3 connection on {path or 'memory'!r}, "
            f"not on this store's file {mine or 'memory'!r}: open it on the store's file"
        )


class _PgAsync:
    def __init__(self, conn: psycopg.AsyncConnection[Any], sql: Sql) -> None:
        self._conn = conn
        self.sql = sql

    async def _run(self, sql: str, params: Params | None) -> psycopg.AsyncCursor[Row]:
        cursor = self._conn.cursor(row_factory=tuple_row)
        pg_types.register(cursor)
        with postgres.translated():
            await cursor.execute(sql, postgres.adapt_params(params))
        return cursor

    async def execute(self, sql: str, params: Params | None = None) -> int:
        return (await self._run(sql, params)).rowcount

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        cursor = await self._run(sql, params)
        with postgres.translated():
            return await cursor.fetchall()

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        cursor = await self._run(sql, params)
        with postgres.translated():
            return await cursor.fetchone()


class _PgBlocking:
    def __init__(self, conn: psycopg.Connection[Any], sql: Sql) -> None:
        self._conn = conn
        self.sql = sql

    def _run(self, sql: str, params: Params | None) -> psycopg.Cursor[Row]:
        cursor = self._conn.cursor(row_factory=tuple_row)
        pg_types.register(cursor)
        with postgres.translated():
            cursor.execute(sql, postgres.adapt_params(params))
        return cursor

    async def execute(self, sql: str, params: Params | None = None) -> int:
        return self._run(sql, params).rowcount

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        with postgres.translated():
            return self._run(sql, params).fetchall()

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        with postgres.translated():
            return self._run(sql, params).fetchone()


class _Sqlite:
    def __init__(self, conn: sqlite3.Connection, sql: Sql) -> None:
        sqlite.register_functions(conn)
        self._conn = conn
        self.sql = sql

    def _run(self, sql: str, params: Params | None) -> sqlite3.Cursor:
        cursor = self._conn.cursor()
        cursor.row_factory = None  # plain tuples, whatever the connection's factory
        try:
            return cursor.execute(sql, sqlite.bind_now(sqlite.adapt_params(params)))
        except sqlite3.Error as err:
            raise sqlite.translate(err) from err

    async def execute(self, sql: str, params: Params | None = None) -> int:
        cursor = self._run(sql, params)
        return len(cursor.fetchall()) if cursor.description else int(cursor.rowcount)

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        return [tuple(row) for row in self._run(sql, params).fetchall()]

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        cursor = self._run(sql, params)
        row = cursor.fetchone()
        cursor.fetchall()  # finish the statement: an open one would keep the cursor busy
        return None if row is None else tuple(row)
