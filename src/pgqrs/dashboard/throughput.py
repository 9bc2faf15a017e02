"""Throughput over time without new SQL: the admin metrics sampled at each refresh.

Every refresh of the queues page records each queue's archived and total counts in a bounded
ring buffer held by the app; the difference between two samples over the time between them is
the rate. It works on every backend because it reads only `Admin.all_queues_metrics()`, and it
forgets everything when the app restarts (a dashboard, not a time-series database).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..types import QueueMetrics

MAX_SAMPLES = 300  # ten minutes at one refresh every two seconds
MIN_SPACING = 1.0  # seconds: several open browsers must not fill the buffer faster


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    archived: int  # handled, dead-lettered or cancelled so far (semantics.md §14)
    total: int  # every row, archived included: grows by one per enqueue


@dataclass(frozen=True)
class Rate:
    at: float  # the end of the interval, monotonic seconds
    processed: float  # messages archived per second
    enqueued: float  # messages enqueued per second


class Throughput:
    """Per queue, the last `MAX_SAMPLES` samples; rates between consecutive ones."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_samples: int = MAX_SAMPLES,
        min_spacing: float = MIN_SPACING,
    ) -> None:
        self._clock = clock
        self._max = max_samples
        self._spacing = min_spacing
        self._samples: dict[str, deque[Sample]] = {}

    def record(self, metrics: Iterable[QueueMetrics]) -> None:
        now = self._clock()
        for m in metrics:
            samples = self._samples.setdefault(m.name, deque(maxlen=self._max))
            if samples and now - samples[-1].at < self._spacing:
                continue
            samples.append(Sample(now, m.archived_messages, m.total_messages))

    def rates(self, queue: str) -> list[Rate]:
        samples = list(self._samples.get(queue, ()))
        out = []
        for before, after in itertools.pairwise(samples):
            span = after.at - before.at
            # A purge lowers the counts; it is not negative work.
            out.append(
                Rate(
                    after.at,
                    max(0, after.archived - before.archived) / span,
                    max(0, after.total - before.total) / span,
                )
            )
        return out

    def window(self) -> float:
        """How many seconds the chart spans when the buffer is full."""
        return self._max * max(self._spacing, 2.0)
