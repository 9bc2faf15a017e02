"""A consumer process: polls the queue in batches, logging each handled id to a file; with a
HOLD, each batch is held that many seconds first (a handler at work: its leases stay held, so
leases of several processes overlap).

Prints its worker id on the first line, then runs until its worker is interrupted.
Usage: python -m tests.support.drain_child QUEUE BATCH LOG_FILE [HOLD_SECONDS]
"""

from __future__ import annotations

import asyncio
import sys

import pgqrs
from tests.support.process import child_store


async def main(queue: str, batch: int, log_path: str, hold: float) -> None:
    store = await child_store()
    consumer = await store.consumer(queue)
    print(consumer.worker_id, flush=True)
    with open(log_path, "a", encoding="utf-8") as log:

        async def handle(messages: list[pgqrs.QueueMessage]) -> None:
            if hold:
                await asyncio.sleep(hold)
            log.write("".join(f"{m.id}\n" for m in messages))
            log.flush()

        builder = pgqrs.dequeue().worker(consumer).batch(batch).poll_interval(20)
        try:
            await builder.handle_batch(handle).poll(store)
        except pgqrs.SuspendedError:
            pass
    await store.close()


if __name__ == "__main__":
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], hold))
