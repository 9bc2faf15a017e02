"""Records of what this library adds to pgqrs's API: queue settings shared by every process,
and why a message failed (dead letters say why). Frozen, compared by value, like `types`."""

from __future__ import annotations

from dataclasses import dataclass

from .types import QueueMessage

__all__ = ["DeadLetter", "MessageError", "QueueSettings"]


@dataclass(frozen=True)
class QueueSettings:
    """What a queue decides for every process that touches it (stored with the queue)."""

    queue_name: str
    # Deliveries after which an unfinished message is a dead letter (claims stop); queues
    # created before this setting existed, or by pgqrs, use each process's Config.max_read_ct.
    max_read_ct: int | None


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
