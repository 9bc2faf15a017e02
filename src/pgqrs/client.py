"""The composition root: `connect()` / `connect_with()` pick the backend from the DSN and open
it; `Store`, the connected database every public object hangs off, wires the rest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._clock import Clock, sql_now
from .config import Config, parse_dsn
from .errors import ConfigError
from .handles import Messages, Queues, Workers, WorkflowRuns, Workflows, WorkflowSteps
from .queue.iterator import ConsumerIterator
from .queue.workers import Consumer, Producer, WorkerHandle
from .store.executor import Executor
from .store.wakeup import Wakeups, shared_wakeups
from .tables import queues
from .tables.messages import MessageReader
from .types import QueueInfo
from .validation import require_type, validate_queue_name, validate_schema_name


class Store:
    """A connection to one pgqrs database. Obtain it with `await pgqrs.connect(dsn)`.

    Safe to share between coroutines of the event loop that created it.
    """

    db: Executor
    clock: Clock
    wakeups: Wakeups
    messages: MessageReader
    _config: Config

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Store has no public constructor; use `await pgqrs.connect(dsn)`")

    @classmethod
    def _open(cls, db: Executor, config: Config) -> Store:

        store = object.__new__(cls)
        store.db = db
        store.clock = db.clock
        store.wakeups = shared_wakeups(db.scope)
        store.messages = MessageReader()
        store._config = config
        return store

    def sql_now(self) -> datetime | None:
        """A statement's `now`: None lets the database read its own clock as the statement
        runs; an injected clock (`store.clock = ...`) gives its time."""
        return sql_now(self.clock)

    @property
    def backend(self) -> str:
        return self.db.backend

    @property
    def config(self) -> Config:
        """A copy: changing it does not affect the store."""
        return self._config.copy()

    @property
    def settings(self) -> Config:
        """The store's own config, for the library's internal reads (not to be mutated)."""
        return self._config

    def __repr__(self) -> str:
        return f"<pgqrs.Store backend={self.backend!r}>"

    # -- workers -----------------------------------------------------------------------------
    async def producer(self, queue: str, name: str | None = None) -> Producer:

        return await Producer._register(self, queue, name)

    async def consumer(self, queue: str, name: str | None = None) -> Consumer:

        return await Consumer._register(self, queue, name)

    async def worker(self, worker_id: int) -> WorkerHandle:

        return await WorkerHandle._load(self, worker_id)

    def consume_iter(self, queue: str, poll_interval_ms: int | None = None) -> ConsumerIterator:

        return ConsumerIterator(self, queue, poll_interval_ms)

    # -- queues ------------------------------------------------------------------------------
    async def queue(self, name: str) -> QueueInfo:

        validate_queue_name(name)
        # The queue keeps the poison threshold of the config that created it: every process
        # that touches it agrees on when a message is a dead letter.
        return await queues.create(
            self.db, name, self.clock.now(), max_read_ct=self._config.max_read_ct
        )

    async def get_queue(self, name: str) -> QueueInfo:

        validate_queue_name(name)
        return await queues.get_by_name(self.db, name)

    # -- table handles -----------------------------------------------------------------------
    async def get_workers(self) -> Workers:

        return Workers(self)

    async def get_queues(self) -> Queues:

        return Queues(self)

    async def get_messages(self) -> Messages:

        return Messages(self)

    async def get_workflows(self) -> Workflows:
        return Workflows(self)

    async def get_workflow_runs(self) -> WorkflowRuns:
        return WorkflowRuns(self)

    async def get_workflow_steps(self) -> WorkflowSteps:
        return WorkflowSteps(self)

    # -- lifecycle ---------------------------------------------------------------------------
    async def bootstrap(self) -> None:
        await self.db.install()

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def connect(dsn: str) -> Store:
    """Connect with every setting at its default. Never installs or checks the schema."""
    return await connect_with(Config.from_dsn(dsn))


async def connect_with(config: Config) -> Store:
    """Connect with `config` (copied: later changes to it do not affect the store)."""
    return await open_store(config)


async def open_store(config: Config, *, inline: bool = False) -> Store:
    """`connect_with`; `inline` runs SQLite's connections on the event loop's thread, for a
    loop that only serves blocking callers (pgqrs.sync; docs/decisions.md, "Features (issue
    12)")."""
    config = require_type(
        config, Config, "connect_with() needs a pgqrs.Config, got {type.__name__}"
    ).copy()
    dsn = parse_dsn(config.dsn)
    validate_schema_name(config.schema)
    executor: Executor
    if dsn.backend == "postgres":
        from .store.postgres import PostgresExecutor

        executor = PostgresExecutor(config)
    elif dsn.backend == "sqlite":
        from .store.sqlite import SqliteExecutor

        executor = SqliteExecutor(dsn, inline=inline)
    elif dsn.backend == "turso":
        from .store.turso import TursoExecutor  # ConfigError when pyturso is not installed

        executor = TursoExecutor(dsn)
    elif dsn.backend == "s3":
        from .store.s3 import S3Executor

        executor = S3Executor(dsn, config)  # ConfigError without s3_cache_dir or boto3
    else:
        raise ConfigError(
            f"Invalid configuration value for dsn: the {dsn.backend} backend is not available yet"
        )
    await executor.start()
    return Store._open(executor, config)
