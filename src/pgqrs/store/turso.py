"""The Turso backend: a local Turso database file through `pyturso` (DB-API, import `turso`).

Everything is the SQLite backend's (threads, one writer under `BEGIN IMMEDIATE`, statements,
install); this module holds only what differs:

* opening: pyturso takes a plain path (no `file:` URI), so `mode=rw|ro` are checked here and
  `ro` uses `PRAGMA query_only`; it has no `create_function`, so its statements are rendered
  for the "turso" dialect (plain-SQL lease arithmetic: `sql/turso.py`); the migrations are
  SQLite's except where pgqrs's Turso schema differs (`migrations/turso/`: versions 1, 3, 4);
* processes: pyturso locks the file for one process at a time (a second one gets "File is
  locked by another process" when it opens it). Connections therefore hand the file over: a
  process that has to wait says so through a lock on `<file>-wait`, and a process holding the
  file closes its connections, between calls, as soon as someone waits. The waiter retries
  for the busy timeout (5 s) and then fails with `PgqrsConnectionError`;
* adoption: pgqrs records a Turso installation in `pgqrs_schema_version` (schema.md §6.2).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import threading
import time
import weakref
from typing import Any, cast

from ..config import Dsn
from ..errors import ConfigError, PgqrsConnectionError
from .sql import TursoSql
from .sql.session import SqliteSession
from .sqlite import SqliteExecutor, translate
from .threads import ConnectionRunner, DbThread

try:
    import turso
except ImportError as err:  # an optional dependency: `pip install 'pgqrs-py[turso]'`
    raise ConfigError(
        "Invalid configuration value for dsn: turso backend needs the 'pyturso' package"
    ) from err

BUSY_TIMEOUT = 5.0
# pgqrs's Turso installer creates versions 1-5 of our numbering at once (schema.md §6.2).
PGQRS_TURSO_VERSIONS = frozenset(range(1, 6))


class Handoff:
    """One connection's side of the turn-taking between processes on a Turso file.

    Waiters hold a shared `flock` on `<file>-wait`; a holder that cannot take it exclusively
    knows someone waits. Each connection needs its own instance: flock locks belong to the
    open file, so two threads sharing one would convert each other's locks.
    """

    def __init__(self, path: str) -> None:
        self._path = f"{path}-wait"
        self._fd: int | None = None
        self._released_for_others = False

    def _file(self) -> int | None:
        if self._fd is None:
            with contextlib.suppress(OSError):  # a read-only directory: no turn-taking
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
                # Closed when the connection's thread (the only holder) has gone.
                weakref.finalize(self, os.close, self._fd)
        return self._fd

    def others_waiting(self) -> bool:
        fd = self._file()
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False

    def release(self, conn: Any) -> bool:
        """Whether to close `conn` now: it is outside a transaction and another process waits."""
        if conn.in_transaction or not self.others_waiting():
            return False
        self._released_for_others = True
        return True

    def connect(self, path: str) -> Any:
        """`turso.connect(path)`, waiting (at most the busy timeout) while another process
        holds the file. After giving the file away, wait a moment first so the waiter gets it."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        waiting = False
        pause = 0.001
        try:
            if self._released_for_others:
                self._released_for_others = False
                waiting = self._wait_flag()
                time.sleep(0.005)
            while True:
                try:
                    return turso.connect(path, isolation_level=None)
                except turso.Error as err:
                    if "locked by another process" not in str(err):
                        raise
                    if time.monotonic() >= deadline:
                        raise PgqrsConnectionError(
                            f"Database connection failed: {path} is in use by another process "
                            f"(waited {BUSY_TIMEOUT:g}s): {err}"
                        ) from err
                waiting = waiting or self._wait_flag()
                # A driver-thread backoff while another process holds the file (SQLite's
                # busy handler sleeps the same way); the holder lets go between its calls.
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 0.02)
        finally:
            if waiting and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _wait_flag(self) -> bool:
        fd = self._file()
        if fd is None:
            return False
        fcntl.flock(fd, fcntl.LOCK_SH)  # holders take it exclusively only for a moment
        return True


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(path: str) -> threading.Lock:
    """The process-wide write lock of the Turso file at `path`."""
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(os.path.realpath(path), threading.Lock())


