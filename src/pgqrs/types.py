"""Status enums and the immutable records the API returns (api.md §9, §15)."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from .policy import BackoffStrategy, StepRetryPolicy

__all__ = [
    "BackoffStrategy",
    "DurabilityMode",
    "QueueInfo",
    "QueueMessage",
    "QueueMetrics",
    "RunRecord",
    "StepRecord",
    "StepResultStatus",
    "StepRetryPolicy",
    "SyncState",
    "SystemStats",
    "WorkerHealthStats",
    "WorkerInfo",
    "WorkerStatus",
    "WorkflowRecord",
    "WorkflowStatus",
]


class _NamedEnum(enum.Enum):
    """An enum whose members equal their name in any case and their int value.

    pgqrs's members were unhashable and never equal to strings; code such as
    `await consumer.status() == "SUSPENDED"` is the common case we make work.
    """

    def __eq__(self, other: object) -> bool:
        if isinstance(other, enum.Enum):
            return self is other
        if isinstance(other, str):
            return other.lower() == self.name.lower()
        if isinstance(other, int) and not isinstance(other, bool):
            return bool(other == self.value)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash(self.name.upper())

    def __int__(self) -> int:
        return int(self.value)

    def __str__(self) -> str:
        return self.name.upper()

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    @classmethod
    def parse(cls, text: str) -> Self:
        """The member named `text` in any case (how statuses are stored)."""
        member: Self = _BY_LOWER_NAME[cls][text.lower()]
        return member


class WorkerStatus(_NamedEnum):
    Ready = 0
    Polling = 1
    Suspended = 2
    Interrupted = 3
    Stopped = 4

    @property
    def db(self) -> str:
        """The stored form: a lower-case label."""
        return self.name.lower()


class WorkflowStatus(_NamedEnum):
    Queued = 0
    Running = 1
    Paused = 2
    Cancelling = 3
    Cancelled = 4
    Success = 5
    Error = 6

    @property
    def db(self) -> str:
        """The stored form: an upper-case label."""
        return self.name.upper()

    @property
    def is_terminal(self) -> bool:
        return self in (WorkflowStatus.Success, WorkflowStatus.Error, WorkflowStatus.Cancelled)


class StepResultStatus(_NamedEnum):
    Execute = 0
    Skipped = 1


class DurabilityMode(_NamedEnum):
    Durable = 0
    Local = 1


class SyncState(_NamedEnum):
    LocalMissing = 0
    RemoteMissingClean = 1
    RemoteMissingDirty = 2
    InSync = 3
    LocalChanges = 4
    RemoteChanges = 5
    ConcurrentChanges = 6


_BY_LOWER_NAME: dict[type[enum.Enum], dict[str, Any]] = {
    cls: {m.name.lower(): m for m in cls}
    for cls in (WorkerStatus, WorkflowStatus, StepResultStatus, DurabilityMode, SyncState)
}


class DeferredFields:
    """A record some of whose fields are converted from their stored form on first read.

    A claim builds a batch of messages at once, and most handlers never read their timestamps:
    the builder (store/sql/columns.py, `Column.deferred`) keeps those stored values in
    `_deferred`, a tuple of the readers (`{field: read}`) and then the values (each `read`
    takes the tuple and picks its own), and the first read of such a field converts it and
    stores the result as if the builder had. Equality, hashing, `repr`, `dataclasses.asdict`
    and `replace` read fields by attribute, and pickling and copying go through
    `__getstate__`, so none of them can tell.
    """

    if not TYPE_CHECKING:  # mypy keeps checking attribute names on the records

        def __getattr__(self, name: str) -> Any:
            # Only called for names not in the instance's __dict__: a deferred field not read
            # yet, or no field at all (during unpickling there is not even a `_deferred`).
            state = self.__dict__
            deferred = state.get("_deferred")
            if deferred is not None:
                read = deferred[0].get(name)
                if read is not None:
                    value = state[name] = read(deferred)
                    return value
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:
        """The fields, converted (the deferred readers are functions, which do not pickle)."""
        assert dataclasses.is_dataclass(self)
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


# Not `slots=True`: on Python 3.11 a frozen dataclass with slots raises TypeError instead of
# FrozenInstanceError (an AttributeError) when an unknown attribute is assigned (CPython
# gh-90562), and api.md §9 promises AttributeError for every assignment.
@dataclass(frozen=True)
class QueueMessage(DeferredFields):
    id: int
    queue_id: int
    payload: Any
    raw_payload: Any
    vt: str | None
    enqueued_at: str
    read_ct: int
    dequeued_at: str | None
    producer_worker_id: int | None
    consumer_worker_id: int | None
    archived_at: str | None
    # pgqrs-py addition (api.md §28): the trace context stored with the message at its enqueue
    # (JSON text of W3C headers; None when it was enqueued untraced, or by pgqrs).
    trace_context: str | None = None


@dataclass(frozen=True)
class QueueInfo:
    id: int
    queue_name: str
    created_at: str


@dataclass(frozen=True)
class WorkerInfo:
    id: int
    name: str
    status: WorkerStatus
    queue_id: int | None
    heartbeat_at: str
    started_at: str
    shutdown_at: str | None


@dataclass(frozen=True)
class WorkflowRecord:
    id: int
    name: str
    queue_id: int
    created_at: str


@dataclass(frozen=True)
class RunRecord:
    id: int
    workflow_id: int
    message_id: int
    status: WorkflowStatus
    input: Any
    output: Any
    error: Any
    created_at: str
    updated_at: str
    started_at: str | None
    paused_at: str | None
    completed_at: str | None
    # pgqrs-py additions (semantics.md §18): the run that started this one as a child, and
    # when the run is cancelled if it has not finished.
    parent_run_id: int | None = None
    deadline_at: str | None = None


@dataclass(frozen=True)
class StepRecord:
    id: int
    run_id: int
    step_name: str
    status: WorkflowStatus
    input: Any
    output: Any
    error: Any
    retry_count: int
    retry_at: str | None
    created_at: str
    updated_at: str
    started_at: str | None
    completed_at: str | None


@dataclass(frozen=True)
class QueueMetrics:
    name: str
    total_messages: int
    pending_messages: int
    delayed_messages: int
    locked_messages: int
    poison_messages: int
    archived_messages: int
    oldest_pending_message: str | None
    newest_message: str | None


@dataclass(frozen=True)
class SystemStats:
    total_queues: int
    total_workers: int
    active_workers: int
    total_messages: int
    pending_messages: int
    delayed_messages: int
    locked_messages: int
    poison_messages: int
    archived_messages: int
    schema_version: str


@dataclass(frozen=True)
class WorkerHealthStats:
    queue_name: str
    total_workers: int
    ready_workers: int
    polling_workers: int
    interrupted_workers: int
    suspended_workers: int
    stopped_workers: int
    stale_workers: int
