"""Worker rows: registration and guarded status transitions (semantics.md §9).

Every transition is one conditional UPDATE (`... WHERE status IN (allowed)`); zero rows changed
means the move was illegal, and the error names the status the row actually has.

Each registration draws a new `fence`: the handles of that registration pass it, and the row
answers to them only while it is still that registration (docs/guarantees.md, "Leases and fencing").
"""

from __future__ import annotations

import secrets
import socket
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from ..errors import StateTransitionError, ValidationError, WorkerNotFoundError
from ..store.executor import Queryable, UniqueViolation, scalar_int
from ..store.sql.columns import WORKER
from ..types import WorkerInfo, WorkerStatus

EPHEMERAL_PREFIX = "__ephemeral__"

READY, POLLING, SUSPENDED, INTERRUPTED, STOPPED = (
    WorkerStatus.Ready,
    WorkerStatus.Polling,
    WorkerStatus.Suspended,
    WorkerStatus.Interrupted,
    WorkerStatus.Stopped,
)


class Owner(NamedTuple):
    """A worker as one registration of it: what claims and settles are fenced by."""

    worker_id: int
    fence: int


def new_fence() -> int:
    """A registration's identity: random, so two registrations never share one."""
    return secrets.randbits(62) + 1


def superseded(worker_id: int) -> WorkerNotFoundError:
    return WorkerNotFoundError(
        f"Worker with id '{worker_id}' was registered again since this handle was made; "
        "the handle belongs to an earlier registration and can no longer act"
    )


def generated_name() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4()}"


def ephemeral_name() -> str:
    return f"{EPHEMERAL_PREFIX}{uuid.uuid4()}"


async def register(
    db: Queryable, queue_id: int | None, name: str, now: datetime | None, fence: int
) -> WorkerInfo:
    """Insert a `ready` worker, or bring back a stopped one of the same name (same id), as a
    new registration identified by `fence`."""
    params = {"name": name, "queue_id": queue_id, "now": now, "fence": fence}
    for _ in range(3):  # a concurrent registration of the same name is resolved by re-reading
        existing = await db.fetchone(db.sql.WORKER_BY_NAME, {"name": name})
        if existing is None:
            try:
                row = await db.fetchone(db.sql.WORKER_INSERT, params)
            except UniqueViolation:
                continue
            assert row is not None
            return WORKER.build(row)
        current = WORKER.build(existing)
        if current.status == STOPPED:
            row = await db.fetchone(db.sql.WORKER_REREGISTER, {**params, "id": current.id})
            if row is not None:
                return WORKER.build(row)
            continue
        if current.status == SUSPENDED:
            raise ValidationError(
                f"Validation failed: Worker {name} is suspended. Use resume() to reactivate."
            )
        raise ValidationError(
            f"Validation failed: Worker {name} is already active. Cannot register duplicate."
        )
    raise ValidationError(f"Validation failed: Worker {name} is being registered concurrently.")


async def get(db: Queryable, worker_id: int) -> WorkerInfo:
    row = await db.fetchone(db.sql.WORKER_BY_ID, {"id": worker_id})
    if row is None:
        raise WorkerNotFoundError(f"Worker with id '{worker_id}' not found")
    return WORKER.build(row)


async def status(db: Queryable, worker_id: int, fence: int | None = None) -> WorkerStatus:
    """The worker's status; `stopped` for a handle of an earlier registration (`fence`)."""
    row = await db.fetchone(db.sql.WORKER_STATUS, {"id": worker_id})
    if row is None:
        raise WorkerNotFoundError(f"Worker with id '{worker_id}' not found")
    if fence is not None and row[1] != fence:
        return STOPPED
    return WorkerStatus.parse(row[0])


