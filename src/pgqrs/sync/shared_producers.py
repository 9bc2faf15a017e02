"""A sync store's one producer per queue, which `pgqrs.sync.produce` and `produce_batch` use:
no worker row per call (api.md §21)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

from ..client import Store as AsyncStore
from ..errors import PgqrsError, StateTransitionError, WorkerNotFoundError
from ..queue.workers import Producer as AsyncProducer
from ..records import EnqueuedId
from ..store.threads import closed
from ..validation import check_payloads_given, validate_queue_name
from . import options as passed
from .options import BatchEnqueueOptions, EnqueueOptions, MessageId


class SharedProducers:
    """The store's one producer per queue: registered on first use (whichever thread comes
    first; the others wait for that same registration), reused by every thread, stopped by
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
            task = self._tasks[queue] = asyncio.create_task(self._store.producer(queue))
            task.add_done_callback(functools.partial(self._forget_failed, queue))
        # Shielded: one caller giving up does not cancel the registration the others await.
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

    async def stop_all(self) -> None:
        """Stop every producer registered; the first failure is raised after all were tried."""
        self._closed = True
        tasks, self._tasks = list(self._tasks.values()), {}
        failures: list[PgqrsError] = []
        for task in tasks:
            try:
                producer = await task
            except Exception:  # its caller got the error; nothing was registered
                continue
            try:
                await producer.shutdown()
            except (StateTransitionError, WorkerNotFoundError):
                pass  # stopped already (an operator, a reclaim sweep) or registered again
            except PgqrsError as err:
                failures.append(err)
        if failures:
            raise failures[0]


async def close_store(store: AsyncStore, producers: SharedProducers) -> None:
    """What `close()` runs on the portal's loop: stop the shared producers, close the store."""
    try:
        await producers.stop_all()
    finally:
        await store.close()
