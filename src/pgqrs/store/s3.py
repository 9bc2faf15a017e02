"""The S3 backend: a SQLite database file kept as one object in an S3-compatible store.

The store works on a local cache file (`store/s3_cache.py`) with the SQLite backend's code, in
`journal_mode=DELETE` so the file alone is the database. Two hooks of `SqliteExecutor` do the
rest (semantics.md §15):

* after each write transaction that changed something, Durable mode uploads a consistent copy
  of the file (SQLite backup API, taken under the write lock) with `If-Match` on the last seen
  ETag (`If-None-Match: *` while there is none) before the call returns. Concurrent writes of
  one store share an upload: each write waits until an upload taken after its commit is done;
* before each operation, Durable mode compares the remote ETag and switches to a fresh
  download when it changed and the cache is clean. An upload that failed (network) is retried
  first; a conflict marks the cache stale, so the next call starts from the remote again.

Local mode contacts the object store only in `sync()`, `snapshot()` and `state()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from .._cancel import complete
from ..config import Config, Dsn
from ..errors import ConfigError, NotFoundError, PgqrsError
from ..types import DurabilityMode, SyncState
from .s3_cache import CacheFiles, Claim
from .s3_errors import SNAPSHOT_REFUSED, ObjectMissing, conflict
from .sql.session import SqliteSession
from .sqlite import SqliteExecutor
from .threads import ConnectionRunner

log = logging.getLogger("pgqrs")

T = TypeVar("T")

# Object metadata of each upload: which store wrote it, and how many of its commits it holds.
_WRITER = "pgqrs-writer"
_COVERS = "pgqrs-commits"


def _changes(conn: sqlite3.Connection) -> object:
    """Row changes, and DDL (which changes no row but the schema cookie)."""
    return conn.total_changes, conn.execute(SqliteSession.SCHEMA_VERSION).fetchone()[0]


def _serialized(conn: sqlite3.Connection) -> bytes:
    """A consistent copy of the whole database, through the backup API."""
    copy = sqlite3.connect(":memory:")
    try:
        conn.backup(copy)
        return copy.serialize()
    finally:
        copy.close()


class S3Executor(SqliteExecutor):
    backend = "s3"
    migration_kind = "sqlite"
    journal_mode = "DELETE"

    def __init__(self, dsn: Dsn, config: Config) -> None:
        if config.s3_cache_dir is None:
            raise ConfigError(
                "Invalid configuration value for s3_cache_dir: cache_dir must be set for s3 stores"
            )
        from .s3_remote import Remote  # ConfigError when boto3 is not installed

        assert dsn.bucket is not None
        assert dsn.key is not None
        self.path: str | None = None  # the current cache file, chosen by start()
        super().__init__(dsn)
        self.scope = ("s3", dsn.bucket, dsn.key)  # one object, one database
        self.mode: DurabilityMode = config.s3_mode
        self.remote = Remote(dsn.bucket, dsn.key, config.connection_timeout_seconds)
        self._files = CacheFiles(config.s3_cache_dir, dsn.bucket, dsn.key)
        self._claim: Claim | None = None
        self.last_etag: str | None = None
        self._committed = 0  # write transactions that changed the database
        self._synced = 0  # how many of them the remote object holds
        self._stale = False  # a conflict: the next call starts from the remote again
        # Each upload names its writer and what it covers, so an upload of ours that landed
        # unseen (its caller was cancelled, or timed out while the request went through) is
        # recognised as ours, never taken for another writer's (issue 10, defect 5).
        self._writer_id = uuid.uuid4().hex
        self._installing = False
        self._sync_lock = asyncio.Lock()

    @property
    def durable(self) -> bool:
        return self.mode == DurabilityMode.Durable

    @property
    def dirty(self) -> bool:
        return self._committed > self._synced

    # -- opening ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._files.prepare()
        if not self.durable:  # Local mode: the working file, shared; no request at all
            self._use(self._working(exclusive=False))
        elif await self.remote.etag() is not None:
            claim, self.last_etag = await self._download()
            self._use(claim)
        else:
            self._use(self._working(exclusive=True))
        # The writer made by the constructor knew no file yet: replace it (it never opened).
        self._writer.stop()
        self._threads.clear()
        self._writer = self._new_thread("rwc", "w")
        self._threads.append(self._writer)
        await super().start()

    def _working(self, exclusive: bool) -> Claim:
        """The working file: shared in Local mode; a Durable store needs it to itself and
        falls back to a fresh file of its own when another store uses it."""
        claim = self._files.claim_working(exclusive)
        if claim is not None:
            return claim
        if not exclusive:
            raise PgqrsError(
                f"Database connection failed: {self._files.working} is in use by a Durable store"
            )
        claim = self._files.claim_free(self._files.working, first=2)
        with contextlib.suppress(FileNotFoundError):
            os.remove(claim.path)
        return claim

    def _use(self, claim: Claim) -> None:
        self._claim = claim
        self.path = claim.path

    def _opener(self, mode: str) -> Callable[[], Any]:
        # The current cache file, fixed now: a switch makes new threads (see the base class).
        where = dataclasses.replace(self._dsn, path=self.path)
        return functools.partial(type(self).open_connection, where, mode, self._synchronous)

    async def _download(self) -> tuple[Claim, str]:
        """Download the object into a revision file of this store's own; (claim, ETag)."""
        temporary = self._files.temporary()
        try:
            etag = await self.remote.download(temporary)
            claim = self._files.claim_free(self._files.revision(etag))
            os.replace(temporary, claim.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
        return claim, etag

    async def _switch(self, claim: Claim, etag: str) -> None:
        """Serve every later call from `claim`'s file, which holds the remote at `etag`."""
        async with self._lock:
            old_threads, old_claim = list(self._threads), self._claim
            for thread in old_threads:
                thread.stop()  # after the calls already queued on the old file
            self._use(claim)
            self._threads.clear()
            self._writer = self._new_thread("rwc", "w")
            self._reader = self._new_thread("rw", "r")
            self._threads += [self._writer, self._reader]
            await self._guard(self._writer.call(lambda c: None))
            await self._guard(self._reader.call(lambda c: None))
            self.last_etag = etag
            self._synced = self._committed
            self._stale = False
        if old_claim is not None:
            _retire(old_threads, old_claim)

    async def _refresh(self) -> None:
        """Start again from the remote object (caller holds the sync lock)."""
        claim, etag = await self._download()
        await self._switch(claim, etag)

    # -- hooks -----------------------------------------------------------------------------
    change_marker = staticmethod(_changes)

    async def _before_operation(self) -> None:
        if not self.durable or self._installing:
            return
        async with self._sync_lock:
            if self._stale:
                await self._refresh()
                return
            etag, metadata = await self.remote.head()
            self._adopt_own_upload(etag, metadata)
            if etag == self.last_etag:
                if self.dirty:  # an earlier upload failed; this one carries that write too
                    await self._upload()
                return
            if self.dirty:  # the remote moved under unsynced writes: a conflict either way
                await self._upload()
            elif etag is None:
                raise NotFoundError(f"S3 object '{self.remote.uri}' not found")
            else:
                await self._refresh()

    async def install(self) -> None:
        """Install with one upload at the end instead of one per migration (what committed is
        uploaded even when a later migration fails). Installers racing on one object are
        several writers: the losers' conflicts are retried from the winner's object, where
        install finds less or nothing left to do."""
        self._check_open()
        for attempt in range(5):
            try:
                await self._install_once()
                return
            except PgqrsError as err:
                if not self._stale or attempt == 4:
                    raise
                log.info("install on %s met a sync conflict; retrying: %s", self.remote.uri, err)

    async def _install_once(self) -> None:
        await self._before_operation()
        self._installing = True
        try:
            await super().install()
        finally:
            self._installing = False
            if self.durable and self.dirty:
                async with self._sync_lock:
                    await self._upload()

    def _note_change(self) -> None:
        # On the writer thread, which alone writes the counter: a commit whose caller was
        # cancelled still counts, and the next operation uploads it.
        self._committed += 1

    async def _after_commit(self, changed: bool) -> None:
        if changed and self.durable and not self._installing:
            # Committed: its upload finishes even if the caller is cancelled meanwhile.
            await complete(self._upload_through(self._committed))

    async def _upload_through(self, target: int) -> None:
        async with self._sync_lock:
            if self._synced < target:  # else an upload started after our commit is done
                await self._upload()

    # -- upload ----------------------------------------------------------------------------
    def _adopt_own_upload(self, etag: str | None, metadata: dict[str, str]) -> None:
        """The object changed since the last upload we saw; if it is one of our own (which
        landed after its caller stopped waiting), it is what we uploaded, not a conflict."""
        if etag is None or etag == self.last_etag:
            return
        if metadata.get(_WRITER) != self._writer_id:
            return
        covered = int(metadata.get(_COVERS, "0"))
        self.last_etag = etag
        self._synced = max(self._synced, covered)

    async def _upload(self) -> None:
        """Upload the cache file conditionally on `last_etag` (caller holds the sync lock)."""
        async with self._lock:
            covered = self._committed
            data = await self.on_writer(_serialized)
        metadata = {_WRITER: self._writer_id, _COVERS: str(covered)}
        try:
            try:
                etag = await self.remote.upload(data, if_match=self.last_etag, metadata=metadata)
            except ObjectMissing:  # deleted remotely: recreated from this cache (semantics.md §15)
                etag = await self.remote.upload(data, if_match=None, metadata=metadata)
        except PgqrsError as err:
            if "Conflict" in str(err) and self.durable:
                self._stale = True
            raise
        self.last_etag = etag
        self._synced = max(self._synced, covered)

    # -- S3StoreHandle ---------------------------------------------------------------------
    async def sync(self) -> None:
        self._check_open()
        async with self._sync_lock:
            etag, metadata = await self.remote.head()
            self._adopt_own_upload(etag, metadata)
            if etag is None:
                self.last_etag = None
                await self._upload()
            elif etag == self.last_etag:
                if self.dirty:
                    await self._upload()
            else:
                if self.durable:
                    self._stale = True
                raise conflict()

    async def snapshot(self) -> None:
        self._check_open()
        async with self._sync_lock:
            if self.dirty and not self._stale:
                raise PgqrsError(SNAPSHOT_REFUSED)
            await self._refresh()

    async def state(self) -> SyncState:
        self._check_open()
        if self._file_missing():
            return SyncState.LocalMissing
        etag, metadata = await self.remote.head()
        self._adopt_own_upload(etag, metadata)
        if etag is None:
            return SyncState.RemoteMissingDirty if self.dirty else SyncState.RemoteMissingClean
        if etag == self.last_etag:
            return SyncState.LocalChanges if self.dirty else SyncState.InSync
        return SyncState.ConcurrentChanges if self.dirty else SyncState.RemoteChanges

    def _file_missing(self) -> bool:
        return not os.path.exists(self.path or "")

    async def close(self) -> None:
        if self._closed:
            return
        await super().close()
        self.remote.stop()
        if self._claim is not None:
            _retire(list(self._threads), self._claim, keep=self.dirty)


def _retire(threads: list[ConnectionRunner], claim: Claim, *, keep: bool = False) -> None:
    """Once `threads` have closed the file, let it go; a revision file of this store's own is
    deleted unless it holds writes the remote lacks (`keep`)."""

    def wait_then_release() -> None:
        for thread in threads:
            thread.join(10)
        claim.release(remove=not keep and not claim.path.endswith(".local.sqlite"))

    threading.Thread(target=wait_then_release, name="pgqrs-s3-retire", daemon=True).start()


class S3StoreHandle:
    """The S3 side of a store: `sync`, `snapshot` and `state` (api.md §17). Get it with
    `pgqrs.as_s3(store)`."""

    def __init__(self, store: Any) -> None:
        db = getattr(store, "db", None)
        if not isinstance(db, S3Executor):
            backend = getattr(store, "backend", type(store).__name__)
            raise TypeError(f"store backend is '{backend}', expected 's3'")
        self._db = db

    @property
    def mode(self) -> DurabilityMode:
        return self._db.mode

    async def sync(self) -> None:
        """Upload local writes (semantics.md §15); `PgqrsError` containing "conflict" when the
        object was replaced by another writer."""
        await self._db.sync()

    async def snapshot(self) -> None:
        """Switch to a fresh download of the object; refused while writes are unsynced."""
        await self._db.snapshot()

    async def state(self) -> SyncState:
        return await self._db.state()

    def __repr__(self) -> str:
        return f"<pgqrs.S3StoreHandle {self._db.remote.uri} mode={self.mode}>"


def as_s3(store: Any) -> S3StoreHandle:
    """The S3 handle of `store`; TypeError for a store of another backend."""
    return S3StoreHandle(store)
