"""Statements the executors run on their own connections, around the others: transaction
control, connection settings, the install lock, LISTEN.

Each belongs to one driver and is written in its final spelling (`render()` does not touch
them). A `{name}` is an identifier or keyword the executor fills in, quoted or fixed by the
library (a schema, a channel, a journal mode), never a value: values are bound parameters.
"""

from __future__ import annotations


class SqliteSession:
    """sqlite3 and pyturso connections (the SQLite, Turso and S3 backends)."""

    # Every write transaction: the write lock is taken at BEGIN, so concurrent processes queue
    # on the busy timeout instead of failing on a stale snapshot.
    BEGIN_WRITE = "BEGIN IMMEDIATE"
    COMMIT = "COMMIT"
    ROLLBACK = "ROLLBACK"
    BUSY_TIMEOUT = "PRAGMA busy_timeout=5000"
    JOURNAL_MODE = "PRAGMA journal_mode={mode}"  # WAL; DELETE for S3 (the file alone)
    FOREIGN_KEYS = "PRAGMA foreign_keys=ON"
    SYNCHRONOUS = "PRAGMA synchronous={level}"
    # Statements' transient tables (the b-tree behind `IN (SELECT value FROM json_each(:ids))`
    # of every claim and archive) in memory instead of a temporary file each time: a sixth of a
    # drain's SQL (docs/decisions.md, "Claimed messages convert their timestamps on first
    # read").
    TEMP_STORE = "PRAGMA temp_store=MEMORY"
    # Turso's `mode=ro` (pyturso takes no URI).
    QUERY_ONLY = "PRAGMA query_only=1"
    # S3: the schema cookie, which DDL changes without changing a row.
    SCHEMA_VERSION = "PRAGMA schema_version"


class PostgresSession:
    """psycopg connections, in psycopg's parameter style."""

    # Ends a pipeline's transaction that a cancellation cut short (`batch`).
    ROLLBACK = "ROLLBACK"

    # Install: concurrent installers of one schema, in any process, take turns.
    INSTALL_LOCK = "SELECT pg_advisory_lock(hashtextextended(%s, 0))"
    INSTALL_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(%s, 0))"
    CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS {schema}"
    # Each pooled connection: the schema on its search path.
    SEARCH_PATH = "SET search_path TO {schema}"
    # ... and UTC as its time zone: timestamps come back as `...+00` text (store/pg_types.py).
    TIME_ZONE = "SET TIME ZONE 'UTC'"
    # How far the local clock is off the server's, measured on each new connection.
    SERVER_CLOCK = "SELECT clock_timestamp()"
    # Wake-ups of idle consumers: the NOTIFY of each enqueue on the schema's channel.
    LISTEN = "LISTEN {channel}"
