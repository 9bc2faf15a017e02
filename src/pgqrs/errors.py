"""The exception tree. Every error the library raises derives from `PgqrsError`.

Each class can be built from a message alone (`Cls("text")` or `Cls()`) and accepts its
documented attributes as keywords, so user code may raise them too (api.md §16).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "InternalError",
    "MessageLeasedError",
    "MessageNotFoundError",
    "NotFoundError",
    "PausedError",
    "PgqrsConnectionError",
    "PgqrsError",
    "QueueAlreadyExistsError",
    "QueueNotFoundError",
    "RateLimitedError",
    "RetriesExhaustedError",
    "RunWaitingError",
    "SerializationError",
    "StateTransitionError",
    "StepNotReadyError",
    "SuspendedError",
    "TimeoutError",
    "TransientStepError",
    "ValidationError",
    "WorkerNotFoundError",
    "WorkflowCancelledError",
    "WorkflowFailedError",
    "WorkflowTimeoutError",
]


class PgqrsError(Exception):
    """Base of every pgqrs exception."""

    def __init__(self, message: str = "", **attrs: Any) -> None:
        super().__init__(message)
        for key, value in attrs.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PgqrsConnectionError(PgqrsError):
    """The database could not be reached, or a query failed.

    `transient` says whether the same call may succeed later unchanged (a lost connection, a
    restart, a lock, a full disk); a query the database refuses as such is not.
    """

    transient = True


def is_transient(err: BaseException) -> bool:
    """A failure of the database or the network, not of the work: it says nothing about what
    was being done, so it is never recorded as the outcome of a step or a run."""
    if isinstance(err, TimeoutError):
        return True
    return isinstance(err, PgqrsConnectionError) and bool(err.transient)


class NotFoundError(PgqrsError):
    """A looked-up row or object does not exist."""


class QueueNotFoundError(NotFoundError):
    pass


class WorkerNotFoundError(NotFoundError):
    pass


class MessageNotFoundError(NotFoundError):
    pass


class QueueAlreadyExistsError(PgqrsError):
    pass


class SerializationError(PgqrsError, TypeError, ValueError):
    """A value cannot be encoded as JSON; stays catchable as the builtins pgqrs raised."""


class ConfigError(PgqrsError):
    pass


class RateLimitedError(PgqrsError):
    retry_after: float | None = None


class ValidationError(PgqrsError):
    pass


class TimeoutError(PgqrsError):
    pass


class InternalError(PgqrsError):
    pass


class StateTransitionError(PgqrsError):
    pass


class MessageLeasedError(StateTransitionError):
    """A message under a running lease cannot be cancelled (semantics.md §7.9): its handler
    may be running. `message_id`, the `worker_id` holding it and when the lease ends."""

    message_id: int | None = None
    worker_id: int | None = None
    lease_ends: str | None = None


class TransientStepError(PgqrsError):
    code: str = "TRANSIENT_ERROR"
    retry_after: float | None = None
    retry_at: str | None = None


class RetriesExhaustedError(PgqrsError):
    attempts: int | None = None


class StepNotReadyError(PgqrsError):
    retry_at: str | None = None


class PausedError(PgqrsError):
    resume_after: float | None = None


class RunWaitingError(PausedError):
    """A run waits durably (semantics.md §18): for a signal, or for child runs. The worker
    gives its trigger message back until `until` (None: until woken) and runs it again when
    what it waits for arrives. `waiting_for` says what that is (`signal:<topic>`,
    `children:<ids>`)."""

    run_id: int | None = None
    until: str | None = None
    waiting_for: str | None = None


class WorkflowTimeoutError(TransientStepError):
    """A step ran longer than its `timeout` (semantics.md §18.5); recorded as a transient
    failure, so the step's retry policy decides whether it runs again."""

    code: str = "STEP_TIMEOUT"


class SuspendedError(PgqrsError):
    reason: str | None = None


class WorkflowCancelledError(PgqrsError):
    run_id: int | None = None
    # Why, when the library cancelled the run itself (its deadline passed; semantics.md §18.5).
    reason: Any = None


class WorkflowFailedError(PgqrsError):
    run_id: int | None = None
    error: Any = None
