"""The operations half of `Admin` (api.md §4, semantics §14): metrics and health, recovery of
dead workers' messages, dead letters, and cleanup.

Arguments are checked before any storage access; the work itself is in `pgqrs.tables`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._clock import seconds
from .store.wakeup import queue_key
from .tables import cleanup, metrics, queues, recovery
from .types import QueueMessage, QueueMetrics, SystemStats, WorkerHealthStats, WorkerStatus
from .validation import require_int, require_non_negative, validate_queue_name
from .workers import Consumer

if TYPE_CHECKING:
    from .store.facade import Store


def stale_after(store: Store, value: float | None, name: str = "older_than_seconds") -> float:
    """How long a silent worker is still considered alive: 3 heartbeats unless told."""
    if value is None:
        return 3.0 * store.settings.heartbeat_interval_seconds
    return require_non_negative(name, value)


async def _queue_ids(store: Store, queue_id: int | None) -> list[int]:
    """The one queue asked about, or every queue."""
    if queue_id is not None:
        return [queue_id]
    return [q.id for q in await queues.list_all(store.db)]


async def reclaim_stale(
    store: Store,
    older_than_seconds: float,
    *,
    queue_id: int | None = None,
    exclude: int = 0,
    visible_at: datetime | None = None,
    statuses: tuple[WorkerStatus, ...] = recovery.ANY_LIVE,
) -> recovery.Reclaimed:
    """Stop stale workers and release their messages; wake the loops of the affected queue(s).

    Used by `Admin.reclaim_messages` and by every poll loop for its own queue.
    """
    now = store.clock.now()
    done = await recovery.reclaim(
        store.db,
        cutoff=now - seconds(older_than_seconds),
        now=now,
        visible_at=visible_at or now,
        queue_id=queue_id,
        exclude=exclude,
        statuses=statuses,
    )
    if done.messages:
        for qid in await _queue_ids(store, queue_id):
            store.wakeups.notify(queue_key(qid))
    return done


async def sweep_queue(
    store: Store, consumer: Consumer, older_than_seconds: float, *, visible_at: datetime
) -> recovery.Reclaimed:
    """A poll loop's own sweep: only its queue, never itself, and only workers run by a poll
    loop (they heartbeat by contract; see `recovery.LOOP_RUN`)."""
    return await reclaim_stale(
        store,
        older_than_seconds,
        queue_id=consumer.queue_id,
        exclude=consumer.worker_id,
        visible_at=visible_at,
        statuses=recovery.LOOP_RUN,
    )


def _worker_id(value: Any) -> int:
    return require_int("worker_id", value)


class AdminOperations:
    """Mixed into `Admin`."""

    _store: Store

    # -- metrics and health ------------------------------------------------------------------
    async def queue_metrics(self, name: str) -> QueueMetrics:
        validate_queue_name(name)
        store = self._store
        return await metrics.queue_metrics(
            store.db, name, store.clock.now(), store.settings.max_read_ct
        )

    async def all_queues_metrics(self) -> list[QueueMetrics]:
        """Every queue, ordered by name."""
        store = self._store
        return await metrics.all_queue_metrics(
            store.db, store.clock.now(), store.settings.max_read_ct
        )

    async def system_stats(self) -> SystemStats:
        store = self._store
        return await metrics.system_stats(store.db, store.clock.now(), store.settings.max_read_ct)

    async def worker_health_stats(
        self, heartbeat_timeout_seconds: int, group_by_queue: bool = False
    ) -> list[WorkerHealthStats]:
        timeout = require_non_negative("heartbeat_timeout_seconds", heartbeat_timeout_seconds)
        store = self._store
        cutoff = store.clock.now() - seconds(timeout)
        return await metrics.worker_health(store.db, cutoff, group_by_queue=group_by_queue)

    # -- recovery ----------------------------------------------------------------------------
    async def reclaim_messages(
        self, queue: str | None = None, older_than_seconds: int | None = None
    ) -> int:
        """Stop every worker silent for longer than `older_than_seconds` (default: three
        heartbeat intervals) and release what it holds; the number of messages released."""
        store = self._store
        older_than = stale_after(store, older_than_seconds)
        queue_id = await self._queue_id(queue)
        return (await reclaim_stale(store, older_than, queue_id=queue_id)).messages

    # -- dead letters ------------------------------------------------------------------------
    async def dlq(self, queue: str | None = None) -> list[int]:
        """Archive every poison message; their ids, ascending."""
        store = self._store
        queue_id = await self._queue_id(queue)
        return await recovery.dead_letter(
            store.db, store.clock.now(), store.settings.max_read_ct, queue_id
        )

    async def dlq_list(self, queue: str | None = None) -> list[QueueMessage]:
        """Dead letters by id: poison messages, and those `dlq()` archived, with read counts."""
        store = self._store
        queue_id = await self._queue_id(queue)
        rows = await recovery.dead_letter_rows(
            store.db, store.clock.now(), store.settings.max_read_ct, queue_id
        )
        return await store.messages.read(store.db, rows)

    async def replay_dlq(self, message_id: int) -> QueueMessage:
        """Put an archived or poison message back as a fresh pending message (read count 0)."""
        require_int("message_id", message_id)
        store = self._store
        row = await recovery.replay(
            store.db, message_id, store.clock.now(), store.settings.max_read_ct
        )
        [message] = await store.messages.read(store.db, [row])
        store.wakeups.notify(queue_key(message.queue_id))
        return message

    # -- cleanup -----------------------------------------------------------------------------
    async def delete_worker(self, worker_id: int) -> bool:
        wid = _worker_id(worker_id)
        async with self._store.db.transaction() as db:
            await cleanup.delete_worker(db, wid)
        return True

    async def purge_old_workers(self, older_than_seconds: int) -> int:
        older_than = require_non_negative("older_than_seconds", older_than_seconds)
        store = self._store
        return await cleanup.purge_old_workers(store.db, store.clock.now() - seconds(older_than))

    async def get_worker_messages(self, worker_id: int) -> list[QueueMessage]:
        store = self._store
        rows = await cleanup.worker_message_rows(store.db, _worker_id(worker_id))
        return await store.messages.read(store.db, rows)

    async def purge_archived(self, queue: str | None = None, *, older_than_seconds: float) -> int:
        """Delete messages archived more than `older_than_seconds` ago (of one queue, or all),
        a thousand rows per transaction; messages a workflow run refers to are kept.
        The number deleted."""
        older_than = require_non_negative("older_than_seconds", older_than_seconds)
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
