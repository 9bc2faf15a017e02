"""Removing what is no longer needed: stopped workers and old archived messages (semantics.md §14).

`delete_worker` deletes nothing that another row still points at (as pgqrs); purging stopped
workers clears what names them in messages first, but keeps a worker that holds an unarchived
message or that a workflow run names. An archived message a workflow run was triggered by is
kept (the run keeps its history; `purge_queue` is the way to drop those).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..errors import StateTransitionError, ValidationError
from ..store.executor import Executor, Queryable, Row, first_column
from . import workers
from .workers import STOPPED

# Rows deleted per transaction by `purge_archived`: small enough that no lock is held for long,
# large enough that a million rows take a thousand short statements, not a million.
PURGE_CHUNK = 1000


async def delete_worker(db: Queryable, worker_id: int) -> None:
    """Delete a stopped, unreferenced worker; otherwise say exactly what stands in the way."""
    if await db.fetchone(db.sql.WORKER_DELETE_STOPPED, {"id": worker_id}) is not None:
        return
    info = await workers.get(db, worker_id)  # WorkerNotFoundError when it does not exist
    if info.status != STOPPED:
        raise StateTransitionError(
            f"Invalid state transition from {info.status.db} to deleted: "
            "Worker must be stopped before deletion"
        )
    row = await db.fetchone(db.sql.WORKER_REFERENCES, {"id": worker_id})
    assert row is not None
    produced, consumed, runs = (int(n or 0) for n in row)
    what = []
    if produced or consumed:
        what.append(f"{produced + consumed} message reference(s) (as producer or consumer)")
    if runs:
        what.append(f"{runs} workflow run(s)")
    raise ValidationError(
        f"Validation failed: Cannot delete worker {worker_id}: it is still referenced by "
        f"{' and '.join(what) or 'other rows'}. Purge those messages first "
        "(purge_archived() or purge_queue())."
    )


async def purge_old_workers(ex: Executor, cutoff: datetime, chunk: int = PURGE_CHUNK) -> int:
    """Delete stopped workers that stopped (or last beat) before `cutoff`, hold no unarchived
    message and that no run names, `chunk` per transaction; messages that name them (as
    producer, or as the consumer of an archived message) name no worker afterwards. The
    number deleted."""
    deleted, after = 0, 0
    while True:
        async with ex.transaction() as db:
            params = {"cutoff": cutoff, "after": after, "limit": chunk}
            ids = [int(i) for i in first_column(await db.fetch(db.sql.WORKERS_PURGEABLE, params))]
            if not ids:
                return deleted
            await db.execute(db.sql.WORKERS_UNLINK_PRODUCED, {"ids": ids})
            await db.execute(db.sql.WORKERS_UNLINK_ARCHIVED, {"ids": ids})
            deleted += await db.execute(db.sql.WORKERS_DELETE_PURGEABLE, {"ids": ids})
        after = ids[-1]


async def worker_message_rows(db: Queryable, worker_id: int) -> list[Row]:
    """The unarchived messages the worker owns, by id."""
    await workers.get(db, worker_id)  # WorkerNotFoundError when it does not exist
    return await db.fetch(db.sql.WORKER_MESSAGES, {"id": worker_id})


async def purge_archived(
    ex: Executor, queue_ids: Iterable[int], cutoff: datetime, chunk: int = PURGE_CHUNK
) -> int:
    """Delete messages archived before `cutoff`, `chunk` rows per statement (each its own
    transaction), queue by queue; the number deleted."""
    deleted = 0
    for queue_id in queue_ids:
        params = {"queue_id": queue_id, "cutoff": cutoff, "limit": chunk}
        while True:
            n = await ex.execute(ex.sql.PURGE_ARCHIVED_CHUNK, params)
            deleted += n
            if n < chunk:
                break
    return deleted