async def transition(
    db: Queryable,
    worker_id: int,
    to: WorkerStatus,
    allowed: Iterable[WorkerStatus],
    reason: str,
    *,
    now: datetime | None = None,
    beat: bool = False,
    fence: int | None = None,
) -> None:
    """Move the worker to `to` if its status is in `allowed`, else `StateTransitionError`.

    With `beat`, the heartbeat is refreshed (at `now`) in the same statement; moving to
    `stopped` also sets `shutdown_at`. With `fence`, only that registration is moved.
    """
    params: dict[str, Any] = {
        "id": worker_id,
        "to": to.db,
        "allowed": [s.db for s in allowed],
        "now": now,
        "fence": fence,
    }
    if to == STOPPED:
        sql = db.sql.WORKER_STOP
    elif beat:
        sql = db.sql.WORKER_SET_STATUS_BEAT
    else:
        sql = db.sql.WORKER_SET_STATUS
    if await db.fetchone(sql, params) is None:
        row = await db.fetchone(db.sql.WORKER_STATUS, {"id": worker_id})
        if row is None:
            raise WorkerNotFoundError(f"Worker with id '{worker_id}' not found")
        if fence is not None and row[1] != fence:
            raise superseded(worker_id)
        raise StateTransitionError(
            f"Invalid state transition from {WorkerStatus.parse(row[0]).db} to {to.db}: {reason}"
        )


async def start_polling(
    db: Queryable, worker_id: int, fence: int | None, interval: float, now: datetime | None
) -> bool:
    """`ready`/`polling` → `polling` with a fresh beat and the heartbeat interval the loop
    promises; False when the worker was in another status (or is another registration)."""
    params = {"id": worker_id, "fence": fence, "interval": float(interval), "now": now}
    return await db.fetchone(db.sql.WORKER_START_POLLING, params) is not None


async def try_transition(
    db: Queryable,
    worker_id: int,
    to: WorkerStatus,
    allowed: Iterable[WorkerStatus],
    now: datetime | None,
    *,
    fence: int | None = None,
) -> bool:
    """`transition` that answers False instead of raising (for best-effort moves on exit)."""
    try:
        await transition(db, worker_id, to, allowed, "", now=now, fence=fence)
    except (StateTransitionError, WorkerNotFoundError):
        return False
    return True


NOT_STOPPED = (READY, POLLING, SUSPENDED, INTERRUPTED)


async def mark_stopped(
    db: Queryable, worker_id: int, now: datetime | None, *, fence: int | None = None
) -> bool:
    """Any status to `stopped` (ephemeral workers at the end of their call, reclamation)."""
    return await try_transition(db, worker_id, STOPPED, NOT_STOPPED, now, fence=fence)


async def heartbeat(
    db: Queryable, worker_id: int, now: datetime | None, fence: int | None = None
) -> None:
    params = {"id": worker_id, "now": now, "fence": fence}
    if await db.fetchone(db.sql.WORKER_HEARTBEAT, params) is None:
        if fence is not None and await db.fetchone(db.sql.WORKER_STATUS, {"id": worker_id}):
            raise superseded(worker_id)
        raise WorkerNotFoundError(f"Worker with id '{worker_id}' not found")


async def producer_beat(
    db: Queryable, info: WorkerInfo, fence: int, now: datetime | None
) -> WorkerInfo:
    """A producer's beat as it sends (semantics.md §9.3): `heartbeat_at = now`, and `ready`
    again if it was stopped. A row purged meanwhile is registered again under its name (a new
    id); a row registered again by someone else is left alone (`info` unchanged)."""
    row = await db.fetchone(db.sql.PRODUCER_BEAT, {"id": info.id, "fence": fence, "now": now})
    if row is not None:
        return WORKER.build(row)
    if await db.fetchone(db.sql.WORKER_STATUS, {"id": info.id}) is not None:
        return info
    return await register(db, info.queue_id, info.name, now, fence)


async def held_count(db: Queryable, worker_id: int) -> int:
    return await scalar_int(db, db.sql.WORKER_HELD_COUNT, {"id": worker_id})


async def list_all(db: Queryable) -> list[WorkerInfo]:
    return [WORKER.build(row) for row in await db.fetch(db.sql.WORKER_LIST)]


async def count(db: Queryable) -> int:
    return await scalar_int(db, db.sql.WORKER_COUNT)
