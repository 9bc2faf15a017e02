"""A poll loop's view of the database's health (queue/loop.py `Health`) counts only calls that
reached the database: sweeps judge other workers by it (semantics.md §14)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pgqrs
from pgqrs.queue.loop import LoopSettings, Runner


async def test_heartbeat_ticks_without_a_call_do_not_count_as_health(tmp_path: Path) -> None:
    """Regression: the heartbeat task ticks every min(H, lease / 2) and marked the database
    healthy on every tick, also on ticks that sent nothing. With the database gone, a sweeper
    then believed it had been healthy through the outage and stopped live peers as stale."""
    store = await pgqrs.connect(f"sqlite://{tmp_path / 'health.db'}")
    await pgqrs.admin(store).install()
    await store.queue("jobs")
    consumer = await store.consumer("jobs")
    # Ticks every 0.02 s (lease / 2), a heartbeat only every 10 s: most ticks send nothing.
    settings = LoopSettings(batch=1, lease=0.04, poll_interval=1.0, heartbeat=10.0, at=None)
    runner = Runner(store, consumer, settings, None, ephemeral=False)
    runner.health.ok_since = None  # as after a failed call: the database is away
    beat = asyncio.create_task(runner._beat())
    try:
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # a dozen ticks or so
            await asyncio.sleep(0.02)
            assert runner.health.healthy_for() == 0.0
    finally:
        beat.cancel()
        await asyncio.wait((beat,))
        await store.close()
