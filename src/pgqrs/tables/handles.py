"""The table handles of `store.get_workers()`, `get_queues()`, `get_messages()` (api.md §10).

A handle holds no data: every call reads live rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..types import QueueInfo, QueueMessage, WorkerInfo
from ..validation import validate_queue_name
from . import messages, queues, workers

if TYPE_CHECKING:
    from ..store.facade import Store


class _Handle:
    def __init__(self, store: Store) -> None:
        self._store = store

    def __repr__(self) -> str:
        return f"<pgqrs.{type(self).__name__}>"


class Workers(_Handle):
    async def count(self) -> int:
        return await workers.count(self._store.db)

    async def list(self) -> list[WorkerInfo]:
        """Newest `started_at` first, ties by id descending."""
        return await workers.list_all(self._store.db)

    async def get(self, worker_id: int) -> WorkerInfo:
        return await workers.get(self._store.db, worker_id)


class Queues(_Handle):
    async def count(self) -> int:
        return await queues.count(self._store.db)

    async def list(self) -> list[QueueInfo]:
        return await queues.list_all(self._store.db)

    async def purge(self, queue_name: str) -> int:
        validate_queue_name(queue_name)
        async with self._store.db.transaction() as db:
            return await queues.purge(db, queue_name)


class Messages(_Handle):
    async def count(self) -> int:
        """Unarchived messages of every queue."""
        return await messages.count(self._store.db)

    async def get(self, message_id: int) -> QueueMessage:
        db = self._store.db
        return (await self._store.messages.read(db, [await messages.get_row(db, message_id)]))[0]

    async def list_archived_by_queue(self, queue_id: int) -> list[QueueMessage]:
        db = self._store.db
        return await self._store.messages.read(db, await messages.archived_rows(db, queue_id))
