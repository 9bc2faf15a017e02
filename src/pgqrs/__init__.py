"""pgqrs: durable queues and workflows for asyncio, on SQLite, PostgreSQL, Turso and S3.

API-compatible with the Python bindings of pgqrs (the Rust library) 0.15.x.
"""

from typing import TYPE_CHECKING

from . import _install  # noqa: F401  (first: refuses to run beside the Rust wheel `pgqrs`)
from . import decorators as decorators  # the submodule: pgqrs.decorators.workflow / step
from ._version import __version__
from .admin import Admin, admin
from .client import Store, connect, connect_with
from .config import Config
from .errors import (
    ConfigError,
    InternalError,
    MessageLeasedError,
    MessageNotFoundError,
    NotFoundError,
    PausedError,
    PgqrsConnectionError,
    PgqrsError,
    QueueAlreadyExistsError,
    QueueNotFoundError,
    RateLimitedError,
    RetriesExhaustedError,
    RunWaitingError,
    SerializationError,
    StateTransitionError,
    StepNotReadyError,
    SuspendedError,
    TimeoutError,
    TransientStepError,
    ValidationError,
    WorkerNotFoundError,
    WorkflowCancelledError,
    WorkflowFailedError,
    WorkflowTimeoutError,
)
from .handles import Messages, Queues, Workers, WorkflowRuns, Workflows, WorkflowSteps
from .queue.iterator import ConsumerIterator
from .queue.run_worker import catch_signals_early, run_worker, run_workers
from .queue.workers import Consumer, Producer, WorkerHandle
from .records import (
    DeadLetter,
    EnqueuedId,
    Event,
    EventInfo,
    FiredTick,
    MessageError,
    QueueSettings,
    RestartedRun,
    RunTimeline,
    ScheduleInfo,
    Signal,
    SignalInfo,
    TimelineStep,
)
from .scheduler import Scheduler
from .shortcuts import (
    archive,
    archive_batch,
    consume,
    consume_batch,
    delete,
    dequeue,
    dequeue_builder,
    enqueue,
    enqueue_batch,
    enqueue_delayed,
    extend_vt,
    get_event,
    produce,
    produce_batch,
    send_signal,
)
from .store.s3 import S3StoreHandle, as_s3
from .types import (
    BackoffStrategy,
    DurabilityMode,
    QueueInfo,
    QueueMessage,
    QueueMetrics,
    RunRecord,
    StepRecord,
    StepResultStatus,
    StepRetryPolicy,
    SyncState,
    SystemStats,
    WorkerHealthStats,
    WorkerInfo,
    WorkerStatus,
    WorkflowRecord,
    WorkflowStatus,
)
from .workflows.builders import (
    RunBuilder,
    StepBuilder,
    WorkflowBuilder,
    WorkflowTriggerBuilder,
    run,
    step,
    workflow,
)
from .workflows.children import ChildRun
from .workflows.decorators import WorkflowDef
from .workflows.dequeue import DequeueBuilder
from .workflows.run import Run
from .workflows.steps import StepGuard, StepResult

if TYPE_CHECKING:
    from . import sync as sync  # the blocking API (api.md §21)
else:

    def __getattr__(name: str) -> object:
        # `pgqrs.sync` imported on first use: `import pgqrs` stays as fast for async code.
        if name == "sync":
            import importlib

            return importlib.import_module(".sync", __name__)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Admin",
    "BackoffStrategy",
    "Config",
    "ConfigError",
    "Consumer",
    "ConsumerIterator",
    "DequeueBuilder",
    "DurabilityMode",
    "InternalError",
    "MessageLeasedError",
    "MessageNotFoundError",
    "Messages",
    "NotFoundError",
    "PausedError",
    "PgqrsConnectionError",
    "PgqrsError",
    "Producer",
    "QueueAlreadyExistsError",
    "QueueInfo",
    "QueueMessage",
    "QueueMetrics",
    "QueueNotFoundError",
    "Queues",
    "RateLimitedError",
    "RetriesExhaustedError",
    "Run",
    "RunBuilder",
    "RunRecord",
    "S3StoreHandle",
    "SerializationError",
    "StateTransitionError",
    "StepBuilder",
    "StepGuard",
    "StepNotReadyError",
    "StepRecord",
    "StepResult",
    "StepResultStatus",
    "StepRetryPolicy",
    "Store",
    "SuspendedError",
    "SyncState",
    "SystemStats",
    "TimeoutError",
    "TransientStepError",
    "ValidationError",
    "WorkerHandle",
    "WorkerHealthStats",
    "WorkerInfo",
    "WorkerNotFoundError",
    "WorkerStatus",
    "Workers",
    "WorkflowBuilder",
    "WorkflowCancelledError",
    "WorkflowDef",
    "WorkflowFailedError",
    "WorkflowRecord",
    "WorkflowRuns",
    "WorkflowStatus",
    "WorkflowSteps",
    "WorkflowTriggerBuilder",
    "Workflows",
    "__version__",
    "admin",
    "archive",
    "archive_batch",
    "as_s3",
    "connect",
    "connect_with",
    "consume",
    "consume_batch",
    "delete",
    "dequeue",
    "dequeue_builder",
    "enqueue",
    "enqueue_batch",
    "enqueue_delayed",
    "extend_vt",
    "produce",
    "produce_batch",
    "run",
    "step",
    "workflow",
    "catch_signals_early",
    "DeadLetter",
    "EnqueuedId",
    "MessageError",
    "QueueSettings",
    "run_worker",
    "run_workers",
    "FiredTick",
    "ScheduleInfo",
    "Scheduler",
    # runs that wait and talk (api.md §24)
    "ChildRun",
    "Event",
    "RunWaitingError",
    "Signal",
    "WorkflowTimeoutError",
    "get_event",
    "send_signal",
    # restarting and inspecting runs (api.md §25)
    "EventInfo",
    "RestartedRun",
    "RunTimeline",
    "SignalInfo",
    "TimelineStep",
]
