"""What operators and dashboards read of workflow runs (semantics.md §19.2): runs by filter,
and one run's timeline. Each part is read as it is when its statement runs; nothing locks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..records import RunTimeline
from ..store.executor import Queryable
from ..store.sql.columns import RUN
from ..store.sql.introspection import EVENT_INFO, SIGNAL_INFO, TIMELINE_STEP
from ..types import RunRecord
from .runs import not_found

# The position of the workflow's name in a row of TIMELINE_RUN, after the run's own columns.
_WORKFLOW_NAME = len(RUN.names)


async def list_runs(
    db: Queryable,
    *,
    workflow_ids: Sequence[int] | None,
    statuses: Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[RunRecord]:
    """Runs newest first, at most `limit`: of these workflows, in these statuses (stored
    labels; None: any), created at or after `since` and before `until` (None: no bound)."""
    params = {
        "any_workflow": workflow_ids is None,
        "workflow_ids": list(workflow_ids or ()),
        "any_status": statuses is None,
        "statuses": list(statuses or ()),
        "since": since,
        "until": until,
        "limit": limit,
    }
    return [RUN.build(row) for row in await db.fetch(db.sql.RUN_LIST_CREATED, params)]


async def timeline(db: Queryable, run_id: int) -> RunTimeline:
    """The run, then its steps, signals, events and children; NotFoundError for no such run."""
    row = await db.fetchone(db.sql.TIMELINE_RUN, {"id": run_id})
    if row is None:
        raise not_found(run_id)
    of_run = {"run_id": run_id}
    return RunTimeline(
        run=RUN.build(row),
        workflow=str(row[_WORKFLOW_NAME]),
        steps=tuple(map(TIMELINE_STEP.build, await db.fetch(db.sql.TIMELINE_STEPS, of_run))),
        signals=tuple(map(SIGNAL_INFO.build, await db.fetch(db.sql.TIMELINE_SIGNALS, of_run))),
        events=tuple(map(EVENT_INFO.build, await db.fetch(db.sql.TIMELINE_EVENTS, of_run))),
        children=tuple(map(RUN.build, await db.fetch(db.sql.TIMELINE_CHILDREN, of_run))),
    )
