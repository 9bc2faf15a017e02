"""Three scheduler processes, one SIGKILLed and restarted midway: each of 60 one-second ticks is
enqueued exactly once (issue 13, "Schedules"; semantics.md §17.2).

The children share one accelerated clock (10 schedule seconds per wall second, from one origin
they all receive) so the 60 ticks take about 6 s; what fires them is `Scheduler.run()`, the
code path `pgqrs run` uses.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

import pgqrs
from pgqrs.tables import messages as message_rows
from tests.support.process import spawn
from tests.support.target import Target
from tests.support.waiting import eventually

START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
SPEED = 10.0  # schedule seconds per wall second
MAX_WAIT = 0.05  # wall seconds between a child's looks at most
TICKS = 60
FIRED = re.compile(r"schedule 'tick' fired tick (\S+): message \d+")


def schedule_time(origin: float) -> datetime:
    return START + timedelta(seconds=(time.time() - origin) * SPEED)


async def started(target: Target) -> subprocess.Popen[str]:
    child = spawn("scheduler_child", target.env(), START.isoformat(), str(SPEED), str(MAX_WAIT))
    assert child.stdout is not None
    line = await asyncio.to_thread(child.stdout.readline)
    assert line.strip() == "ready", child.stderr.read() if child.stderr else "no output"
    return child


def go(child: subprocess.Popen[str], origin: float) -> None:
    assert child.stdin is not None
    child.stdin.write(f"{origin!r}\n")
    child.stdin.flush()


def ticks_fired_by(child: subprocess.Popen[str]) -> list[str]:
    assert child.stderr is not None
    return FIRED.findall(child.stderr.read())


@pytest.mark.slow
@pytest.mark.timeout(120)
# Not on S3: an S3 object has one writer (semantics.md §16).
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_cron_three_scheduler_processes_one_killed_fire_each_tick_once(
    store: pgqrs.Store, target: Target
) -> None:
    await store.queue("ticks")
    store.clock = pgqrs._clock.FixedClock(START)
    # catch_up: a tick a scheduler reaches late (a kill mid-firing, a slow machine) still fires.
    await pgqrs.admin(store).create_schedule("tick", "* * * * * *", queue="ticks", catch_up=5)
    admin = pgqrs.admin(store)
    children = [await started(target) for _ in range(3)]
    origin = time.time() + 0.2
    for child in children:
        go(child, origin)

    async def reached(second: int) -> bool:
        last = (await admin.get_schedule("tick")).last_fire_at
        return last is not None and last >= (START + timedelta(seconds=second)).isoformat()

    try:
        await eventually(lambda: reached(20), within=30)
        victim = children[0]
        victim.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(victim.wait, 10) == -signal.SIGKILL
        killed_at = schedule_time(origin)
        await eventually(lambda: reached(35), within=30)
        children.append(await started(target))
        go(children[-1], origin)
        restarted_at = schedule_time(origin)
        await eventually(lambda: reached(TICKS + 2), within=30)
    finally:
        for child in children:
            if child.stdin is not None and not child.stdin.closed:
                try:
                    child.stdin.close()
                except BrokenPipeError:
                    pass
        for child in children:
            if child.poll() is None:
                try:
                    await asyncio.to_thread(child.wait, 10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
    per_child = [ticks_fired_by(child) for child in children]
    for child in children:
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
    assert [child.returncode for child in children] == [-signal.SIGKILL, 0, 0, 0]

    queue_id = (await store.get_queue("ticks")).id
    rows = await message_rows.browse_rows(store.db, queue_id, which="live", now=None, limit=10_000)
    keys: Counter[str | None] = Counter()
    for row in rows:
        _, key, _ = await message_rows.options(store.db, int(row[0]))
        keys[key] += 1
    window = [f"schedule:tick:{(START + timedelta(seconds=s)).isoformat()}" for s in range(1, 61)]
    in_window = [keys[key] for key in window]
    print(
        f"\ncron, {target.backend}: {len(rows)} messages for {len(keys)} ticks in all; of the "
        f"{TICKS} ticks from +1 s to +60 s: {sum(1 for n in in_window if n == 1)} enqueued once, "
        f"{in_window.count(0)} missing, {sum(1 for n in in_window if n > 1)} doubled; fired by "
        f"process: {[len(t) for t in per_child]} (the first SIGKILLed at "
        f"+{(killed_at - START).total_seconds():.1f} s, the last started at "
        f"+{(restarted_at - START).total_seconds():.1f} s)"
    )
    assert in_window == [1] * TICKS
    assert max(keys.values()) == 1, "a tick was enqueued twice"
    fired = [tick for ticks in per_child for tick in ticks]
    assert len(fired) == len(set(fired)), "two processes say they fired the same tick"
