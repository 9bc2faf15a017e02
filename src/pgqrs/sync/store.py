"""The sync Store (`pgqrs.sync.connect`, `connect_with`) and the Admin it makes."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Self, TypeVar

from .. import client
from ..admin import Admin as AsyncAdmin
from ..client import Store as AsyncStore
from ..config import Config
from ..types import QueueInfo
from ..validation import require_type
from .admin_calls import AdminCalls
from .handles import Messages, Queues, Workers, WorkflowRuns, Workflows, WorkflowSteps
from .portal import Portal
from .shared_producers import SharedProducers, close_store
from .workers import Consumer, Producer, WorkerHandle

T = TypeVar("T")


async def _apply(fn: Callable[[AsyncStore], Awaitable[T]], store: AsyncStore) -> T:
    return await fn(store)


class Store:
    """A pgqrs store whose methods block. Obtain it with `pgqrs.sync.connect(dsn)`.

    Safe to share between threads (the threads of a WSGI server, say). Close it, or use it as
    a context manager: that stops its producers and its thread.
    """

    _portal: Portal
    _store: AsyncStore
    _producers: SharedProducers
    _finalizer: weakref.finalize[[], Store]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("pgqrs.sync.Store has no public constructor; use `pgqrs.sync.connect(dsn)`")

    @classmethod
    def _open(cls, opening: Callable[[], Coroutine[Any, Any, AsyncStore]]) -> Store:
        portal = Portal()
        try:
            async_store = portal.call(opening())
        except BaseException:
            portal.close()
            raise
        store = object.__new__(cls)
        store._portal = portal
        store._store = async_store
        store._producers = SharedProducers(async_store)
        portal.cleanup = functools.partial(close_store, async_store, store._producers)
        # Collected unclosed: close in the background. At exit, portal._close_at_exit does it.
        store._finalizer = weakref.finalize(store, portal.abandon)
        store._finalizer.atexit = False
        return store

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._portal.call(coro)

    @property
    def aio(self) -> AsyncStore:
        """The async store underneath. It belongs to the portal's event loop: use it only in
        functions given to `call()`."""
        return self._store

    @property
    def backend(self) -> str:
        return self._store.backend

    @property
    def config(self) -> Config:
        """A copy: changing it does not affect the store."""
        return self._store.config

    def __repr__(self) -> str:
        return f"<pgqrs.sync.Store backend={self.backend!r}>"

    def call(self, fn: Callable[[AsyncStore], Awaitable[T]]) -> T:
        """`fn(async_store)` awaited on the store's event loop: any async API from sync code
        (`store.call(lambda s: pgqrs.as_s3(s).sync())`)."""
        return self._call(_apply(fn, self._store))

    # -- workers -----------------------------------------------------------------------------
    def producer(self, queue: str, name: str | None = None) -> Producer:
        """A new producer (a worker row of its own, until its `shutdown()`)."""
        return Producer._wrap(self, self._call(self._store.producer(queue, name)))

    def consumer(self, queue: str, name: str | None = None) -> Consumer:
        return Consumer._wrap(self, self._call(self._store.consumer(queue, name)))

    def worker(self, worker_id: int) -> WorkerHandle:
        return WorkerHandle._wrap(self, self._call(self._store.worker(worker_id)))

    # -- queues ------------------------------------------------------------------------------
    def queue(self, name: str) -> QueueInfo:
        return self._call(self._store.queue(name))

    def get_queue(self, name: str) -> QueueInfo:
        return self._call(self._store.get_queue(name))

    # -- admin and table handles -------------------------------------------------------------
    def admin(self) -> Admin:
        return Admin(self)

    def get_workers(self) -> Workers:
        return Workers._wrap(self, self._call(self._store.get_workers()))

    def get_queues(self) -> Queues:
        return Queues._wrap(self, self._call(self._store.get_queues()))

    def get_messages(self) -> Messages:
        return Messages._wrap(self, self._call(self._store.get_messages()))

    def get_workflows(self) -> Workflows:
        return Workflows._wrap(self, self._call(self._store.get_workflows()))

    def get_workflow_runs(self) -> WorkflowRuns:
        return WorkflowRuns._wrap(self, self._call(self._store.get_workflow_runs()))

    def get_workflow_steps(self) -> WorkflowSteps:
        return WorkflowSteps._wrap(self, self._call(self._store.get_workflow_steps()))

    # -- lifecycle ---------------------------------------------------------------------------
    def bootstrap(self) -> None:
        self._call(self._store.bootstrap())

    def close(self) -> None:
        """Stop the store's producers, close the async store and end its thread; idempotent.
        Later calls raise `PgqrsError("Store is closed")`."""
        self._portal.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(dsn: str) -> Store:
    """`pgqrs.connect(dsn)`, blocking: a store whose methods block."""
    return connect_with(Config.from_dsn(dsn))


def connect_with(config: Config) -> Store:
    """`pgqrs.connect_with(config)`, blocking."""
    # The portal's loop serves only blocking callers: SQLite runs on it, with no hand-off.
    return Store._open(lambda: client.open_store(config, inline=True))


def sync_store(store: object) -> Store:
    """`store`, or TypeError unless it is a `pgqrs.sync.Store`."""
    return require_type(store, Store, "expected a pgqrs.sync.Store, got {type.__name__}")


class Admin(AdminCalls):
    """`pgqrs.Admin`, blocking (api.md §4)."""

    __slots__ = ()

    _owner: Store

    def __init__(self, store: Store) -> None:
        self._owner = sync_store(store)
        self._admin = AsyncAdmin(store.aio)

    @property
    def store(self) -> Store:
        return self._owner

    def __repr__(self) -> str:
        return f"<pgqrs.sync.Admin store={self._owner!r}>"


def admin(store: Store) -> Admin:
    return Admin(store)