class LockedConnection:
    """A pyturso connection whose write transactions first take the file's process-wide lock.

    pyturso's busy handler sleeps between retries, so a connection that commits and begins
    again at once would keep the file from every other connection of the process (all write
    contention is in one process: see `Handoff`). A lock that blocks and wakes waiters instead
    gives every store its turn.
    """

    def __init__(self, conn: Any, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock
        self._held = False

    @property
    def in_transaction(self) -> bool:
        return bool(self._conn.in_transaction)

    def execute(self, sql: str, params: Any = ()) -> Any:
        if sql == SqliteSession.BEGIN_WRITE and not self._held:
            if not self._lock.acquire(timeout=BUSY_TIMEOUT):
                raise turso.OperationalError("database is locked")
            self._held = True
        try:
            return self._conn.execute(sql, params)
        finally:
            if self._held and not self._conn.in_transaction:
                self._held = False
                self._lock.release()

    def close(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()
        self._conn.close()


def _translate(err: BaseException) -> PgqrsConnectionError:
    if "locked by another process" in str(err):
        return PgqrsConnectionError(f"Database connection failed: {err}")
    return translate(err)


class TursoExecutor(SqliteExecutor):
    """A Turso file (or private memory database) behind the `Executor` protocol."""

    backend = "turso"
    migration_kind = "turso"
    dialect = "turso"
    driver_errors = (turso.Error,)

    def _new_thread(self, mode: str, role: str) -> ConnectionRunner:
        # Neither the opener nor the release policy may reference the executor (see _opener).
        dsn, name = self._dsn, f"pgqrs-turso-{role}"
        if dsn.memory:  # one connection holds the whole database: never let it go
            return DbThread(
                functools.partial(self.open_turso, dsn, mode, self._synchronous, None), name
            )
        handoff = Handoff(dsn.path or "")
        opener = functools.partial(self.open_turso, dsn, mode, self._synchronous, handoff)
        return DbThread(opener, name, release=handoff.release)

    @classmethod
    def open_turso(
        cls, dsn: Dsn, mode: str, synchronous: str, handoff: Handoff | None = None
    ) -> Any:
        conn: Any
        if handoff is None:
            conn = turso.connect(":memory:", isolation_level=None)
        else:
            path = dsn.path or ""
            if mode in ("rw", "ro") and not os.path.exists(path):
                raise PgqrsConnectionError(
                    f"Database connection failed: unable to open database file: {path}"
                    + (" (mode=rw needs an existing file)" if mode == "rw" else "")
                )
            conn = LockedConnection(handoff.connect(path), write_lock(path))
        try:
            cls.configure(conn, dsn, synchronous, readonly=mode == "ro")
        except BaseException:
            conn.close()
            raise
        return conn

    @classmethod
    def configure(cls, conn: Any, dsn: Dsn, synchronous: str, *, readonly: bool) -> None:
        """SQLite's pragmas, without `create_function` (see sql/turso.py); `ro` is query_only."""
        cls.set_pragmas(conn, dsn, synchronous, readonly=readonly)
        if readonly:
            conn.execute(SqliteSession.QUERY_ONLY)

    def translate_error(self, err: BaseException) -> PgqrsConnectionError:
        return _translate(err)

    def adopted_versions(self, conn: Any, present: set[str]) -> set[int] | None:
        if "table:pgqrs_schema_version" not in present:
            return None
        (rows,) = conn.execute(cast(TursoSql, self.sql).TURSO_SCHEMA_VERSION_ROWS).fetchone()
        return set(PGQRS_TURSO_VERSIONS) if rows else None
