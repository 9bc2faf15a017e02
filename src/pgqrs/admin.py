"""`Admin`: the schema, queues, metrics and health, recovery of dead workers' messages, dead
letters and cleanup (api.md §4). Admin calls never register workers; arguments are checked
before any storage access; the work itself is in `pgqrs.tables` and `pgqrs.queue.recovery`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._clock import seconds
from .queue.recovery import _queue_ids, reclaim_stale
from .records import DeadLetter, MessageError, QueueSettings
from .store import migrate
from .store.wakeup import queue_key, run_key
from .tables import cleanup, failures, messages, metrics, queues, recovery, runs
from .tables import workers as worker_rows
from .types import QueueInfo, QueueMessage, QueueMetrics, SystemStats, WorkerHealthStats, WorkerInfo
from .validation import require_duration, require_int, validate_queue_name
from .workflows.builders import create_workflow

if TYPE_CHECKING:
    from .client import Store
    from .workflows.run import Run


class Admin:
    """Schema, queues, metrics and health, recovery, dead letters and cleanup."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store

    def __repr__(self) -> str:
        return f"<pgqrs.Admin store={self._store!r}>"

    async def install(self) -> None:
        """Apply pending migrations; idempotent, and safe from several processes at once."""
        await self._store.db.install()

    async def verify(self) -> None:
        await migrate.verify(self._store.db)

    async def create_queue(
        self, name: str, exist_ok: bool = False, *, max_read_ct: int | None = None
    ) -> QueueInfo:
        """Create a queue. `max_read_ct` (default: this store's Config.max_read_ct) is stored
        with it: every process that touches the queue makes dead letters at the same count."""
        validate_queue_name(name)
        limit = self._store.settings.max_read_ct
        if max_read_ct is not None:
            limit = require_int("max_read_ct", max_read_ct, 1)
        store = self._store
        return await queues.create(
            store.db, name, store.clock.now(), exist_ok=exist_ok, max_read_ct=limit
        )

    async def queue_settings(self, name: str) -> QueueSettings:
        """What the queue decides for every process: its poison threshold."""
        info = await self.get_queue(name)
        return await queues.settings(self._store.db, info.id)

    async def update_queue(self, name: str, *, max_read_ct: int) -> QueueSettings:
        """Change the queue's poison threshold for every process, from their next claim on."""
        limit = require_int("max_read_ct", max_read_ct, 1)
        info = await self.get_queue(name)
        return await queues.set_max_read_ct(self._store.db, info.id, limit)

    async def get_queue(self, name: str) -> QueueInfo:
        validate_queue_name(name)
        return await queues.get_by_name(self._store.db, name)

    async def delete_queue(self, name: str) -> bool:
        validate_queue_name(name)
        async with self._store.db.transaction() as db:
            await queues.delete(db, name)
        return True

    async def purge_queue(self, name: str) -> int:
        validate_queue_name(name)
        async with self._store.db.transaction() as db:
            return await queues.purge(db, name)

    async def release_worker_messages(self, worker_id: int) -> int:
        store = self._store
        return await messages.release_worker(store.db, worker_id, store.sql_now())

    async def create_workflow(self, name: str, arg: Any = None) -> Run:
        """Create the definition if missing, enqueue one trigger and create its QUEUED run."""
        return await create_workflow(self._store, name, arg)

    async def list_workers(self) -> list[WorkerInfo]:
        return await worker_rows.list_all(self._store.db)

    # -- metrics and health ------------------------------------------------------------------
    async def queue_metrics(self, name: str) -> QueueMetrics:
        validate_queue_name(name)
        store = self._store
        return await metrics.queue_metrics(
            store.db, name, store.sql_now(), store.settings.max_read_ct
        )

    async def all_queues_metrics(self) -> list[QueueMetrics]:
        """Every queue, ordered by name."""
        store = self._store
        return await metrics.all_queue_metrics(
            store.db, store.sql_now(), store.settings.max_read_ct
        )

    async def system_stats(self) -> SystemStats:
        store = self._store
        return await metrics.system_stats(store.db, store.sql_now(), store.settings.max_read_ct)

    async def worker_health_stats(
        self, heartbeat_timeout_seconds: int, group_by_queue: bool = False
    ) -> list[WorkerHealthStats]:
        timeout = require_duration("heartbeat_timeout_seconds", heartbeat_timeout_seconds)
        store = self._store
        cutoff = store.clock.now() - seconds(timeout)
        return await metrics.worker_health(store.db, cutoff, group_by_queue=group_by_queue)

    # -- recovery ----------------------------------------------------------------------------
    async def reclaim_messages(
        self,
        queue: str | None = None,
        older_than_seconds: int | None = None,
        *,
        force: bool = False,
    ) -> int:
        """Stop every worker silent for longer than `older_than_seconds` (default: three of its
        own heartbeat intervals) and take back what it held under a lease that is over; the
        number of messages released. A lease still running is kept (the worker may only be
        cut off), unless `force`: then everything those workers hold is released at once,
        for an operator who knows they are dead."""
        store = self._store
        older_than = None
        if older_than_seconds is not None:
            older_than = require_duration("older_than_seconds", older_than_seconds)
        queue_id = await self._queue_id(queue)
        done = await reclaim_stale(store, older_than, queue_id=queue_id, take_running=force)
        return done.messages

    # -- dead letters ------------------------------------------------------------------------
    async def dlq(self, queue: str | None = None) -> list[int]:
        """Archive every poison message; their ids, ascending. Workflow runs those messages
        triggered, still open, end ERROR first (no delivery will come to finish them)."""
        store = self._store
        queue_id = await self._queue_id(queue)
        default = store.settings.max_read_ct
        for qid in await _queue_ids(store, queue_id):
            limit = await queues.max_read_ct(store.db, qid, default)
            reason = f"Workflow trigger message became a dead letter after {limit} deliveries"
            for message_id in await runs.fail_dead_lettered(
                store.db, qid, limit, reason, store.sql_now()
            ):
                store.wakeups.notify(run_key(message_id))
        return await recovery.dead_letter(store.db, store.sql_now(), default, queue_id)

    async def dlq_list(self, queue: str | None = None) -> list[QueueMessage]:
        """Dead letters by id: poison messages, and those `dlq()` archived, with read counts."""
        store = self._store
        queue_id = await self._queue_id(queue)
        rows = await recovery.dead_letter_rows(
            store.db, store.sql_now(), store.settings.max_read_ct, queue_id
        )
        return await store.messages.read(store.db, rows)

    async def dead_letters(self, queue: str | None = None) -> list[DeadLetter]:
        """`dlq_list()`, each with the last error its handler raised (None when it failed
        without its handler saying: a worker that crashed on every delivery)."""
        found = await self.dlq_list(queue)
        errors = await failures.of(self._store.db, [m.id for m in found])
        return [DeadLetter(message=m, last_error=errors.get(m.id)) for m in found]

    async def last_error(self, message_id: int) -> MessageError | None:
        """The last error a handler raised for this message, if any."""
        mid = require_int("message_id", message_id)
        return (await failures.of(self._store.db, [mid])).get(mid)

    async def replay_dlq(self, message_id: int) -> QueueMessage:
        """Put an archived or poison message back as a fresh pending message (read count 0)."""
        require_int("message_id", message_id)
        store = self._store
        row = await recovery.replay(
            store.db, message_id, store.sql_now(), store.settings.max_read_ct
        )
        [message] = await store.messages.read(store.db, [row])
        store.wakeups.notify(queue_key(message.queue_id))
        return message

    # -- cleanup -----------------------------------------------------------------------------
    async def delete_worker(self, worker_id: int) -> bool:
        wid = require_int("worker_id", worker_id)
        async with self._store.db.transaction() as db:
            await cleanup.delete_worker(db, wid)
        return True

    async def purge_old_workers(self, older_than_seconds: int) -> int:
        older_than = require_duration("older_than_seconds", older_than_seconds)
        store = self._store
        return await cleanup.purge_old_workers(store.db, store.clock.now() - seconds(older_than))

    async def get_worker_messages(self, worker_id: int) -> list[QueueMessage]:
        store = self._store
        wid = require_int("worker_id", worker_id)
        rows = await cleanup.worker_message_rows(store.db, wid)
        return await store.messages.read(store.db, rows)

    async def purge_archived(self, queue: str | None = None, *, older_than_seconds: float) -> int:
        """Delete messages archived more than `older_than_seconds` ago (of one queue, or all),
        a thousand rows per transaction; messages a workflow run refers to are kept.
        The number deleted."""
        older_than = require_duration("older_than_seconds", older_than_seconds)
        store = self._store
        queue_id = await self._queue_id(queue)
        cutoff = store.clock.now() - seconds(older_than)
        return await cleanup.purge_archived(store.db, await _queue_ids(store, queue_id), cutoff)

    # -- helpers -----------------------------------------------------------------------------
    async def _queue_id(self, queue: str | None) -> int | None:
        if queue is None:
            return None
        validate_queue_name(queue)
        return (await queues.get_by_name(self._store.db, queue)).id


def admin(store: Store) -> Admin:
    return Admin(store)
