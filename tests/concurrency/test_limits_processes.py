"""Fleet-wide limits kept by real worker processes (semantics.md §7.10): four consumer
processes on one queue, sampled from outside while they drain it."""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left, bisect_right
from datetime import datetime
from pathlib import Path

import pytest

import pgqrs
from pgqrs._clock import from_db
from tests.support.process import consumer_processes
from tests.support.raw_db import RawDb
from tests.support.target import Target

PROCESSES = 4
# The rate test's length: 30 s for the measurement (PGQRS_RATE_TEST_SECONDS=30).
RATE_SECONDS = float(os.environ.get("PGQRS_RATE_TEST_SECONDS", "6"))


# Not on S3: one writer per object (semantics.md §16).
@pytest.mark.slow
@pytest.mark.serial  # it must see the processes overlap in time: not beside a parallel suite
@pytest.mark.backends("sqlite", "postgres", "turso")
# Batches of 25: on PostgreSQL each claim takes first and checks in its turn, and undoes
# itself whenever a rival's claim took the same key's room meanwhile (TAKE_FIRST_FROM).
@pytest.mark.parametrize("batch", [5, 25])
async def test_concurrency_limit_four_processes_never_exceed_a_keys_limit(
    store: pgqrs.Store, queue: str, target: Target, tmp_path: Path, batch: int
) -> None:
    limits = {"one": 1, "two": 2, "five": 5}
    per_key = 30
    admin = pgqrs.admin(store)
    for key, limit in limits.items():
        await admin.set_key_limits(queue, key, max_in_flight=limit)
    producer = await store.producer(queue)
    ids: list[int] = []
    peak = dict.fromkeys(limits, 0)
    samples = 0
    log = tmp_path / "handled.log"
    async with consumer_processes(
        store, target.env(), PROCESSES, queue, str(batch), str(log), "0.01"
    ):
        # Enqueued once every process is polling, and sampled from then on: with batches of
        # 25 the claims reach "five" at once, and it was drained before the last process
        # had started.
        for key in limits:
            ids += await producer.enqueue_batch([{"k": key}] * per_key, key=key)
        messages = await store.get_messages()
        deadline = asyncio.get_running_loop().time() + 120
        while await messages.count() > 0:
            assert asyncio.get_running_loop().time() < deadline, "the queue did not drain"
            for info in await admin.queue_limits(queue):
                assert info.key is not None
                peak[info.key] = max(peak[info.key], info.in_flight)
                assert info.in_flight <= limits[info.key], (info, peak)
            samples += 1
    print(f"\n{target.backend}: {samples} samples, peak in flight per key {peak} (limits {limits})")
    handled = [int(line) for line in log.read_text().split()]
    assert sorted(handled) == sorted(ids), "a message was lost or handled twice"
    if target.backend != "turso":  # Turso hands its file from process to process
        assert peak["five"] > 1, "the processes never worked in parallel"


@pytest.mark.slow
@pytest.mark.serial  # claims per second within 10%: measured without a parallel suite beside it
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_rate_limit_four_processes_hold_the_rate(
    store: pgqrs.Store, queue: str, target: Target, tmp_path: Path
) -> None:
    rate, burst = 20.0, 5
    await pgqrs.admin(store).set_queue_limits(queue, rate_per_second=rate, burst=burst)
    producer = await store.producer(queue)
    total = int(rate * RATE_SECONDS * 1.5) + 50  # more than the rate lets through
    for start in range(0, total, 500):
        await producer.enqueue_batch([{"n": n} for n in range(start, min(start + 500, total))])
    log = tmp_path / "handled.log"
    async with consumer_processes(store, target.env(), PROCESSES, queue, "10", str(log)):
        await asyncio.sleep(RATE_SECONDS)  # the measurement itself: claims over this time
    # Each claim's time, as the database saw it: the message's first claim (dequeued_at).
    claimed = sorted(
        stamp
        for (raw,) in RawDb(target).query(
            "SELECT dequeued_at FROM {s}pgqrs_messages WHERE dequeued_at IS NOT NULL"
        )
        if isinstance(stamp := from_db(raw), datetime)
    )
    span = (claimed[-1] - claimed[0]).total_seconds()
    times = [t.timestamp() for t in claimed]
    # A token bucket: in any interval of d seconds, at most burst + rate * d claims.
    worst = max(
        bisect_right(times, t + d) - bisect_left(times, t) - (burst + rate * d)
        for t in times
        for d in (0.1, 0.5, 1.0, 2.0)
    )
    achieved = (len(times) - burst) / span  # after the first burst, claims per second
    print(
        f"\n{target.backend}: {len(times)} claims over {span:.2f} s by {PROCESSES} processes, "
        f"{achieved:.2f}/s for a limit of {rate:g}/s (burst {burst}); "
        f"most claims above burst + rate * d in any interval: {worst:.2f}"
    )
    assert worst <= 1e-6
    assert abs(achieved - rate) <= 0.1 * rate
