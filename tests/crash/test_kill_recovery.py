"""A consumer process killed with SIGKILL while holding messages: nobody else gets them while
its lease runs; once the lease is over a survivor's poll loop takes them by itself (no admin
call), each exactly once, and its sweep stops the dead worker (docs/guarantees.md,
"Recovery")."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest

import pgqrs
from tests.support.processes import finished, spawn
from tests.support.target import StoreFactory, Target
from tests.support.waiting import eventually, file_appears

pytestmark = pytest.mark.slow


async def test_survivor_reclaims_from_a_killed_consumer(
    store: pgqrs.Store, make_store: StoreFactory, target: Target, queue: str, tmp_path: Path
) -> None:
    ids = await (await store.producer(queue)).enqueue_batch([{"n": n} for n in range(3)])
    child = await spawn("child_consumer", "hold", queue, str(tmp_path), env=target.env())
    try:
        claimed = await file_appears(tmp_path / "claimed")
        dead_id = int((tmp_path / "worker").read_text())
        assert sorted(int(i) for i in claimed.split(",")) == ids

        # While the child is alive and its leases run, nobody else gets its messages.
        bystander = await store.consumer(queue)
        assert await bystander.dequeue(3) == []
        child.send_signal(signal.SIGKILL)
        assert await finished(child) == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    killed = time.time()

    dead = await store.worker(dead_id)
    assert await dead.status() == "polling"  # died mid-handler: nobody told the database
    messages = await store.get_messages()
    lease_ends = {mid: (await messages.get(mid)).vt for mid in ids}

    survivor_store = await make_store(heartbeat_interval_seconds=1)
    survivor = await survivor_store.consumer(queue)
    seen: dict[int, float] = {}

    def handle(message: pgqrs.QueueMessage) -> None:
        seen[message.id] = time.time()

    loop = asyncio.create_task(
        pgqrs.dequeue().worker(survivor).handle(handle).poll_interval(20).poll(survivor_store)
    )

    async def all_handled() -> bool:
        return sorted(seen) == ids

    await eventually(all_handled, within=10)

    async def dead_stopped() -> bool:
        return await dead.status() == "stopped"

    await eventually(dead_stopped, within=10)
    await survivor.interrupt()
    with pytest.raises(pgqrs.SuspendedError):
        await asyncio.wait_for(loop, 10)

    assert list(seen) == ids  # each exactly once, in claim order
    for mid in ids:
        # Never inside the dead worker's lease; soon after it (3 s lease, 20 ms polls).
        lease_end = pgqrs_time(lease_ends[mid])
        assert seen[mid] >= lease_end
        assert seen[mid] - killed <= 3 + 2
    assert (await dead.info()).shutdown_at is not None
    for mid in ids:
        message = await messages.get(mid)
        assert message.archived_at is not None
        assert (message.consumer_worker_id, message.read_ct) == (survivor.worker_id, 2)


def pgqrs_time(value: str | None) -> float:
    assert value is not None
    return datetime.fromisoformat(value).timestamp()
