"""Worker rows: registration and guarded status transitions (semantics §9).

Every transition is one conditional UPDATE (`... WHERE status IN (allowed)`); zero rows changed
means the move was illegal, and the error names the status the row actually has.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from .._clock import db_to_api
from ..errors import StateTransitionError, ValidationError, WorkerNotFoundError
from ..store.executor import Queryable, UniqueViolation, scalar_int
from ..types import WorkerInfo, WorkerStatus

EPHEMERAL_PREFIX = "__ephemeral__"

READY, POLLING, SUSPENDED, INTERRUPTED, STOPPED = (
    WorkerStatus.Ready,
    WorkerStatus.Polling,
    WorkerStatus.Suspended,
    WorkerStatus.Interrupted,
    WorkerStatus.Stopped,
)


def worker_info(row: Sequence[Any]) -> WorkerInfo:
    return WorkerInfo(
        id=int(row[0]),
        name=row[1],
        status=WorkerStatus.parse(row[2]),
        queue_id=None if row[3] is None else int(row[3]),
        heartbeat_at=db_to_api(row[4]) or "",
        started_at=db_to_api(row[5]) or "",
        shutdown_at=db_to_api(row[6]),
    )


def generated_name() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4()}"


def ephemeral_name() -> str:
    return f"{EPHEMERAL_PREFIX}{uuid.uuid4()}"


async def register(db: Queryable, queue_id: int | None, name: str, now: datetime) -> WorkerInfo:
    """Insert a `ready` worker, or bring back a stopped one of the same name (same id)."""
    params = {"name": name, "queue_id": queue_id, "now": now}
    for _ in range(3):  # a concurrent registration of the same name is resolved by re-reading
        existing = await db.fetchone(db.sql.WORKER_BY_NAME, {"name": name})
        if existing is None:
            try:
                row = await db.fetchone(db.sql.WORKER_INSERT, params)
            except UniqueViolation:
                continue
            assert row is not None
            return worker_info(row)
        current = worker_info(existing)
        if current.status == STOPPED:
            row = await db.fetchone(db.sql.WORKER_REREGISTER, {**params, "id": current.id})
            if row is not None:
                return worker_info(row)
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
    return worker_info(row)


async def status(db: Queryable, worker_id: int) -> WorkerStatus:
    row = await db.fetchone(db.sql.WORKER_STATUS, {"id": worker_id})
    if row is None:
        raise WorkerNotFoundError(f"Worker with id '{worker_id}' not found")
    return WorkerStatus.parse(row[0])


async def transition(
    db: Queryable,
    worker_id: int,
    to: WorkerStatus,
    allowed: Iterable[WorkerStatus],
    reason: str,
    *,
    now: datetime | None = None,
) -> None:
    """Move the worker to `to` if its status is in `allowed`, else `StateTransitionError`.

    With `now`, the heartbeat is refreshed in the same statement; moving to `stopped` also
    sets `shutdown_at` (and needs `now`).
    """
    params: dict[str, Any] = {
        "id": worker_id,
        "to": to.db,
        "allowed": [s.db for s in allowed],
        "now": now,
    }
    if to == STOPPED:
        sql = db.sql.WORKER_STOP
    elif now is not None:
        sql = db.sql.WORKER_SET_STATUS_BEAT
    else:
        sql = db.sql.WORKER_SET_STATUS
    if await db.fetchone(sql, params) is None:
        current = await status(db, worker_id)
        raise StateTransitionError(
            f"Invalid state transition from {current.db} to {to.db}: {reason}"
        )


async def try_transition(
    db: Queryable, worker_id: int, to: WorkerStatus, allowed: Iterable[WorkerStatus], now: datetime
) -> bool:
    """`transition` that answers False instead of raising (for best-effort moves on exit)."""
    try:
        await transition(db, worker_id, to, allowed, "", now=now if to == STOPPED else None)
    except (StateTransitionError, WorkerNotFoundError):
        return False
    return True


NOT_STOPPED = (READY, POLLING, SUSPENDED, INTERRUPTED)


async def mark_stopped(db: Queryable, worker_id: int, now: datetime) -> bool:
    """Any status to `stopped` (ephemeral workers at the end of their call, reclamation)."""
    return await try_transition(db, worker_id, STOPPED, NOT_STOPPED, now)


async def heartbeat(db: Queryable, worker_id: int, now: datetime) -> None:
    if not await db.execute(db.sql.WORKER_HEARTBEAT, {"id": worker_id, "now": now}):
        raise WorkerNotFoundError(f"Worker with id '{worker_id}' not found")


async def held_count(db: Queryable, worker_id: int) -> int:
    return await scalar_int(db, db.sql.WORKER_HELD_COUNT, {"id": worker_id})


async def list_all(db: Queryable) -> list[WorkerInfo]:
    return [worker_info(row) for row in await db.fetch(db.sql.WORKER_LIST)]


async def count(db: Queryable) -> int:
    return await scalar_int(db, db.sql.WORKER_COUNT)
