"""Workflow definitions (`pgqrs_workflows`): get-or-create, lookups (semantics §12.1)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .._clock import db_to_api
from ..errors import NotFoundError
from ..store.executor import Queryable
from ..types import WorkflowRecord
from . import queues


def workflow_record(row: Sequence[Any]) -> WorkflowRecord:
    return WorkflowRecord(
        id=int(row[0]), name=row[1], queue_id=int(row[2]), created_at=db_to_api(row[3]) or ""
    )


async def get_or_create(
    db: Queryable, name: str, now: datetime, max_read_ct: int | None = None
) -> WorkflowRecord:
    """The definition named `name` and its queue, created when missing; call in a transaction.

    An existing ordinary queue of that name becomes the workflow's queue. Concurrent callers
    get the same record: inserts that lose a race do nothing and the row is read back.
    """
    queue = await queues.create(db, name, now, exist_ok=True, max_read_ct=max_read_ct)
    params = {"name": name, "queue_id": queue.id, "now": now}
    row = await db.fetchone(db.sql.WF_INSERT_IF_ABSENT, params)
    if row is None:
        row = await db.fetchone(db.sql.WF_BY_NAME, {"name": name})
    assert row is not None
    return workflow_record(row)


async def find_by_name(db: Queryable, name: str) -> WorkflowRecord | None:
    row = await db.fetchone(db.sql.WF_BY_NAME, {"name": name})
    return workflow_record(row) if row else None


async def get_by_name(db: Queryable, name: str) -> WorkflowRecord:
    record = await find_by_name(db, name)
    if record is None:
        raise NotFoundError(f"Workflow '{name}' not found")
    return record


async def list_all(db: Queryable) -> list[WorkflowRecord]:
    return [workflow_record(row) for row in await db.fetch(db.sql.WF_LIST)]


async def id_for_queue(db: Queryable, queue_id: int) -> int:
    """The id of the workflow whose name is the queue's name; NotFoundError when none."""
    row = await db.fetchone(db.sql.WF_FOR_QUEUE, {"queue_id": queue_id})
    if row is None or row[1] is None:
        name = row[0] if row else f"#{queue_id}"
        raise NotFoundError(f"No workflow registered for queue '{name}'")
    return int(row[1])
