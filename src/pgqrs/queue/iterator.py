"""`store.consume_iter(queue)`: an async iterator of messages with its own ephemeral consumer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import PgqrsError
from ..store.wakeup import queue_key
from ..types import QueueMessage
from ..validation import check_iterator_poll_interval
from .loop import finish_ephemeral
from .workers import Consumer

if TYPE_CHECKING:
    from ..tables.context import Context

DEFAULT_POLL_INTERVAL_MS = 50


class ConsumerIterator:
    """Yields one claimed message at a time; the caller settles each within its lease.

    The iterator neither heartbeats nor extends leases (semantics.md §10.7). `close()` (or leaving
    `async with`) releases whatever is still held and stops the worker.
    """

    def __init__(self, store: Context, queue: str, poll_interval_ms: int | None = None) -> None:
        check_iterator_poll_interval(poll_interval_ms)
        self._store = store
        self._queue = queue
        self._interval = (poll_interval_ms or DEFAULT_POLL_INTERVAL_MS) / 1000
        self._consumer: Consumer | None = None
        self._closed = False

    @property
    def worker_id(self) -> int | None:
        return None if self._consumer is None else self._consumer.worker_id

    def __aiter__(self) -> ConsumerIterator:
        return self

    async def __anext__(self) -> QueueMessage:
        store = self._store
        if self._consumer is None and not self._closed:
            self._consumer = await Consumer._register_ephemeral(store, self._queue)
        while not self._closed:
            consumer = self._consumer
            assert consumer is not None
            lease = store.settings.default_lock_time_seconds
            keys = (queue_key(consumer.queue_id or 0), self._close_key)
            mark = store.wakeups.mark(keys)
            claimed = await consumer.claim(1, lease, store.sql_now())
            if claimed:
                return claimed[0]
            await store.wakeups.wait(keys, self._interval, since=mark)
        raise StopAsyncIteration

    @property
    def _close_key(self) -> tuple[str, int]:
        return ("iterator", id(self))

    def _initialized(self) -> Consumer:
        if self._consumer is None:
            raise PgqrsError("Consumer not initialized")
        return self._consumer

    async def archive(self, message_id: int) -> bool:
        return await self._initialized().archive(message_id)

    async def delete(self, message_id: int) -> bool:
        return await self._initialized().delete(message_id)

    async def release(self, message_id: int) -> bool:
        return await self._initialized().release_messages([message_id]) == 1

    async def extend_vt(self, message_id: int, seconds: float) -> bool:
        return await self._initialized().extend_vt(message_id, seconds)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._store.wakeups.notify(self._close_key)
        if self._consumer is not None:
            await finish_ephemeral(self._store, self._consumer)

    async def __aenter__(self) -> ConsumerIterator:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
