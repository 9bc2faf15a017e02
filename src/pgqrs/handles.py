"""The table handles of `store.get_workers()`, `get_queues()`, `get_messages()`,
`get_workflows()`, `get_workflow_runs()` and `get_workflow_steps()` (api.md §10).

A handle holds no data: every call reads live rows.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from ._clock import seconds
from .queue.recovery import reclaim_stale, stale_after
from .tables import cleanup, messages, metrics, queues, runs, steps, workers, workflows
from .types import (
    QueueInfo,
    QueueMessage,
    QueueMetrics,
    RunRecord,
    StepRecord,
    WorkerHealthStats,
    WorkerInfo,
    WorkflowRecord,
)
from .validation import require_duration, validate_queue_name

if TYPE_CHECKING:
    from .tables.context import Context


class _Handle:
    def __init__(self, store: Context) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"<pgqrs.{type(self).__name__}>"


class Workers(_Handle):
    async def count(self) -> int:
        return await workers.count(self._store.db)

    async def list(self) -> list[WorkerInfo]:
        """Newest `started_at` first, ties by id descending."""
        return await workers.list_all(self._store.db)

    async def get(self, worker_id: int) -> WorkerInfo:
        return await workers.get(self._store.db, worker_id)

    async def health_stats(
        self, heartbeat_timeout_seconds: int | None = None, group_by_queue: bool = True
    ) -> builtins.list[WorkerHealthStats]:
        """Per-status counts; the timeout defaults to three heartbeat intervals."""
        timeout = stale_after(self._store, heartbeat_timeout_seconds, "heartbeat_timeout_seconds")
        cutoff = self._store.clock.now() - seconds(timeout)
        return await metrics.worker_health(self._store.db, cutoff, group_by_queue=group_by_queue)

    async def purge_stale(self, timeout_seconds: int) -> int:
        """Reclaim workers silent for `timeout_seconds` (all queues), then delete old stopped
        workers nothing references; the number of workers stopped."""
        timeout = require_duration("timeout_seconds", timeout_seconds)
        stopped = (await reclaim_stale(self._store, timeout)).workers
        await cleanup.purge_old_workers(self._store.db, self._store.clock.now() - seconds(timeout))
        return stopped


class Queues(_Handle):
    async def count(self) -> int:
        return await queues.count(self._store.db)

    async def list(self) -> list[QueueInfo]:
        return await queues.list_all(self._store.db)

    async def purge(self, queue_name: str) -> int:
        validate_queue_name(queue_name)
        async with self._store.db.transaction() as db:
            return await queues.purge(db, queue_name)

    async def metrics(self, queue_name: str) -> QueueMetrics:
        validate_queue_name(queue_name)
        store = self._store
        return await metrics.queue_metrics(
            store.db, queue_name, store.sql_now(), store.settings.max_read_ct
        )

    async def list_metrics(self) -> builtins.list[QueueMetrics]:
        """Every queue, by name."""
        store = self._store
        return await metrics.all_queue_metrics(
            store.db, store.sql_now(), store.settings.max_read_ct
        )


class Messages(_Handle):
    async def count(self) -> int:
        """Unarchived messages of every queue."""
        return await messages.count(self._store.db)

    async def get(self, message_id: int) -> QueueMessage:
        db = self._store.db
        return (await self._store.messages.read(db, [await messages.get_row(db, message_id)]))[0]

    async def list_archived_by_queue(self, queue_id: int) -> list[QueueMessage]:
        db = self._store.db
        return await self._store.messages.read(db, await messages.archived_rows(db, queue_id))


class Workflows(_Handle):
    async def get_by_name(self, name: str) -> WorkflowRecord:
        validate_queue_name(name, "workflow")
        return await workflows.get_by_name(self._store.db, name)

    async def list(self) -> list[WorkflowRecord]:
        """By id."""
        return await workflows.list_all(self._store.db)


class WorkflowRuns(_Handle):
    async def list(self) -> list[RunRecord]:
        """Newest `created_at` first, ties by id descending."""
        return await runs.list_all(self._store.db)

    async def get(self, run_id: int) -> RunRecord:
        return await runs.get(self._store.db, run_id)


class WorkflowSteps(_Handle):
    # Defined before `list`, whose name would otherwise shadow the builtin in the annotation.
    async def list_by_run(self, run_id: int) -> list[StepRecord]:
        """By id."""
        return await steps.list_by_run(self._store.db, run_id)

    async def list(self) -> list[StepRecord]:
        """Newest `created_at` first, ties by id descending."""
        return await steps.list_all(self._store.db)
