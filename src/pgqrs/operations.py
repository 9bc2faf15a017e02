"""The operations half of `Admin` (api.md §4, semantics §14): metrics and health, recovery of
dead workers' messages, dead letters, and cleanup.

Arguments are checked before any storage access; the work itself is in `pgqrs.tables`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._clock import seconds
from .records import DeadLetter, MessageError
from .store.wakeup import queue_key, run_key
from .tables import cleanup, failures, metrics, queues, recovery, runs
from .types import QueueMessage, QueueMetrics, SystemStats, WorkerHealthStats, WorkerStatus
from .validation import require_duration, require_int, validate_queue_name
from .workers import Consumer

if TYPE_CHECKING:
    from .store.facade import Store


def stale_after(store: Store, value: float | None, name: str = "older_than_seconds") -> float:
    """How long a silent worker is still considered alive: 3 heartbeats unless told."""
    if value is None:
        return recovery.STALE_AFTER_BEATS * store.settings.heartbeat_interval_seconds
    return require_duration(name, value)


async def _queue_ids(store: Store, queue_id: int | None) -> list[int]:
    """The one queue asked about, or every queue."""
    if queue_id is not None:
        return [queue_id]
    return [q.id for q in await queues.list_all(store.db)]


async def reclaim_stale(
    store: Store,
    older_than_seconds: float | None,
    *,
    queue_id: int | None = None,
    exclude: int = 0,
    healthy_for: float | None = None,
    statuses: tuple[WorkerStatus, ...] = recovery.ANY_LIVE,
    take_running: bool = False,
) -> recovery.Reclaimed:
    """Stop stale workers and take back what they held under leases that are over; wake the
    loops of the affected queue(s). `older_than_seconds` None judges each worker by its own
    heartbeat interval (three of them).

    Used by `Admin.reclaim_messages` and by every poll loop for its own queue.
    """
    silence = recovery.Silence(
        window=older_than_seconds,
        interval=float(store.settings.heartbeat_interval_seconds),
        healthy_for=healthy_for,
    )
    done = await recovery.reclaim(
        store.db,
        silence,
        store.sql_now(),
        queue_id=queue_id,
        exclude=exclude,
        statuses=statuses,
        take_running=take_running,
    )
    if done.messages:
        for qid in await _queue_ids(store, queue_id):
            store.wakeups.notify(queue_key(qid))
    return done


async def sweep_queue(store: Store, consumer: Consumer, healthy_for: float) -> recovery.Reclaimed:
    """A poll loop's own sweep: only its queue, never itself, only workers run by a poll loop
    (they heartbeat by contract; see `recovery.LOOP_RUN`), each judged by its own heartbeat
    interval and only on a silence the sweeper itself was healthy for."""
    return await reclaim_stale(
        store,
        None,
        queue_id=consumer.queue_id,
        exclude=consumer.worker_id,
        healthy_for=healthy_for,
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
        wid = _worker_id(worker_id)
        async with self._store.db.transaction() as db:
            await cleanup.delete_worker(db, wid)
        return True

    async def purge_old_workers(self, older_than_seconds: int) -> int:
        older_than = require_duration("older_than_seconds", older_than_seconds)
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
