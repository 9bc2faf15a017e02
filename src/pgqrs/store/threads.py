"""Daemon threads that each own one blocking DB-API connection and run calls on it in order.

No blocking call runs on the event loop, and a store dropped without `close()` never keeps the
interpreter alive (the threads are daemons and stop when their executor is collected).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import PgqrsError

T = TypeVar("T")

_STOP = object()


class DbThread:
    """A daemon thread that owns one connection and runs submitted calls on it, in order.

    The connection opens on the first call (an opening error fails that call; the next one
    tries again). `release(conn)`, when given, is asked after each call and every
    `check_every` seconds while idle whether to close the connection until the next call
    (Turso hands its file to another process that way).
    """

    def __init__(
        self,
        opener: Callable[[], Any],
        name: str,
        *,
        release: Callable[[Any], bool] | None = None,
        check_every: float = 0.02,
    ) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(
            target=_serve,
            args=(self._jobs, opener, release, check_every),
            name=name,
            daemon=True,
        )
        self._thread.start()

    def call(self, fn: Callable[[Any], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._stopped:
            # Nobody would ever answer: a caller awaiting it (a rollback in a cleanup, say)
            # would hang the task, and with it the loop's shutdown.
            future.set_exception(closed())
        else:
            self._jobs.put((fn, loop, future))
        return future

    def stop(self) -> None:
        self._stopped = True
        self._jobs.put(_STOP)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class InlineConnection:
    """`DbThread`'s interface without the thread: each call runs at once on the calling
    thread, which must always be the same one (an event loop's).

    For a loop that exists only to serve blocking callers (pgqrs.sync's portal), the hand-off
    to a second thread is pure overhead: the loop has nothing else to do while the call runs
    (measured: docs/decisions.md, "Features (issue 12)"). The connection opens on the first
    call and closes on `stop()`, from any thread.
    """

    def __init__(self, opener: Callable[[], Any], name: str) -> None:
        self._opener = opener
        self._conn: Any = None
        self._stopped = False

    def call(self, fn: Callable[[Any], T]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if self._stopped:
            future.set_exception(closed())
            return future
        try:
            if self._conn is None:
                self._conn = self._opener()
            future.set_result(fn(self._conn))
        except BaseException as err:
            future.set_exception(err)
        return future

    def stop(self) -> None:
        self._stopped = True
        conn, self._conn = self._conn, None
        if conn is not None:
            _close(conn)

    def join(self, timeout: float) -> None:
        pass


def _serve(
    jobs: queue.SimpleQueue[Any],
    opener: Callable[[], Any],
    release: Callable[[Any], bool] | None,
    check_every: float,
) -> None:
    conn: Any = None
    while True:
        try:
            job = jobs.get(timeout=check_every if release and conn is not None else None)
        except queue.Empty:
            job = None
        if job is _STOP:
            _refuse_remaining(jobs)
            break
        if job is not None:
            fn, loop, future = job
            try:
                if conn is None:
                    conn = opener()
                outcome, value = True, fn(conn)
            except BaseException as err:
                outcome, value = False, err
            try:
                loop.call_soon_threadsafe(_settle, future, outcome, value)
            except RuntimeError:  # the loop is closed; nobody is waiting any more
                pass
            # Drop the finished call: its closure may hold what owns this thread (which could
            # then never be collected and stop it) while the thread waits for the next one.
            job = fn = loop = future = value = None
        if conn is not None and release is not None and _should_release(release, conn):
            _close(conn)
            conn = None
    if conn is not None:
        _close(conn)


def closed() -> PgqrsError:
    return PgqrsError("Store is closed")


def _refuse_remaining(jobs: queue.SimpleQueue[Any]) -> None:
    """Calls queued behind the stop fail at once instead of waiting forever."""
    while True:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            return
        if job is not _STOP:
            _, loop, future = job
            try:
                loop.call_soon_threadsafe(_settle, future, False, closed())
            except RuntimeError:
                pass


def _should_release(release: Callable[[Any], bool], conn: Any) -> bool:
    try:
        return release(conn)
    except Exception:  # e.g. at interpreter exit; keeping the connection is always safe
        return False


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


# What a SQLite-family executor runs its calls on.
ConnectionRunner = DbThread | InlineConnection


def stop_all(threads: list[ConnectionRunner]) -> None:
    for thread in threads:
        thread.stop()
