"""The blocking API (api.md §21, beyond pgqrs): `pgqrs.sync.connect(dsn)` gives a store whose
methods block and return results, for Django, Flask, scripts and any thread.

Nothing is written twice. Each sync store owns a *portal* (`portal.py`): one daemon thread
running a private event loop, on which the async store lives. Every method submits the
library's own coroutine to that loop and blocks the calling thread until it ends; returned
library objects (producers, consumers, runs, admin, table handles) are wrapped so their methods
block too, records come back as they are and exceptions surface unchanged. Why a portal and
not a loop per thread: docs/decisions.md, "Features (issue 12)".
"""

from .handles import Messages, Queues, Workers, WorkflowRuns, Workflows, WorkflowSteps
from .helpers import (
    archive,
    archive_batch,
    delete,
    dequeue,
    enqueue,
    enqueue_batch,
    enqueue_delayed,
    extend_vt,
    get_event,
    produce,
    produce_batch,
    send_signal,
)
from .options import BatchEnqueueOptions, EnqueueOptions, MessageId, QueueChanges, QueueOptions
from .portal import EXIT_GRACE_SECONDS as EXIT_GRACE_SECONDS
from .runs import Run
from .store import Admin, Store, admin, connect, connect_with
from .workers import Consumer, Producer, WorkerHandle
from .workflows import RunBuilder, WorkflowBuilder, WorkflowTriggerBuilder, run, workflow

__all__ = [
    "Admin",
    "Consumer",
    "BatchEnqueueOptions",
    "EnqueueOptions",
    "MessageId",
    "Messages",
    "Producer",
    "QueueChanges",
    "QueueOptions",
    "Queues",
    "Run",
    "RunBuilder",
    "Store",
    "WorkerHandle",
    "Workers",
    "WorkflowBuilder",
    "WorkflowRuns",
    "WorkflowSteps",
    "WorkflowTriggerBuilder",
    "Workflows",
    "admin",
    "archive",
    "archive_batch",
    "connect",
    "connect_with",
    "delete",
    "dequeue",
    "enqueue",
    "enqueue_batch",
    "enqueue_delayed",
    "extend_vt",
    "get_event",
    "produce",
    "send_signal",
    "produce_batch",
    "run",
    "workflow",
]
