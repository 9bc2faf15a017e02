"""The basic queue, end to end: one producer, two consumers draining with the poll loop, then an
interrupt that stops both cleanly.

Runs on the embedded SQLite default (./pgqrs.db); set PGQRS_DSN to use another database, e.g.
PGQRS_DSN=postgresql://postgres@127.0.0.1:5432/test python examples/basic_queue.py
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import pgqrs

DSN = os.environ.get("PGQRS_DSN", "sqlite://pgqrs.db")
JOBS = 5000


async def main() -> None:
    store = await pgqrs.connect(DSN)
    admin = pgqrs.admin(store)
    await admin.install()
    await admin.create_queue("emails", exist_ok=True)
    print(f"connected to {store.backend} ({DSN}); schema installed; queue 'emails' ready")

    producer = await store.producer("emails")
    started = time.perf_counter()
    ids = await producer.enqueue_batch([{"to": f"user{i}@example.com"} for i in range(JOBS)])
    print(f"producer {producer.worker_id} enqueued {len(ids)} messages")

    consumers = {"A": await store.consumer("emails"), "B": await store.consumer("emails")}
    handled: Counter[str] = Counter()
    drained = asyncio.Event()

    def handler_for(name: str) -> Callable[[list[pgqrs.QueueMessage]], Awaitable[None]]:
        async def send_emails(batch: list[pgqrs.QueueMessage]) -> None:
            await asyncio.sleep(0.005)  # stands in for sending the emails
            handled[name] += len(batch)
            if handled.total() >= JOBS:
                drained.set()

        return send_emails

    tasks = [
        asyncio.create_task(
            pgqrs.dequeue().worker(consumer).batch(25).handle_batch(handler_for(name)).poll(store)
        )
        for name, consumer in consumers.items()
    ]
    while not drained.is_set():
        try:
            await asyncio.wait_for(drained.wait(), 0.25)
        except TimeoutError:
            pass
        print(f"  handled {handled.total():5d}/{JOBS}  (A: {handled['A']}, B: {handled['B']})")
    elapsed = time.perf_counter() - started
    print(f"drained {JOBS} messages in {elapsed:.2f}s ({JOBS / elapsed:,.0f} msgs/s)")

    for consumer in consumers.values():
        await consumer.interrupt()
    for (name, consumer), task in zip(consumers.items(), tasks, strict=True):
        try:
            await task
        except pgqrs.SuspendedError as stopped:
            print(f"consumer {name} stopped polling: {stopped}; status {await consumer.status()}")
        await consumer.shutdown()
    await producer.shutdown()

    metrics = await (await store.get_messages()).count()
    print(f"messages left unarchived: {metrics}")
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
