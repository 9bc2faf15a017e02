"""Sizes, the message body and the command line of the benchmark scripts (standard library only,
so compare.py can read them from any interpreter)."""

from __future__ import annotations

import argparse
import os
from typing import Any

PG_DSN = os.environ.get("PGQRS_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("postgres", "sqlite", "turso", "s3")
RAW_BACKENDS = ("postgres", "sqlite")  # the hand-written SQL baseline (raw_sql.py)
REFERENCE_BACKENDS = ("postgres",)  # pgqrs 0.15.3's wheel: no SQLite, Turso or S3 here
# Every scenario, in table order; the raw-SQL baseline (raw_sql.py) runs the queue ones.
SCENARIOS = (
    "enqueue_single",
    "enqueue_batch",
    "drain",
    "capacity",
    "e2e_latency",
    "workflow",
    "backlog_scaling",
    "memory",
    "workflow_memory",
    "sync_enqueue",
    "backlog_priority",
    "enqueue_dedup",
    "drain_limited",
)
# Scenarios of this library's own API, which pgqrs 0.15.3 does not have (compare.py runs no
# reference case for them).
THIS_ONLY_SCENARIOS = ("sync_enqueue", "backlog_priority", "enqueue_dedup", "drain_limited")
RAW_SCENARIOS = ("enqueue_single", "enqueue_batch", "drain", "backlog_scaling")
# Turso and S3 run the throughput scenarios only: the others measure the engine, not the
# backend (e2e_latency, workflow) or need a bulk loader behind the library's back
# (backlog_scaling, memory, workflow_memory), which a pyturso file or an S3 object does not
# offer.
QUEUE_SCENARIOS = ("enqueue_single", "enqueue_batch", "drain")
BACKEND_SCENARIOS: dict[str, tuple[str, ...] | None] = {  # None: every scenario
    "postgres": None,
    "sqlite": None,
    "turso": QUEUE_SCENARIOS,
    "s3": QUEUE_SCENARIOS,
}

# Full sizes are the issue's; quick sizes keep the smoke test to a few seconds.
FULL: dict[str, Any] = {
    "enqueue_single": 5_000,
    "enqueue_batch": 20_000,
    "enqueue_batch_size": 100,
    "drain": 10_000,
    "drain_consumers": [1, 4],
    "drain_batches": [1, 10, 100],
    "drain_modes": ["explicit", "poll"],
    "capacity": 10_000,
    "capacity_consumers": [2, 4],
    "capacity_batches": [10, 50],
    "e2e_rate": 200,
    "e2e_seconds": 10.0,
    "e2e_warmup": 20,
    "workflow_runs": 1500,
    "workflow_workers": 4,
    "backlog_sizes": [10_000, 100_000, 1_000_000],
    "backlog_samples": 200,
    "backlog_budget_s": 20.0,
    "memory_messages": 100_000,
    "memory_batch": 10,
    "workflow_memory_runs": 20_000,
    "sync_enqueue": 5_000,
    "sync_enqueue_round": 250,
    "enqueue_dedup": 5_000,
    "enqueue_dedup_round": 250,
    "enqueue_dedup_batch": 100,
    "drain_limited": 10_000,
    "drain_limited_batches": [10, 100],
    "drain_limited_kinds": ["one", "queue", "keys"],
    "drain_limited_rounds": 2,
}
QUICK: dict[str, Any] = {
    "enqueue_single": 40,
    "enqueue_batch": 200,
    "enqueue_batch_size": 50,
    "drain": 40,
    "drain_consumers": [2],  # one case per mode: the code paths do not depend on C or B
    "drain_batches": [5],
    "drain_modes": ["explicit", "poll"],
    "capacity": 60,
    "capacity_consumers": [2],  # one case: the code path does not depend on C or B
    "capacity_batches": [10],
    "e2e_rate": 100,
    "e2e_seconds": 0.2,
    "e2e_warmup": 2,
    "workflow_runs": 6,
    "workflow_workers": 2,
    "backlog_sizes": [100, 1_000],
    "backlog_samples": 5,
    "backlog_budget_s": 2.0,
    "memory_messages": 400,
    "memory_batch": 10,
    "workflow_memory_runs": 60,
    "sync_enqueue": 40,
    "sync_enqueue_round": 10,
    "enqueue_dedup": 40,
    "enqueue_dedup_round": 10,
    "enqueue_dedup_batch": 10,
    "drain_limited": 60,
    "drain_limited_batches": [5],
    "drain_limited_kinds": ["one", "queue", "keys"],
    "drain_limited_rounds": 1,
}
# What differs per backend. S3 (Durable mode) uploads the whole database file after every
# write, so each enqueue and each claim or archive is one upload: 2,000 messages, no B=1 (two
# uploads per message), and one consumer, since an S3 object has one writing store (several
# consumers of that store would only take turns on its one writer). Turso runs the standard
# sizes and the whole drain grid, like SQLite, so the two compare cell by cell (its B=1 cases
# take ~20 s each, as PostgreSQL's do); C=4 is four consumers of one store in one process,
# which is how pyturso's one-process-per-file rule lets a Turso file be drained in parallel.
BACKEND_FULL: dict[str, dict[str, Any]] = {
    "s3": {
        "enqueue_single": 500,
        "enqueue_batch": 2_000,
        "drain": 2_000,
        "drain_consumers": [1],
        "drain_batches": [10, 100],
    },
}
BACKEND_QUICK: dict[str, dict[str, Any]] = {"s3": {"drain_consumers": [1]}}
CAPACITY_CHUNK = 10  # capacity: the producer enqueues batches of this many messages
BACKLOG_CLAIM = 10  # dequeue(batch_size=10) + archive_many per backlog_scaling sample
BACKLOG_WARMUP = 3  # claims before sampling (cold caches, statement preparation)
# backlog_priority: the visible rows' priorities cycle through -3..3 (issue 12).
BACKLOG_PRIORITIES = 7


def sizes(
    quick: bool, backend: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The sizes of one backend's cases: the standard ones (`backend=None`), then the
    backend's own, then the command line's."""
    chosen = dict(QUICK if quick else FULL)
    if backend is not None:
        chosen.update((BACKEND_QUICK if quick else BACKEND_FULL).get(backend, {}))
    chosen.update(overrides or {})
    return chosen


def runs_on(scenario: str, backend: str) -> bool:
    supported = BACKEND_SCENARIOS.get(backend, ())
    return supported is None or scenario in supported


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def str_list(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def payload(n: int) -> dict[str, Any]:
    """The message body of every scenario: small, like a typical job reference."""
    return {"n": n, "kind": "bench", "ref": f"order-{n:08d}"}


def payload_batches(count: int, size: int) -> list[list[dict[str, Any]]]:
    """`count` payloads in batches of `size` (enqueue_batch)."""
    return [
        [payload(n) for n in range(first, min(first + size, count))]
        for first in range(0, count, size)
    ]


def parse_args(
    argv: list[str] | None,
    scenarios: tuple[str, ...],
    doc: str | None,
    backends: tuple[str, ...] = BACKENDS,
) -> Any:
    """The command line shared by scenarios.py and raw_sql.py; `args.sizes(backend)` gives
    the sizes of a backend's cases."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument(
        "--scenario",
        type=str_list,
        default=list(scenarios),
        help=f"comma-separated, from {', '.join(scenarios)} (default: all)",
    )
    parser.add_argument(
        "--backend",
        type=str_list,
        default=list(backends),
        help=f"comma-separated, from {', '.join(backends)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--dsn", default=PG_DSN, help="PostgreSQL DSN")
    parser.add_argument("--consumers", type=int_list, help="drain, capacity: consumer counts")
    parser.add_argument("--batches", type=int_list, help="drain, capacity: batch sizes")
    parser.add_argument("--modes", type=str_list, help="drain: explicit,poll")
    parser.add_argument("--sizes", type=int_list, help="backlog_scaling: visible rows")
    parser.add_argument("--limits", type=str_list, help="drain_limited: one,queue,keys")
    args = parser.parse_args(argv)
    unknown = set(args.scenario) - set(scenarios)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    unknown = set(args.backend) - set(backends)
    if unknown:
        parser.error(f"unknown backend(s) here: {', '.join(sorted(unknown))}")
    overrides: dict[str, Any] = {}
    for flag, key in (
        ("consumers", "drain_consumers"),
        ("consumers", "capacity_consumers"),
        ("batches", "drain_batches"),
        ("batches", "capacity_batches"),
        ("batches", "drain_limited_batches"),
        ("limits", "drain_limited_kinds"),
        ("modes", "drain_modes"),
        ("sizes", "backlog_sizes"),
    ):
        if getattr(args, flag):
            overrides[key] = getattr(args, flag)
    args.sizes = lambda backend: sizes(args.quick, backend, overrides)
    return args
