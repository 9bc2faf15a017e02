"""Recovery of the workers that stopped beating (docs/guarantees.md, "Recovery"): the sweep
every poll loop runs over its own queue, and the admin's reclaim over every worker.

What a worker is judged by, and what is taken back, is decided in `pgqrs.tables.recovery`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..store.wakeup import queue_key
from ..tables import queues, recovery
from ..types import WorkerStatus
from ..validation import require_duration
from .workers import Consumer

if TYPE_CHECKING:
    from ..tables.context import Context


def stale_after(store: Context, value: float | None, name: str = "older_than_seconds") -> float:
    """How long a silent worker is still considered alive: 3 heartbeats unless told."""
    if value is None:
        return recovery.STALE_AFTER_BEATS * store.settings.heartbeat_interval_seconds
    return require_duration(name, value)


async def _queue_ids(store: Context, queue_id: int | None) -> list[int]:
    """The one queue asked about, or every queue."""
    if queue_id is not None:
        return [queue_id]
    return [q.id for q in await queues.list_all(store.db)]


async def reclaim_stale(
    store: Context,
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


async def sweep_queue(store: Context, consumer: Consumer, healthy_for: float) -> recovery.Reclaimed:
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
