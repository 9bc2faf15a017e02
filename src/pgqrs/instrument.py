"""Process-wide hooks the poll loops call where a claim or a settle is decided.

A leaf: the queue and workflow layers call it without importing anything above them, and the
metrics in `pgqrs.observability` register here. With nothing registered a hook point costs
one truth test of `observers` (callers check it before computing anything).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from .types import QueueMessage

log = logging.getLogger("pgqrs")

# What became of handled messages (docs/guides/observability.md, "Metrics").
Outcome = Literal["archived", "retried", "dead_lettered", "failed", "rescheduled"]
ARCHIVED: Outcome = "archived"  # the handler succeeded (or the run is over): archived
RETRIED: Outcome = "retried"  # the handler failed: released with backoff, delivered again
DEAD_LETTERED: Outcome = "dead_lettered"  # the handler failed on the last allowed delivery
FAILED: Outcome = "failed"  # the handler failed for good: a workflow run ended ERROR
RESCHEDULED: Outcome = "rescheduled"  # a workflow run waits: released until its planned time


class Observer(Protocol):
    def claimed(self, queue: str, count: int) -> None:
        """A claim by a poll loop (or a one-shot run) took `count` messages of `queue`."""

    def settled(
        self,
        queue: str,
        outcome: Outcome,
        handler_seconds: float,
        messages: Sequence[QueueMessage],
    ) -> None:
        """A handler call on `messages` of `queue` took `handler_seconds` and ended `outcome`."""


# Replaced, never mutated: a loop iterating it never sees it change under it.
observers: tuple[Observer, ...] = ()


def register(observer: Observer) -> Callable[[], None]:
    """Call `observer` at every hook point of this process; returns what unregisters it."""
    global observers
    if observer not in observers:
        observers = (*observers, observer)

    def unregister() -> None:
        global observers
        observers = tuple(o for o in observers if o is not observer)

    return unregister


# An observer that fails is logged, never raised: watching the work must not stop it.


def claimed(queue: str, count: int) -> None:
    for observer in observers:
        try:
            observer.claimed(queue, count)
        except Exception:
            log.exception("instrumentation observer %r failed", observer)


def settled(
    queue: str, outcome: Outcome, handler_seconds: float, messages: Sequence[QueueMessage]
) -> None:
    for observer in observers:
        try:
            observer.settled(queue, outcome, handler_seconds, messages)
        except Exception:
            log.exception("instrumentation observer %r failed", observer)
