"""Records of what this library adds to pgqrs's API: queue settings shared by every process,
and why a message failed (dead letters say why). Frozen, compared by value, like `types`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .types import QueueMessage, RunRecord, WorkflowStatus

__all__ = [
    "DeadLetter",
    "EnqueuedId",
    "EventInfo",
    "RestartedRun",
    "RunTimeline",
    "SignalInfo",
    "TimelineStep",
    "Event",
    "FiredTick",
    "LimitInfo",
    "MessageError",
    "QueueSettings",
    "ScheduleInfo",
    "Signal",
]


@dataclass(frozen=True)
class QueueSettings:
    """What a queue decides for every process that touches it (stored with the queue)."""

    queue_name: str
    # Deliveries after which an unfinished message is a dead letter (claims stop); queues
    # created before this setting existed, or by pgqrs, use each process's Config.max_read_ct.
    max_read_ct: int | None
    # The queue's own payload limits (semantics.md §7.6); None: each producer's Config value.
    max_payload_size_bytes: int | None = None
    max_string_length: int | None = None
    max_object_depth: int | None = None


@dataclass(frozen=True)
class LimitInfo:
    """One concurrency and rate limit of a queue (`key` None) or of one of its keys, and its
    use at the time it was read (semantics.md §7.10)."""

    queue_name: str
    key: str | None  # None: the queue as a whole
    max_in_flight: int | None  # leases running at once; None: no concurrency limit
    rate_per_second: float | None  # claims per second; None: no rate limit
    burst: int | None  # the bucket's size: claims allowed at once after a quiet spell
    in_flight: int  # leases running now
    tokens: float | None  # claims the bucket allows now (None: no rate limit)

    @property
    def seconds_to_next_token(self) -> float | None:
        """How long until the bucket allows a claim (0 now; None without a rate limit)."""
        if self.rate_per_second is None or self.tokens is None:
            return None
        return max(0.0, (1.0 - self.tokens) / self.rate_per_second)


# -- runs as an operator sees them (semantics.md §19) ---------------------------------------


@dataclass(frozen=True)
class TimelineStep:
    """One step of a run's timeline (semantics.md §19.2), in the order the steps started."""

    id: int
    step_name: str
    status: WorkflowStatus  # RUNNING, SUCCESS or ERROR
    attempts: int  # executions started so far (a retry that is only scheduled is not one)
    output: Any  # the stored result (SUCCESS)
    last_error: Any  # the stored error of the last failure (cleared when the step runs again)
    retry_at: str | None  # when a failed step may run again (None: no retry planned)
    started_at: str | None  # the start of the last attempt
    completed_at: str | None  # when it succeeded
    duration_seconds: float | None  # the last attempt, until it succeeded or failed


@dataclass(frozen=True)
class SignalInfo:
    """A signal sent to a run, consumed or not (semantics.md §19.2)."""

    id: int
    topic: str
    payload: Any
    sent_at: str
    consumed_at: str | None
    consumed_by: str | None  # the step that received it


@dataclass(frozen=True)
class EventInfo:
    """An event a run published: the latest value of its key (semantics.md §19.2)."""

    key: str
    value: Any
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class RunTimeline:
    """What a dashboard shows of one run (semantics.md §19.2): the run, its workflow's name,
    its steps in the order they started, its signals, its events and the runs it started."""

    run: RunRecord
    workflow: str
    steps: tuple[TimelineStep, ...]
    signals: tuple[SignalInfo, ...]
    events: tuple[EventInfo, ...]
    children: tuple[RunRecord, ...]


@dataclass(frozen=True)
class RestartedRun:
    """What `Admin.restart_run` did (semantics.md §19.1): the run, QUEUED again; the step it
    runs again from (None: it had no step to remove); the steps kept and removed, by name in
    the order they started; how many signals the removed steps had received, delivered again."""

    run: RunRecord
    from_step: str | None
    kept_steps: tuple[str, ...]
    removed_steps: tuple[str, ...]
    redelivered_signals: int


@dataclass(frozen=True)
class MessageError:
    """The last failure of a message's handler, bounded in size."""

    message_id: int
    attempt: int  # the delivery (read count) that failed
    error_type: str  # the exception's qualified class name
    error_message: str
    traceback: str | None
    failed_at: str


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter and why it died (None: it failed without its handler saying, e.g. its
    worker crashed on every delivery)."""

    message: QueueMessage
    last_error: MessageError | None


class EnqueuedId(int):
    """The id of an enqueued message, and whether the enqueue found it already there.

    An `int` in every way (equality, hashing, arithmetic, `repr`, JSON), so code written for
    `enqueue() -> int` keeps working; `duplicate` is True when a deduplication key matched an
    existing message, whose id this is (semantics.md §7.8). Read-only, like the records.
    """

    def __new__(cls, value: int, duplicate: bool = False) -> EnqueuedId:
        made = super().__new__(cls, value)
        object.__setattr__(made, "_duplicate", bool(duplicate))
        return made

    @property
    def duplicate(self) -> bool:
        """True when the key matched an existing message (nothing was written)."""
        return self._duplicate  # type: ignore[no-any-return, attr-defined]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type[EnqueuedId], tuple[int, bool]]:
        return (EnqueuedId, (int(self), self.duplicate))


@dataclass(frozen=True)
class ScheduleInfo:
    """A cron schedule (semantics.md §17): what it enqueues, when, and when it fired last.

    Its target is `queue` with `payload`, or a trigger of `workflow` with `input`; the other
    pair is None. Times are RFC 3339 UTC strings, like every time of the API.
    """

    name: str
    cron: str  # 5 fields, or 6 with the seconds first
    timezone: str  # the IANA time zone the expression is read in
    queue: str | None
    payload: Any
    workflow: str | None
    input: Any
    catch_up: int  # missed ticks to enqueue after an outage (0: skip them)
    paused: bool
    next_fire_at: str
    last_fire_at: str | None
    created_at: str


@dataclass(frozen=True)
class FiredTick:
    """A tick a scheduler enqueued: the schedule, the tick (RFC 3339 UTC), the message."""

    schedule: str
    tick: str
    message_id: int


@dataclass(frozen=True)
class Signal:
    """A message sent to a workflow run, as `run.recv()` received it (semantics.md §18.1)."""

    id: int
    topic: str
    payload: Any
    sent_at: str


@dataclass(frozen=True)
class Event:
    """The latest value a workflow run published under `key` (semantics.md §18.2)."""

    key: str
    value: Any
    updated_at: str
