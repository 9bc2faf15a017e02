"""Workflow definitions (`pgqrs_workflows`): get-or-create, lookups (semantics.md §12.1)."""

from __future__ import annotations

from datetime import datetime

from ..errors import NotFoundError
from ..store.executor import Queryable
from ..store.sql.columns import WORKFLOW
from ..types import WorkflowRecord
from . import queues


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
    return WORKFLOW.build(row)


async def find_by_name(db: Queryable, name: str) -> WorkflowRecord | None:
    row = await db.fetchone(db.sql.WF_BY_NAME, {"name": name})
    return WORKFLOW.build(row) if row else None


async def get_by_name(db: Queryable, name: str) -> WorkflowRecord:
    record = await find_by_name(db, name)
    if record is None:
        raise NotFoundError(f"Workflow '{name}' not found")
    return record


async def list_all(db: Queryable) -> list[WorkflowRecord]:
    return [WORKFLOW.build(row) for row in await db.fetch(db.sql.WF_LIST)]


async def id_for_queue(db: Queryable, queue_id: int) -> int:
    """The id of the workflow whose name is the queue's name; NotFoundError when none."""
    row = await db.fetchone(db.sql.WF_FOR_QUEUE, {"queue_id": queue_id})
    if row is None or row[1] is None:
        name = row[0] if row else f"#{queue_id}"
        raise NotFoundError(f"No workflow registered for queue '{name}'")
    return int(row[1])
