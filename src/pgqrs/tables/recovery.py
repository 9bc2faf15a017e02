"""Taking messages back from dead workers, and dead letters (semantics.md §7.5, §14).

A worker is stale when it is not stopped and it has been silent for longer than it may be:
`Silence.window` seconds when the caller names a window, else `factor` times the heartbeat
interval the worker's own poll loop promised. Each stale worker is handled in its own
transaction (stop it, then take back what it held under a lease that is over), so one slow
worker never holds locks on another's messages, and a worker that beat in the meantime is left
alone: the stop re-checks the silence under the row lock. A lease that is still running is
never taken: a worker judged dead by mistake finishes what it holds, and a dead one's messages
come back when their leases end (docs/guarantees.md, "Recovery").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..errors import ValidationError
from ..store.executor import Executor, Queryable, Row, first_column
from ..store.sql.columns import MESSAGE
from ..types import WorkerStatus
from . import messages
from .workers import INTERRUPTED, NOT_STOPPED, POLLING

_ARCHIVED_AT = MESSAGE.index("archived_at")

# How many heartbeat intervals of silence make a worker stale.
STALE_AFTER_BEATS = 3.0

# What an admin sweep may stop: every worker that is not stopped yet (semantics.md §14).
ANY_LIVE = NOT_STOPPED
# What a poll loop's own sweep may stop: workers run by a poll loop, which heartbeat by
# contract. A `ready` worker may be a hand-driven consumer or a `consume_iter` that never beats
# (semantics.md §9.3, §10.7); taking its messages mid-handling would only cause double work.
LOOP_RUN = (POLLING, INTERRUPTED)


@dataclass(frozen=True)
class Reclaimed:
    workers: int  # workers marked stopped
    messages: int  # messages released


@dataclass(frozen=True)
class Silence:
    """How long a worker may stay silent before a sweep stops it."""

    window: float | None  # seconds for every worker (an admin call), or None: each its own
    interval: float  # the heartbeat interval of workers whose loop never stored one
    factor: float = STALE_AFTER_BEATS
    # A sweeping poll loop: how long its own database calls have succeeded without a gap. Only
    # a silence it saw in full counts (None: no such condition, an admin call).
    healthy_for: float | None = None


def _status_list(statuses: tuple[WorkerStatus, ...]) -> list[str]:
    return [s.db for s in statuses]


def _params(
    silence: Silence,
    now: datetime | None,
    queue_id: int | None,
    exclude: int,
    statuses: tuple[WorkerStatus, ...],
) -> dict[str, object]:
    return {
        "window": silence.window,
        "interval": silence.interval,
        "factor": silence.factor,
        "healthy_for": silence.healthy_for,
        "now": now,
        "queue_id": queue_id,
        "exclude": exclude,
        "statuses": _status_list(statuses),
    }


async def stale_workers(
    db: Queryable,
    silence: Silence,
    now: datetime | None,
    *,
    queue_id: int | None = None,
    exclude: int = 0,
    statuses: tuple[WorkerStatus, ...] = ANY_LIVE,
) -> list[int]:
    """Ids of stale workers (of one queue, if given), oldest heartbeat first."""
    params = _params(silence, now, queue_id, exclude, statuses)
    sql = db.sql.STALE_WORKERS if queue_id is None else db.sql.STALE_WORKERS_OF_QUEUE
    return [int(i) for i in first_column(await db.fetch(sql, params))]


async def reclaim(
    ex: Executor,
    silence: Silence,
    now: datetime | None,
    *,
    queue_id: int | None = None,
    exclude: int = 0,
    statuses: tuple[WorkerStatus, ...] = ANY_LIVE,
    take_running: bool = False,
) -> Reclaimed:
    """Stop every stale worker and take back what it held under a lease that is over (with
    `take_running`, an operator's explicit choice, under a running lease too).

    `exclude` is a worker never to reclaim (the poll loop doing the sweep); `statuses` the
    statuses a stale worker may have to be stopped.
    """
    stopped = released = 0
    found = await stale_workers(
        ex, silence, now, queue_id=queue_id, exclude=exclude, statuses=statuses
    )
    for worker_id in found:
        async with ex.transaction() as db:
            params = {**_params(silence, now, queue_id, exclude, statuses), "id": worker_id}
            if await db.fetchone(db.sql.STOP_STALE_WORKER, params) is None:
                continue  # it beat, or someone else stopped it, since the list was read
            if take_running:
                released += await messages.release_worker(db, worker_id, now)
            else:
                released += await messages.release_expired(db, worker_id, now)
            stopped += 1
    return Reclaimed(workers=stopped, messages=released)


async def dead_letter(
    db: Queryable, now: datetime | None, max_read_ct: int, queue_id: int | None
) -> list[int]:
    """Archive every poison message (owner kept); their ids, ascending."""
    params = {"now": now, "max_read_ct": max_read_ct, "queue_id": queue_id}
    sql = db.sql.DLQ_ARCHIVE if queue_id is None else db.sql.DLQ_ARCHIVE_QUEUE
    return sorted(int(i) for i in first_column(await db.fetch(sql, params)))


async def dead_letter_rows(
    db: Queryable, now: datetime | None, max_read_ct: int, queue_id: int | None
) -> list[Row]:
    """Poison messages, and archived messages that were poison when archived, by id."""
    params = {"now": now, "max_read_ct": max_read_ct, "queue_id": queue_id}
    return await db.fetch(db.sql.DLQ_LIST if queue_id is None else db.sql.DLQ_LIST_QUEUE, params)


async def archive_dead_letter(
    db: Queryable, message_id: int, now: datetime | None, max_read_ct: int
) -> int | None:
    """Archive one poison message (owner kept); its read count, or None when it was archived
    already. `ValidationError` when it is not a dead letter (below its queue's threshold, or
    under a running lease), `MessageNotFoundError` when it does not exist."""
    params = {"id": message_id, "now": now, "max_read_ct": max_read_ct}
    row = await db.fetchone(db.sql.DLQ_ARCHIVE_ONE, params)
    if row is not None:
        return int(row[1])
    found = await messages.get_row(db, message_id)  # MessageNotFoundError when it does not exist
    if found[_ARCHIVED_AT] is not None:
        return None
    raise ValidationError(
        f"Validation failed: message {message_id} is not a dead letter; only a message that "
        "reached its queue's max_read_ct and is not leased can be archived as one"
    )


async def replay(db: Queryable, message_id: int, now: datetime | None, max_read_ct: int) -> Row:
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
