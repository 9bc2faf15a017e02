"""Calls that carry `connection=` (api.md §21): they run in the calling thread, not on the portal.

The application's connection belongs to the thread that uses it (a sqlite3 connection refuses
any other; a blocking psycopg one would block the portal's loop, and every other thread's call
behind it, for as long as the statement waits on the application's transaction). So the
library's own coroutine runs here, stepped without an event loop: on a blocking connection each
statement blocks this thread and nothing suspends.

What the coroutine reads of the store besides that connection (a queue's settings, its id, a
workflow definition) goes through a *view* of the async store, the same object but for its
executor, which runs each statement on the portal (a blocking hop): the store's connections,
pools and locks belong to the portal's loop and are never touched from here. In-memory state
read here: the store's Config, clock and message reader; the producer's payload rules (a copy
of the producer holds the view, so a refresh of its rules goes through the portal too) and its
token bucket (shared, so the producer's rate holds; its `take` takes no lock, so threads racing
on one producer may be let through a token or two beyond the rate).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, NoReturn, TypeVar, cast

from ..client import Store as AsyncStore
from ..errors import InternalError, ValidationError
from ..queue.workers import Producer as AsyncProducer
from ..store.executor import Executor, Params, Queryable, Row
from ..store.wakeup import Wakeups
from .portal import Owner, Portal

T = TypeVar("T")


def in_calling_thread(
    owner: Owner, connection: object, call: Callable[[AsyncStore], Coroutine[Any, Any, T]]
) -> T:
    """`call(view)` run to its end in this thread, `view` the owner's async store as seen from
    here. Refused as the portal refuses calls (its own thread, a closed store), and for an
    async connection, which needs an event loop this thread does not run for it."""
    portal = owner._portal
    portal.check_caller()
    if inspect.iscoroutinefunction(getattr(connection, "execute", None)):
        raise ValidationError(
            "Validation failed: pgqrs.sync takes a blocking connection= (sqlite3, "
            "psycopg.Connection, a SQLAlchemy Connection), used in the calling thread; "
            f"for {type(connection).__name__}, await the async API"
        )
    view = copy.copy(owner.aio)
    view.db = _OnPortal(owner.aio.db, portal)
    return _run_here(call(view))


def producer_on(producer: AsyncProducer, view: AsyncStore) -> AsyncProducer:
    """A copy of `producer` whose store is `view` (same worker, rules and token bucket)."""
    seen = copy.copy(producer)
    seen._store = view
    return seen


def _run_here(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to its end in this thread without an event loop: it never suspends, since
    the store is reached through the portal and the connection blocks."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise InternalError("Internal error: a connection= call of pgqrs.sync waited for a loop")


class _OnPortal:
    """The store's executor as a calling thread sees it: each statement runs on the portal.
    Only statements and batches are asked of it there; the rest belongs to the portal."""

    def __init__(self, db: Executor, portal: Portal) -> None:
        self._db = db
        self._portal = portal
        # What the statements' callers read of an executor, the same objects (the clock too).
        self.backend = db.backend
        self.migration_kind = db.migration_kind
        self.schema = db.schema
        self.scope = db.scope
        self.clock = db.clock
        self.sql = db.sql

    async def execute(self, sql: str, params: Params | None = None) -> int:
        return self._portal.call(self._db.execute(sql, params))

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        return self._portal.call(self._db.fetch(sql, params))

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None:
        return self._portal.call(self._db.fetchone(sql, params))

    async def batch(self, steps: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        return self._portal.call(self._db.batch(steps))

    def transaction(self) -> AbstractAsyncContextManager[Queryable]:
        _not_here("a transaction on the store")

    async def start(self) -> None:
        _not_here("start")

    async def install(self) -> None:
        _not_here("install")

    def watch(self, wakeups: Wakeups) -> None:
        _not_here("watch")

    async def close(self) -> None:
        _not_here("close")


def _not_here(what: str) -> NoReturn:
    raise InternalError(f"Internal error: {what} from a connection= call of pgqrs.sync")
