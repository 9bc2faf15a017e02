"""The table handles (api.md §10), blocking: `store.get_workers()`, `get_queues()`, ..."""

from __future__ import annotations

import builtins
from typing import Generic, Self, TypeVar

from ..handles import Messages as AsyncMessages
from ..handles import Queues as AsyncQueues
from ..handles import Workers as AsyncWorkers
from ..handles import WorkflowRuns as AsyncWorkflowRuns
from ..handles import Workflows as AsyncWorkflows
from ..handles import WorkflowSteps as AsyncWorkflowSteps
from ..types import (
    QueueInfo,
    QueueMessage,
    QueueMetrics,
    RunRecord,
    StepRecord,
    WorkerHealthStats,
    WorkerInfo,
    WorkflowRecord,
)
from .portal import Delegate, Owner

H = TypeVar(
    "H",
    AsyncWorkers,
    AsyncQueues,
    AsyncMessages,
    AsyncWorkflows,
    AsyncWorkflowRuns,
    AsyncWorkflowSteps,
)


class _Handle(Delegate, Generic[H]):
    __slots__ = ("_handle",)

    _handle: H

    @classmethod
    def _wrap(cls, owner: Owner, handle: H) -> Self:
        wrapper = object.__new__(cls)
        wrapper._owner = owner
        wrapper._handle = handle
        return wrapper

    def __repr__(self) -> str:
        return f"<pgqrs.sync.{type(self).__name__}>"


class Workers(_Handle[AsyncWorkers]):
    __slots__ = ()

    def count(self) -> int:
        return self._call(self._handle.count())

    def list(self) -> list[WorkerInfo]:
        return self._call(self._handle.list())

    def get(self, worker_id: int) -> WorkerInfo:
        return self._call(self._handle.get(worker_id))

    def health_stats(
        self, heartbeat_timeout_seconds: int | None = None, group_by_queue: bool = True
    ) -> builtins.list[WorkerHealthStats]:
        return self._call(self._handle.health_stats(heartbeat_timeout_seconds, group_by_queue))

    def purge_stale(self, timeout_seconds: int) -> int:
        return self._call(self._handle.purge_stale(timeout_seconds))


class Queues(_Handle[AsyncQueues]):
    __slots__ = ()

    def count(self) -> int:
        return self._call(self._handle.count())

    def list(self) -> list[QueueInfo]:
        return self._call(self._handle.list())

    def purge(self, queue_name: str) -> int:
        return self._call(self._handle.purge(queue_name))

    def metrics(self, queue_name: str) -> QueueMetrics:
        return self._call(self._handle.metrics(queue_name))

    def list_metrics(self) -> builtins.list[QueueMetrics]:
        return self._call(self._handle.list_metrics())


class Messages(_Handle[AsyncMessages]):
    __slots__ = ()

    def count(self) -> int:
        return self._call(self._handle.count())

    def get(self, message_id: int) -> QueueMessage:
        return self._call(self._handle.get(message_id))

    def list_archived_by_queue(self, queue_id: int) -> list[QueueMessage]:
        return self._call(self._handle.list_archived_by_queue(queue_id))


class Workflows(_Handle[AsyncWorkflows]):
    __slots__ = ()

    def get_by_name(self, name: str) -> WorkflowRecord:
        return self._call(self._handle.get_by_name(name))

    def list(self) -> list[WorkflowRecord]:
        return self._call(self._handle.list())


class WorkflowRuns(_Handle[AsyncWorkflowRuns]):
    __slots__ = ()

    def list(self) -> list[RunRecord]:
        return self._call(self._handle.list())

    def get(self, run_id: int) -> RunRecord:
        return self._call(self._handle.get(run_id))


class WorkflowSteps(_Handle[AsyncWorkflowSteps]):
    __slots__ = ()

    def list_by_run(self, run_id: int) -> list[StepRecord]:
        return self._call(self._handle.list_by_run(run_id))

    def list(self) -> list[StepRecord]:
        return self._call(self._handle.list())
