"""A consumer killed with SIGKILL while it holds a batch loses nothing (semantics.md §7.3)."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime, timedelta, timezone

import pgqrs
from tests.support.process import spawn
from tests.support.target import Target

LEASE = 30


async def test_a_killed_consumers_batch_is_processed_once_its_lease_expires(
    store: pgqrs.Store, queue: str, target: Target
) -> None:
    producer = await store.producer(queue)
    ids = await producer.enqueue_batch([{"n": n} for n in range(15)])
    child = spawn("claim_and_hang", target.env(), queue, "10", str(LEASE))
    try:
        assert child.stdout is not None
        line = await asyncio.to_thread(child.stdout.readline)
        held = [int(x) for x in line.split()]
        assert held == ids[:10], child.stderr.read() if child.stderr else line
        child.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(child.wait, 10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pipe in (child.stdin, child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()

    survivor = await store.consumer(queue)
    now = datetime.now(timezone.utc)
    # While the dead consumer's lease runs, only the unclaimed rest is visible.
    early = await survivor.dequeue_at(100, LEASE, now)
    assert [m.id for m in early] == ids[10:]
    assert await survivor.archive_many(ids[10:]) == [True] * 5
    # Once it has expired (injected time instead of waiting), the batch comes back.
    late = await survivor.dequeue_at(100, LEASE, now + timedelta(seconds=LEASE + 1))
    assert [m.id for m in late] == held
    assert all(m.read_ct == 2 for m in late)
    assert await survivor.archive_many(held) == [True] * len(held)
    assert await (await store.get_messages()).count() == 0
