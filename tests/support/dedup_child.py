"""A producer process racing another on the same deduplication keys (issue 12).

Connects, registers a producer, prints `ready`, waits for one line on stdin (the parent sends
it to every child at once), then enqueues one message per key — `key-0`, `key-1`, ... in that
order, one call each, or in batches of `BATCH` with `batch` — and prints one JSON line:
`[[id, duplicate], ...]`, one pair per key.

Usage: python -m tests.support.dedup_child QUEUE KEYS single|batch
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pgqrs
from tests.support.process import child_store

BATCH = 10


async def main(queue: str, count: int, mode: str) -> None:
    store = await child_store()
    producer = await store.producer(queue)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the start signal, sent to both at once
    keys = [f"key-{n}" for n in range(count)]
    pid = os.getpid()
    found: list[pgqrs.EnqueuedId] = []
    if mode == "single":
        for key in keys:
            found.append(await producer.enqueue({"key": key, "pid": pid}, dedup_key=key))
    else:
        for first in range(0, count, BATCH):
            chunk = keys[first : first + BATCH]
            payloads = [{"key": key, "pid": pid} for key in chunk]
            found += await producer.enqueue_batch(payloads, dedup_keys=chunk)
    print(json.dumps([[int(i), i.duplicate] for i in found]), flush=True)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
