"""`Admin`: schema installation and queue-level operations. Admin calls never register workers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .operations import AdminOperations
from .records import QueueSettings
from .store import migrate
from .tables import messages, queues
from .tables import workers as worker_rows
from .types import QueueInfo, WorkerInfo
from .validation import require_int, validate_queue_name
from .workflow_admin import create_workflow

if TYPE_CHECKING:
    from .workflow_run import Run

if TYPE_CHECKING:
    from .store.facade import Store


class Admin(AdminOperations):
    """Schema, queues and (through `AdminOperations`) metrics, recovery and cleanup."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store

    def __repr__(self) -> str:
        return f"<pgqrs.Admin store={self._store!r}>"

    async def install(self) -> None:
        """Apply pending migrations; idempotent, and safe from several processes at once."""
        await self._store.db.install()

    async def verify(self) -> None:
        await migrate.verify(self._store.db)

    async def create_queue(
        self, name: str, exist_ok: bool = False, *, max_read_ct: int | None = None
    ) -> QueueInfo:
        """Create a queue. `max_read_ct` (default: this store's Config.max_read_ct) is stored
        with it: every process that touches the queue makes dead letters at the same count."""
        validate_queue_name(name)
        limit = self._store.settings.max_read_ct
        if max_read_ct is not None:
            limit = require_int("max_read_ct", max_read_ct, 1)
        store = self._store
        return await queues.create(
            store.db, name, store.clock.now(), exist_ok=exist_ok, max_read_ct=limit
        )

    async def queue_settings(self, name: str) -> QueueSettings:
        """What the queue decides for every process: its poison threshold."""
        info = await self.get_queue(name)
        return await queues.settings(self._store.db, info.id)

    async def update_queue(self, name: str, *, max_read_ct: int) -> QueueSettings:
        """Change the queue's poison threshold for every process, from their next claim on."""
        limit = require_int("max_read_ct", max_read_ct, 1)
        info = await self.get_queue(name)
        return await queues.set_max_read_ct(self._store.db, info.id, limit)

    async def get_queue(self, name: str) -> QueueInfo:
        validate_queue_name(name)
        return await queues.get_by_name(self._store.db, name)

    async def delete_queue(self, name: str) -> bool:
        validate_queue_name(name)
        async with self._store.db.transaction() as db:
            await queues.delete(db, name)
        return True

    async def purge_queue(self, name: str) -> int:
        validate_queue_name(name)
        async with self._store.db.transaction() as db:
            return await queues.purge(db, name)

    async def release_worker_messages(self, worker_id: int) -> int:
        store = self._store
        return await messages.release_worker(store.db, worker_id, store.sql_now())

    async def create_workflow(self, name: str, arg: Any = None) -> Run:
        """Create the definition if missing, enqueue one trigger and create its QUEUED run."""
        return await create_workflow(self._store, name, arg)

    async def list_workers(self) -> list[WorkerInfo]:
        return await worker_rows.list_all(self._store.db)


def admin(store: Store) -> Admin:
    return Admin(store)
