"""Queue rows: creation, lookup, deletion and purging."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import QueueAlreadyExistsError, QueueNotFoundError, ValidationError
from ..records import QueueSettings
from ..store.executor import Queryable, UniqueViolation, scalar_int
from ..store.sql.columns import QUEUE, SETTINGS
from ..types import QueueInfo

# The payload limits a queue row may hold (semantics.md §7.6); None: each producer's Config.
LIMITS = ("max_payload_size_bytes", "max_string_length", "max_object_depth")


async def create(
    db: Queryable,
    name: str,
    now: datetime | None,
    *,
    exist_ok: bool = False,
    max_read_ct: int | None = None,
    limits: Mapping[str, int | None] | None = None,
) -> QueueInfo:
    """Create a queue; `max_read_ct` is its poison threshold and `limits` its own payload
    limits (names of `LIMITS`, checked), shared by every process."""
    params: dict[str, Any] = {"name": name, "now": now, "max_read_ct": max_read_ct}
    params.update(dict.fromkeys(LIMITS), **(limits or {}))
    if exist_ok:
        row = await db.fetchone(db.sql.QUEUE_INSERT_IF_ABSENT, params)
        return QUEUE.build(row) if row else await get_by_name(db, name)
    try:
        row = await db.fetchone(db.sql.QUEUE_INSERT, params)
    except UniqueViolation as err:
        raise QueueAlreadyExistsError(f"Queue '{name}' already exists") from err
    assert row is not None
    return QUEUE.build(row)


async def settings(db: Queryable, queue_id: int) -> QueueSettings:
    row = await db.fetchone(db.sql.QUEUE_SETTINGS, {"id": queue_id})
    if row is None:
        raise QueueNotFoundError(f"Queue with id '{queue_id}' not found")
    return SETTINGS.build(row)


async def settings_by_name(db: Queryable, name: str) -> QueueSettings:
    row = await db.fetchone(db.sql.QUEUE_SETTINGS_BY_NAME, {"name": name})
    if row is None:
        raise QueueNotFoundError(f"Queue '{name}' not found")
    return SETTINGS.build(row)


async def update_settings(
    db: Queryable, queue_id: int, changes: Mapping[str, int | None]
) -> QueueSettings:
    """Set the settings named in `changes` (`max_read_ct` or a name of `LIMITS`; None: back to
    each process's Config) and keep the others, in one statement."""
    params: dict[str, Any] = {"id": queue_id}
    for name in ("max_read_ct", *LIMITS):
        params[f"set_{name}"] = int(name in changes)
        params[name] = changes.get(name)
    row = await db.fetchone(db.sql.QUEUE_UPDATE_SETTINGS, params)
    if row is None:
        raise QueueNotFoundError(f"Queue with id '{queue_id}' not found")
    return SETTINGS.build(row)


async def max_read_ct(db: Queryable, queue_id: int, default: int) -> int:
    """The poison threshold of a queue: its own, else `default` (Config.max_read_ct)."""
    own = (await settings(db, queue_id)).max_read_ct
    return default if own is None else own


async def find_by_name(db: Queryable, name: str) -> QueueInfo | None:
    row = await db.fetchone(db.sql.QUEUE_BY_NAME, {"name": name})
    return QUEUE.build(row) if row else None


async def get_by_name(db: Queryable, name: str) -> QueueInfo:
    info = await find_by_name(db, name)
    if info is None:
        raise QueueNotFoundError(f"Queue '{name}' not found")
    return info


async def find_by_id(db: Queryable, queue_id: int) -> QueueInfo | None:
    row = await db.fetchone(db.sql.QUEUE_BY_ID, {"id": queue_id})
    return QUEUE.build(row) if row else None


async def list_all(db: Queryable) -> list[QueueInfo]:
    return [QUEUE.build(row) for row in await db.fetch(db.sql.QUEUE_LIST)]


async def count(db: Queryable) -> int:
    return await scalar_int(db, db.sql.QUEUE_COUNT)


async def delete(db: Queryable, name: str) -> None:
    """Delete an empty queue and its stopped workers (semantics.md §14); call inside a
    transaction."""
    info = await get_by_name(db, name)
    params = {"id": info.id}
    if await scalar_int(db, db.sql.QUEUE_HAS_MESSAGES, params):
        raise ValidationError(
            f"Validation failed: Cannot delete queue '{name}': it still has messages. "
            "Purge data first."
        )
    active = await scalar_int(db, db.sql.QUEUE_ACTIVE_WORKERS, params)
    if active:
        raise ValidationError(
            f"Validation failed: Cannot delete queue '{name}': {active} worker(s) are still "
            "assigned to it. Stop them first."
        )
    if await scalar_int(db, db.sql.QUEUE_HAS_WORKFLOW, params):
        raise ValidationError(
            f"Validation failed: Cannot delete queue '{name}': a workflow uses it as its queue."
        )
    await db.execute(db.sql.QUEUE_DELETE_STOPPED_WORKERS, params)
    await db.execute(db.sql.QUEUE_DELETE, params)


async def purge(db: Queryable, name: str) -> int:
    """Delete the queue's messages with their runs and steps, and its stopped workers."""
    info = await get_by_name(db, name)
    params = {"id": info.id}
    await db.execute(db.sql.QUEUE_PURGE_STEPS, params)
    await db.execute(db.sql.QUEUE_PURGE_RUNS, params)
    deleted = await db.execute(db.sql.QUEUE_PURGE_MESSAGES, params)
    await db.execute(db.sql.QUEUE_DELETE_STOPPED_WORKERS, params)
    return deleted


async def is_workflow_queue(db: Queryable, queue_id: int) -> bool:
    return bool(await scalar_int(db, db.sql.QUEUE_IS_WORKFLOW_QUEUE, {"id": queue_id}))
