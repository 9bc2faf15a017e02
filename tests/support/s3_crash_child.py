"""A Durable S3 writer that SIGKILLs itself between its local commit and the upload.

Usage: python -m tests.support.s3_crash_child QUEUE
Enqueues one message; the process dies right after the write committed to the local cache
file, before `_after_commit` can upload it. Prints "committing" just before.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from pgqrs.store.s3 import S3Executor
from tests.support.process import child_store


async def _die(self: S3Executor, changed: bool) -> None:
    if changed:
        os.kill(os.getpid(), signal.SIGKILL)


async def main(queue: str) -> None:
    store = await child_store()
    producer = await store.producer(queue)
    S3Executor._after_commit = _die  # type: ignore[method-assign]
    print("committing", flush=True)
    await producer.enqueue({"unacknowledged": True})
    print("survived", flush=True)  # never reached


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
