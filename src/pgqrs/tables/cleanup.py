"""Removing what is no longer needed: stopped workers and old archived messages (semantics.md §14).

Nothing is deleted that another row still points at: a worker named by a message (as producer
or consumer) or by a workflow run stays, and so does an archived message a workflow run was
triggered by (the run keeps its history; `purge_queue` is the way to drop those).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..errors import StateTransitionError, ValidationError
from ..store.executor import Executor, Queryable, Row
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


async def purge_old_workers(db: Queryable, cutoff: datetime) -> int:
    """Delete stopped workers that stopped (or last beat) before `cutoff` and that nothing
    references; the number deleted."""
    return await db.execute(db.sql.WORKERS_PURGE_OLD, {"cutoff": cutoff})


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
