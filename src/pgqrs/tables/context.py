"""What the queue and workflow code needs of a connected store, and nothing more.

`pgqrs.Store` (the composition root, `pgqrs/client.py`) has these and is what users pass; the
code below it depends on this protocol instead, so no layer imports the one above it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .._clock import Clock
    from ..config import Config
    from ..store.executor import Executor
    from ..store.wakeup import Wakeups
    from .messages import MessageReader


@runtime_checkable
class Context(Protocol):
    db: Executor  # the database
    clock: Clock  # "now" (the database's clock unless a test injected another)
    wakeups: Wakeups  # in-process wake-ups of idle loops and waiting results
    messages: MessageReader  # rows into QueueMessage records

    @property
    def settings(self) -> Config:
        """The store's Config (not to be changed)."""
        ...

    def sql_now(self) -> datetime | None:
        """A statement's `now`: None for the database's clock (see `pgqrs._clock`)."""
        ...
