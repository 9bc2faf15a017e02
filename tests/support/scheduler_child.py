"""A scheduler process on an accelerated clock shared with its siblings.

Prints `ready` once connected, then reads the origin (a wall-clock `time.time()` value) from
stdin: its clock reads START at that instant and runs SPEED times faster than the wall, the
same in every process given the same line. Then it runs `pgqrs.Scheduler.run()`, the real
firing path, and logs each tick it fired on stderr, until stdin closes (or it is killed).
Usage: python -m tests.support.scheduler_child START SPEED MAX_WAIT
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import datetime, timedelta

import pgqrs
from tests.support.process import child_store


class AcceleratedClock:
    def __init__(self, start: datetime, origin: float, speed: float) -> None:
        self.start, self.origin, self.speed = start, origin, speed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.origin) * self.speed)


async def main(start: datetime, speed: float, max_wait: float) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    store = await child_store()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    origin = float(await loop.run_in_executor(None, sys.stdin.readline))
    scheduler = pgqrs.Scheduler(
        store, clock=AcceleratedClock(start, origin, speed), max_wait=max_wait
    )
    running = asyncio.create_task(scheduler.run())
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    scheduler.stop()
    await running
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(datetime.fromisoformat(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])))
