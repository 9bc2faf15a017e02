"""Records of what this library adds to pgqrs's API: queue settings shared by every process,
and why a message failed (dead letters say why). Frozen, compared by value, like `types`."""

from __future__ import annotations

from dataclasses import dataclass

from .types import QueueMessage

__all__ = ["DeadLetter", "EnqueuedId", "MessageError", "QueueSettings"]


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
