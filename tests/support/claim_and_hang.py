"""A consumer that claims a batch under a lease, reports the ids, then hangs until killed.

Usage: python -m tests.support.claim_and_hang QUEUE BATCH LEASE_SECONDS
Prints one line: the claimed ids, space-separated.
"""

from __future__ import annotations

import asyncio
import sys

from tests.support.process import child_store


async def main(queue: str, batch: int, lease: int) -> None:
    store = await child_store()
    consumer = await store.consumer(queue)
    claimed = await consumer.dequeue_many_with_delay(batch, lease)
    print(" ".join(str(m.id) for m in claimed), flush=True)
    await asyncio.Event().wait()  # hold the batch until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
