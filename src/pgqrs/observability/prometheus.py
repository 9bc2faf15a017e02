"""Prometheus metrics: the queues' state read from the database, and this process's work.

`scrape(store)` renders both in the text exposition format (the dashboard serves it at
`/metrics`); `serve(store, port)` is the endpoint of a worker process (`pgqrs run
--metrics-port`). The metric names and labels are listed in docs/guides/observability.md.

Database gauges are read at scrape time into a fresh registry, so a deleted queue's series
disappear with it. The process's counters and histograms live in one module-level registry,
fed by the hooks of `pgqrs.instrument`; importing this module registers them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from .. import instrument
from .._clock import parse_time
from ..admin import admin
from ..client import Store
from ..types import QueueMessage, QueueMetrics, WorkerHealthStats

log = logging.getLogger("pgqrs")

# The classic text format, which every Prometheus reads (newer prometheus_client releases
# announce 1.0.0, which differs only for names outside [a-zA-Z0-9_:]; ours are inside).
CONTENT_TYPE: str = "text/plain; version=0.0.4; charset=utf-8"

# -- this process: counters and histograms fed by the instrumentation hooks ------------------
PROCESS = CollectorRegistry(auto_describe=True)
CLAIMED = Counter(
    "pgqrs_messages_claimed",
    "Messages claimed by this process's poll loops.",
    ["queue"],
    registry=PROCESS,
)
HANDLED = Counter(
    "pgqrs_messages_handled",
    "Messages whose handler call ended, by what became of them.",
    ["queue", "outcome"],
    registry=PROCESS,
)
HANDLER_SECONDS = Histogram(
    "pgqrs_handler_duration_seconds",
    "Duration of each handler call (a batch is one call).",
    ["queue"],
    registry=PROCESS,
)
LATENCY_SECONDS = Histogram(
    "pgqrs_message_latency_seconds",
    "From a message's enqueued_at to its final settle (archived, dead-lettered or failed).",
    ["queue"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600),
    registry=PROCESS,
)
# Outcomes after which the message is not delivered again: its end-to-end latency is known.
_FINAL = frozenset({instrument.ARCHIVED, instrument.DEAD_LETTERED, instrument.FAILED})


class _Counting:
    """The instrumentation observer that feeds the process metrics. The labelled children are
    kept by label values: `labels()` takes a lock and builds a key at every call."""

    def __init__(self) -> None:
        self.claims: dict[str, Any] = {}
        self.outcomes: dict[tuple[str, str], Any] = {}
        self.queues: dict[str, tuple[Any, Any]] = {}

    def claimed(self, queue: str, count: int) -> None:
        child = self.claims.get(queue)
        if child is None:
            child = self.claims[queue] = CLAIMED.labels(queue)
        child.inc(count)

    def settled(
        self,
        queue: str,
        outcome: instrument.Outcome,
        handler_seconds: float,
        messages: Sequence[QueueMessage],
    ) -> None:
        handled = self.outcomes.get((queue, outcome))
        if handled is None:
            handled = self.outcomes[queue, outcome] = HANDLED.labels(queue, outcome)
        histograms = self.queues.get(queue)
        if histograms is None:
            histograms = self.queues[queue] = (
                HANDLER_SECONDS.labels(queue),
                LATENCY_SECONDS.labels(queue),
            )
        duration, latency = histograms
        handled.inc(len(messages))
        duration.observe(handler_seconds)
        if outcome in _FINAL:
            now = time.time()
            for message in messages:
                try:
                    enqueued = parse_time(message.enqueued_at).timestamp()
                except ValueError:
                    continue
                # The database's clock against ours: a small skew never shows as negative.
                latency.observe(max(now - enqueued, 0.0))


OBSERVER = _Counting()
instrument.register(OBSERVER)

# -- the database: gauges read at scrape time ------------------------------------------------
# QueueMetrics fields by the `status` label of pgqrs_queue_messages (semantics.md §14).
_MESSAGE_STATUSES = (
    ("pending", "pending_messages"),
    ("delayed", "delayed_messages"),
    ("in_flight", "locked_messages"),
    ("dead_letter", "poison_messages"),
)
_WORKER_STATUSES = ("ready", "polling", "interrupted", "suspended", "stopped")


@dataclass(frozen=True, eq=False)  # hashed by identity: a registry keys its collectors
class Snapshot:
    """The queues and their workers, read at one scrape; a collector of gauges."""

    queues: list[QueueMetrics]
    workers: list[WorkerHealthStats]
    read_at: float  # time.time() when read

    def collect(self) -> Iterator[Metric]:
        messages = GaugeMetricFamily(
            "pgqrs_queue_messages",
            "Unarchived messages of each queue by status (their sum is the queue's depth).",
            labels=["queue", "status"],
        )
        archived = GaugeMetricFamily(
            "pgqrs_queue_archived_messages",
            "Archived messages of each queue still stored (purging lowers it).",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "pgqrs_queue_oldest_pending_age_seconds",
            "Age of each queue's oldest pending message (0 when none is pending).",
            labels=["queue"],
        )
        for q in self.queues:
            for status, field in _MESSAGE_STATUSES:
                messages.add_metric([q.name, status], getattr(q, field))
            archived.add_metric([q.name], q.archived_messages)
            oldest.add_metric([q.name], self._age(q.oldest_pending_message))
        workers = GaugeMetricFamily(
            "pgqrs_workers",
            "Workers registered on each queue, by status.",
            labels=["queue", "status"],
        )
        stale = GaugeMetricFamily(
            "pgqrs_workers_stale",
            "Ready or polling workers silent for three heartbeat intervals.",
            labels=["queue"],
        )
        for w in self.workers:
            for status in _WORKER_STATUSES:
                workers.add_metric([w.queue_name, status], getattr(w, f"{status}_workers"))
            stale.add_metric([w.queue_name], w.stale_workers)
        yield from (messages, archived, oldest, workers, stale)

    def _age(self, enqueued_at: str | None) -> float:
        if enqueued_at is None:
            return 0.0
        try:
            return max(self.read_at - parse_time(enqueued_at).timestamp(), 0.0)
        except ValueError:
            return 0.0


async def read_snapshot(store: Store, queues: Collection[str] | None = None) -> Snapshot:
    """Every queue (or those named) and its workers: two statements."""
    ops = admin(store)
    found = await ops.all_queues_metrics()
    timeout = 3 * store.settings.heartbeat_interval_seconds
    health = await ops.worker_health_stats(timeout, group_by_queue=True)
    names = {q.name for q in found} if queues is None else set(queues)
    # Workers without a queue (the "Admin" group) are no queue's: left out, unless a queue
    # has that name (semantics.md §14 reports both under it; docs/decisions.md says so).
    return Snapshot(
        [q for q in found if q.name in names],
        [w for w in health if w.queue_name in names],
        time.time(),
    )


def render(snapshot: Snapshot, counters: bytes) -> bytes:
    """The snapshot's gauges, then `counters` (this process's, already in the text format)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(snapshot)
    return generate_latest(registry) + counters


