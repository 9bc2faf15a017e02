"""Enqueue payloads into a queue from a separate process, then exit.

Usage: python -m tests.support.enqueue_child QUEUE PAYLOAD_JSON [PAYLOAD_JSON ...]
"""

from __future__ import annotations

import asyncio
import json
import sys

import pgqrs
from tests.support.process import child_store


async def main(queue: str, payloads: list[str]) -> None:
    store = await child_store()
    ids = await pgqrs.produce_batch(store, queue, [json.loads(p) for p in payloads])
    print(" ".join(map(str, ids)), flush=True)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
