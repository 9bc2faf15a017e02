"""Taking messages back from dead workers, and dead letters (semantics §7.5, §14).

A worker is stale when it is not stopped and its last heartbeat is older than a cutoff. Each
stale worker is handled in its own transaction (stop it, then release what it holds), so one
slow worker never holds locks on another's messages, and a worker that beat in the meantime is
left alone: the stop re-checks the heartbeat under the row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..errors import ValidationError
from ..store.executor import Executor, Queryable, Row, first_column
from ..types import WorkerStatus
from . import messages
from .workers import INTERRUPTED, NOT_STOPPED, POLLING

# What an admin sweep may stop: every worker that is not stopped yet (semantics §14).
ANY_LIVE = NOT_STOPPED
# What a poll loop's own sweep may stop: workers run by a poll loop, which heartbeat by
# contract. A `ready` worker may be a hand-driven consumer or a `consume_iter` that never beats
# (semantics §9.3, §10.7); taking its messages mid-handling would only cause double work.
LOOP_RUN = (POLLING, INTERRUPTED)


@dataclass(frozen=True)
class Reclaimed:
    workers: int  # workers marked stopped
    messages: int  # messages released


def _status_list(statuses: tuple[WorkerStatus, ...]) -> list[str]:
    return [s.db for s in statuses]


async def stale_workers(
    db: Queryable,
    cutoff: datetime,
    *,
    queue_id: int | None = None,
    exclude: int = 0,
    statuses: tuple[WorkerStatus, ...] = ANY_LIVE,
) -> list[int]:
    """Ids of stale workers (of one queue, if given), oldest heartbeat first."""
    params = {
        "cutoff": cutoff,
        "exclude": exclude,
        "queue_id": queue_id,
        "statuses": _status_list(statuses),
    }
    sql = db.sql.STALE_WORKERS if queue_id is None else db.sql.STALE_WORKERS_OF_QUEUE
    return [int(i) for i in first_column(await db.fetch(sql, params))]


async def reclaim(
    ex: Executor,
    *,
    cutoff: datetime,
    now: datetime,
    visible_at: datetime,
    queue_id: int | None = None,
    exclude: int = 0,
    statuses: tuple[WorkerStatus, ...] = ANY_LIVE,
) -> Reclaimed:
    """Stop every stale worker and release its unarchived messages (visible from `visible_at`).

    `exclude` is a worker never to reclaim (the poll loop doing the sweep); `statuses` the
    statuses a stale worker may have to be stopped.
    """
    stopped = released = 0
    found = await stale_workers(ex, cutoff, queue_id=queue_id, exclude=exclude, statuses=statuses)
    for worker_id in found:
        async with ex.transaction() as db:
            params = {
                "id": worker_id,
                "cutoff": cutoff,
                "exclude": exclude,
                "now": now,
                "statuses": _status_list(statuses),
            }
            if await db.fetchone(db.sql.STOP_STALE_WORKER, params) is None:
                continue  # it beat, or someone else stopped it, since the list was read
            released += await messages.release_worker(db, worker_id, visible_at)
            stopped += 1
    return Reclaimed(workers=stopped, messages=released)


async def dead_letter(
    db: Queryable, now: datetime, max_read_ct: int, queue_id: int | None
) -> list[int]:
    """Archive every poison message (owner kept); their ids, ascending."""
    params = {"now": now, "max_read_ct": max_read_ct, "queue_id": queue_id}
    sql = db.sql.DLQ_ARCHIVE if queue_id is None else db.sql.DLQ_ARCHIVE_QUEUE
    return sorted(int(i) for i in first_column(await db.fetch(sql, params)))


async def dead_letter_rows(
    db: Queryable, now: datetime, max_read_ct: int, queue_id: int | None
) -> list[Row]:
    """Poison messages, and archived messages that were poison when archived, by id."""
    params = {"now": now, "max_read_ct": max_read_ct, "queue_id": queue_id}
    return await db.fetch(db.sql.DLQ_LIST if queue_id is None else db.sql.DLQ_LIST_QUEUE, params)


async def replay(db: Queryable, message_id: int, now: datetime, max_read_ct: int) -> Row:
    """Make an archived or poison message pending again, as if freshly enqueued at `now`."""
    params = {"id": message_id, "now": now, "max_read_ct": max_read_ct}
    row = await db.fetchone(db.sql.DLQ_REPLAY, params)
    if row is not None:
        return row
    await messages.get_row(db, message_id)  # MessageNotFoundError when it does not exist
    raise ValidationError(
        f"Validation failed: message {message_id} is neither archived nor poison; only "
        "archived messages and messages that reached max_read_ct can be replayed"
    )
