"""The methods of `pgqrs.sync.Admin` (api.md §4, blocking). The class users get is
`store.Admin`, which adds what ties it to the sync Store (its constructor and `store`): the
Store makes admins and an admin names its Store, so they share a module, and this one, the
bulk of the delegates, needs no import of it."""

from __future__ import annotations

from typing import Any, Unpack

from .._clock import Time
from ..admin import Admin as AsyncAdmin
from ..admin import RunStatuses
from ..records import (
    DeadLetter,
    LimitInfo,
    MessageError,
    QueueSettings,
    RestartedRun,
    RunTimeline,
    ScheduleInfo,
)
from ..types import (
    QueueInfo,
    QueueMessage,
    QueueMetrics,
    RunRecord,
    SystemStats,
    WorkerHealthStats,
    WorkerInfo,
)
from ..validation.runs import WorkflowNames
from .options import LimitOptions, QueueChanges, QueueOptions
from .portal import Delegate
from .runs import Run


class AdminCalls(Delegate):
    """Every method of `pgqrs.Admin`, each the async one run on the store's portal."""

    __slots__ = ("_admin",)

    _admin: AsyncAdmin

    def install(self) -> None:
        self._call(self._admin.install())

    def verify(self) -> None:
        self._call(self._admin.verify())

    def create_queue(
        self, name: str, exist_ok: bool = False, **options: Unpack[QueueOptions]
    ) -> QueueInfo:
        return self._call(self._admin.create_queue(name, exist_ok, **options))

    def queue_settings(self, name: str) -> QueueSettings:
        return self._call(self._admin.queue_settings(name))

    def update_queue(self, name: str, **changes: Unpack[QueueChanges]) -> QueueSettings:
        return self._call(self._admin.update_queue(name, **changes))

    def set_queue_limits(self, queue: str, **limits: Unpack[LimitOptions]) -> list[LimitInfo]:
        return self._call(self._admin.set_queue_limits(queue, **limits))

    def set_key_limits(
        self, queue: str, key: str, **limits: Unpack[LimitOptions]
    ) -> list[LimitInfo]:
        return self._call(self._admin.set_key_limits(queue, key, **limits))

    def queue_limits(self, queue: str) -> list[LimitInfo]:
        return self._call(self._admin.queue_limits(queue))

    def get_queue(self, name: str) -> QueueInfo:
        return self._call(self._admin.get_queue(name))

    def delete_queue(self, name: str) -> bool:
        return self._call(self._admin.delete_queue(name))

    def purge_queue(self, name: str) -> int:
        return self._call(self._admin.purge_queue(name))

    def release_worker_messages(self, worker_id: int) -> int:
        return self._call(self._admin.release_worker_messages(worker_id))

    def create_workflow(self, name: str, arg: Any = None) -> Run:
        return Run._wrap(self._owner, self._call(self._admin.create_workflow(name, arg)))

    def list_workers(self) -> list[WorkerInfo]:
        return self._call(self._admin.list_workers())

    def queue_metrics(self, name: str) -> QueueMetrics:
        return self._call(self._admin.queue_metrics(name))

    def all_queues_metrics(self) -> list[QueueMetrics]:
        return self._call(self._admin.all_queues_metrics())

    def system_stats(self) -> SystemStats:
        return self._call(self._admin.system_stats())

    def worker_health_stats(
        self, heartbeat_timeout_seconds: int, group_by_queue: bool = False
    ) -> list[WorkerHealthStats]:
        return self._call(
            self._admin.worker_health_stats(heartbeat_timeout_seconds, group_by_queue)
        )

    def reclaim_messages(
        self,
        queue: str | None = None,
        older_than_seconds: int | None = None,
        *,
        force: bool = False,
    ) -> int:
        return self._call(self._admin.reclaim_messages(queue, older_than_seconds, force=force))

    def dlq(self, queue: str | None = None) -> list[int]:
        return self._call(self._admin.dlq(queue))

    def dlq_list(self, queue: str | None = None) -> list[QueueMessage]:
        return self._call(self._admin.dlq_list(queue))

    def dead_letters(self, queue: str | None = None) -> list[DeadLetter]:
        return self._call(self._admin.dead_letters(queue))

    def last_error(self, message_id: int) -> MessageError | None:
        return self._call(self._admin.last_error(message_id))

    def archive_dead_letter(self, message_id: int) -> bool:
        return self._call(self._admin.archive_dead_letter(message_id))

    def replay_dlq(self, message_id: int) -> QueueMessage:
        return self._call(self._admin.replay_dlq(message_id))

    def cancel_message(self, queue: str, message_id: int) -> bool:
        return self._call(self._admin.cancel_message(queue, message_id))

    def cancel_message_key(self, queue: str, dedup_key: str) -> bool:
        return self._call(self._admin.cancel_message_key(queue, dedup_key))

    def delete_worker(self, worker_id: int) -> bool:
        return self._call(self._admin.delete_worker(worker_id))

    def purge_old_workers(self, older_than_seconds: int) -> int:
        return self._call(self._admin.purge_old_workers(older_than_seconds))

    def get_worker_messages(self, worker_id: int) -> list[QueueMessage]:
        return self._call(self._admin.get_worker_messages(worker_id))

    def purge_archived(self, queue: str | None = None, *, older_than_seconds: float) -> int:
        return self._call(self._admin.purge_archived(queue, older_than_seconds=older_than_seconds))

    # -- schedules (issue 13) ----------------------------------------------------------------
    def create_schedule(
        self,
        name: str,
        cron: str,
        *,
        queue: str | None = None,
        payload: Any = None,
        workflow: str | None = None,
        input: Any = None,
        timezone: str = "UTC",
        catch_up: int = 0,
    ) -> ScheduleInfo:
        return self._call(
            self._admin.create_schedule(
                name,
                cron,
                queue=queue,
                payload=payload,
                workflow=workflow,
                input=input,
                timezone=timezone,
                catch_up=catch_up,
            )
        )

    def list_schedules(self) -> list[ScheduleInfo]:
        return self._call(self._admin.list_schedules())

    def get_schedule(self, name: str) -> ScheduleInfo:
        return self._call(self._admin.get_schedule(name))

    def pause_schedule(self, name: str) -> ScheduleInfo:
        return self._call(self._admin.pause_schedule(name))

    def resume_schedule(self, name: str) -> ScheduleInfo:
        return self._call(self._admin.resume_schedule(name))

    def delete_schedule(self, name: str) -> bool:
        return self._call(self._admin.delete_schedule(name))

    # -- workflow runs: restart and introspection (issue 14) ---------------------------------
    def restart_run(self, run_id: int, from_step: str | None = None) -> RestartedRun:
        return self._call(self._admin.restart_run(run_id, from_step))

    def list_runs(
        self,
        workflow: WorkflowNames = None,
        *,
        status: RunStatuses = None,
        since: Time | None = None,
        until: Time | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        return self._call(
            self._admin.list_runs(workflow, status=status, since=since, until=until, limit=limit)
        )

    def run_timeline(self, run_id: int) -> RunTimeline:
        return self._call(self._admin.run_timeline(run_id))
