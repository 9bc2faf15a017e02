"""A sync store's one producer per queue, which `pgqrs.sync.produce` and `produce_batch` use: it
keeps the queue's payload rules and the rate limit between calls, and has no worker row, as
`pgqrs.produce` has none (api.md §21, semantics.md §9.5)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

from ..client import Store as AsyncStore
from ..queue.workers import Producer as AsyncProducer
from ..queue.workers import producer_without_row
from ..records import EnqueuedId
from ..store.threads import closed
from ..validation import check_payloads_given, validate_queue_name
from . import options as passed
from .options import BatchEnqueueOptions, EnqueueOptions, MessageId


class SharedProducers:
    """The store's one producer per queue: made on first use (whichever thread comes first;
    the others wait for that same lookup of the queue), reused by every thread, forgotten by
    close(). Touched only on the portal's loop, so it needs no lock."""

    def __init__(self, store: AsyncStore) -> None:
        self._store = store
        self._tasks: dict[str, asyncio.Task[AsyncProducer]] = {}
        self._closed = False

    async def get(self, queue: str) -> AsyncProducer:
        validate_queue_name(queue)
        if self._closed:
            raise closed()
        task = self._tasks.get(queue)
        if task is None:
            task = self._tasks[queue] = asyncio.create_task(
                producer_without_row(self._store, queue)
            )
            task.add_done_callback(functools.partial(self._forget_failed, queue))
        # Shielded: one caller giving up does not cancel the lookup the others await.
        return await asyncio.shield(task)

    def _forget_failed(self, queue: str, task: asyncio.Task[AsyncProducer]) -> None:
        # A queue that did not exist may exist at the next call: it registers again then.
        failed = task.cancelled() or task.exception() is not None
        if failed and self._tasks.get(queue) is task:
            del self._tasks[queue]

    async def produce(self, queue: str, payload: Any, options: EnqueueOptions) -> MessageId:
        return await passed.enqueue(await self.get(queue), payload, options)

    async def produce_batch(
        self, queue: str, payloads: Sequence[Any], options: BatchEnqueueOptions
    ) -> list[MessageId] | list[EnqueuedId]:
        check_payloads_given(payloads)  # as pgqrs.produce_batch
        return await passed.enqueue_batch(await self.get(queue), list(payloads), options)

    def forget_all(self) -> None:
        """No more producers: they have no rows, so there is nothing to stop."""
        self._closed = True
        self._tasks = {}


async def close_store(store: AsyncStore, producers: SharedProducers) -> None:
    """What `close()` runs on the portal's loop: forget the shared producers, close the store."""
    producers.forget_all()
    await store.close()