async def scrape(store: Store) -> bytes:
    """The body of a `/metrics` response (its content type is `CONTENT_TYPE`). The counters
    are read before the database: a failed message is counted after its release commits, so
    a scrape never counts a dead letter its gauges have not seen (the other order showed two
    dead letters handled beside one in the gauge)."""
    counters = generate_latest(PROCESS)
    return render(await read_snapshot(store), counters)


# -- a worker process's endpoint ---------------------------------------------------------------
class _Live:
    """A collector reading the snapshot on the store's event loop at each scrape (the HTTP
    server runs on its own thread); if the database does not answer in time, only the
    process metrics are served, and the scrape says so in the log."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, queues: list[str]) -> None:
        self.store, self.loop, self.queues = store, loop, queues

    def collect(self) -> Iterator[Metric]:
        counters = list(PROCESS.collect())  # before the database, as `scrape` does
        read = asyncio.run_coroutine_threadsafe(read_snapshot(self.store, self.queues), self.loop)
        try:
            snapshot = read.result(timeout=self.store.settings.connection_timeout_seconds)
        except Exception as err:
            read.cancel()
            log.warning("metrics scrape could not read the queues: %s", err)
        else:
            yield from snapshot.collect()
        yield from counters


class MetricsServer:
    """A running `/metrics` endpoint (prometheus_client's own HTTP server, on a thread)."""

    def __init__(self, store: Store, queues: list[str], port: int, host: str) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Live(store, asyncio.get_running_loop(), queues))
        self.server, self.thread = start_http_server(port, host, registry=registry)

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def serve(store: Store, queues: list[str], port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve `/metrics` for `queues` of `store` and this process, from inside the event loop
    the store runs on (port 0 picks a free port: `.port` says which)."""
    return MetricsServer(store, queues, port, host)
