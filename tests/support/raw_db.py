"""A second, independent way into a test's database, for what the API does not show.

Tests read bookkeeping rows and the catalog through it, and simulate databases that other
programs (pgqrs itself) installed. It opens its own driver connection, so what it sees is what
is committed, not what the store believes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import botocore.exceptions
import psycopg

from tests.support.target import PG_DSN, Target

# This library's own tables: migration bookkeeping, the last error of failed messages, limits,
# schedules, and (migration 15) signals and events of workflow runs.
PY_TABLES = (
    "pgqrs_py_migrations",
    "pgqrs_py_message_errors",
    "pgqrs_limits",
    "pgqrs_schedules",
    "pgqrs_workflow_signals",
    "pgqrs_workflow_events",
)

# The six tables of schema.md, as every count snapshot lists them.
PGQRS_TABLES = (
    "pgqrs_queues",
    "pgqrs_workers",
    "pgqrs_messages",
    "pgqrs_workflows",
    "pgqrs_workflow_runs",
    "pgqrs_workflow_steps",
)


@functools.cache
def _s3_client(endpoint: str | None, region: str | None) -> Any:
    """One client per server, made once: making one loads botocore's S3 model (about 0.3 s,
    over a second on a loaded machine), and a `counts()` snapshot makes a dozen requests.
    boto3 clients are thread-safe."""
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region)


class RawDb:
    """Plain SQL on the target's database. `{s}` in a statement is the schema prefix and `?`
    a parameter, on both backends."""

    def __init__(self, target: Target) -> None:
        self.target = target
        # Turso and S3 files are SQLite files: the same SQL, reached through `_file()`.
        self.backend = "postgres" if target.backend == "postgres" else "sqlite"
        if target.backend != "postgres":
            self.path = target.dsn.split("://", 1)[1]
            self.prefix = ""
        else:
            self.path = ""
            self.prefix = f'"{target.schema}".'

    def _sql(self, sql: str) -> str:
        sql = sql.replace("{s}", self.prefix)
        return sql.replace("?", "%s") if self.backend == "postgres" else sql

    @contextlib.contextmanager
    def _file(self) -> Iterator[Any]:
        """An autocommit connection on the target's file: sqlite3, pyturso for Turso, and for
        S3 sqlite3 on a download of the object, uploaded again if anything changed."""
        if self.target.backend == "turso":
            import turso

            turso_conn = turso.connect(self.path, isolation_level=None)
            turso_conn.execute("PRAGMA foreign_keys=OFF")  # as a plain sqlite3 connection
            try:
                yield turso_conn
            finally:
                turso_conn.close()
            return
        if self.target.backend != "s3":
            with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
                yield conn
            return
        with tempfile.TemporaryDirectory() as folder:
            copy = os.path.join(folder, "object.sqlite")
            bucket, key = self.path.split("/", 1)
            client = _s3_client(os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_REGION"))
            try:
                client.download_file(bucket, key, copy)
            except botocore.exceptions.ClientError:
                pass  # no object yet: start from an empty database
            with contextlib.closing(sqlite3.connect(copy, isolation_level=None)) as conn:
                before = (conn.total_changes, conn.execute("PRAGMA schema_version").fetchone())
                yield conn
                changed = before != (
                    conn.total_changes,
                    conn.execute("PRAGMA schema_version").fetchone(),
                )
            if changed:
                client.upload_file(copy, bucket, key)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.backend == "sqlite":
            # Autocommit: each statement is committed at once, like on the Postgres side.
            with self._file() as conn:
                return [tuple(r) for r in conn.execute(self._sql(sql), params).fetchall()]
        with psycopg.connect(PG_DSN, autocommit=True) as pg:
            cursor = pg.execute(self._sql(sql), params)
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []

    def script(self, sql: str) -> None:
        """Run several statements (DDL) in one transaction."""
        if self.backend == "sqlite":
            with self._file() as conn:
                conn.executescript("BEGIN;\n" + sql.replace("{s}", "") + "\nCOMMIT;")
            return
        with psycopg.connect(PG_DSN) as pg:
            pg.execute(sql.replace("{s}", self.prefix))

    def tables(self) -> set[str]:
        if self.backend == "sqlite":
            rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = self.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                [self.target.schema],
            )
        return {r[0] for r in rows if not r[0].startswith(("sqlite_", "__turso_internal"))}

    def schema_exists(self) -> bool:
        assert self.backend == "postgres"
        rows = self.query("SELECT 1 FROM pg_namespace WHERE nspname = ?", [self.target.schema])
        return bool(rows)

    def counts(self) -> dict[str, int]:
        """Rows per pgqrs table (only the tables that exist): a snapshot to compare."""
        present = self.tables()
        names = [*PGQRS_TABLES, *PY_TABLES]
        return {
            t: int(self.query(f"SELECT COUNT(*) FROM {{s}}{t}")[0][0])
            for t in names
            if t in present
        }

    def migrations(self) -> list[tuple[int, str, str, str]]:
        """(version, name, method, library_version) of our bookkeeping, by version."""
        rows = self.query(
            "SELECT version, name, method, library_version FROM {s}pgqrs_py_migrations "
            "ORDER BY version"
        )
        return [(int(v), n, m, lv) for v, n, m, lv in rows]
