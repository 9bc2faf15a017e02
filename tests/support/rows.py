"""Rows written the way another program (pgqrs's own workers) would write them, for states the
library's API does not produce by itself: a workflow run pointing at a message or a worker."""

from __future__ import annotations

import pgqrs

_WORKFLOW = (
    "INSERT INTO pgqrs_workflows (name, queue_id, created_at) VALUES (:name, :queue_id, :now) "
    "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id"
)
_RUN = (
    "INSERT INTO pgqrs_workflow_runs (workflow_id, message_id, status, created_at, updated_at, "
    "worker_id) VALUES (:workflow_id, :message_id, 'SUCCESS', :now, :now, :worker_id) RETURNING id"
)


def _spell(store: pgqrs.Store, sql: str) -> str:
    """The statement in the driver's parameter style (Postgres connections search the schema)."""
    if store.backend != "postgres":
        return sql
    import re

    return re.sub(r":(\w+)", r"%(\1)s", sql)


async def insert_run(
    store: pgqrs.Store, queue: str, message_id: int, worker_id: int | None = None
) -> int:
    """A finished workflow run triggered by `message_id` (and naming `worker_id`, as pgqrs can)."""
    info = await store.get_queue(queue)
    now = store.clock.now()
    row = await store.db.fetchone(
        _spell(store, _WORKFLOW), {"name": queue, "queue_id": info.id, "now": now}
    )
    assert row is not None
    params = {"workflow_id": row[0], "message_id": message_id, "now": now, "worker_id": worker_id}
    run = await store.db.fetchone(_spell(store, _RUN), params)
    assert run is not None
    return int(run[0])
