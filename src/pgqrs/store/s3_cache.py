"""The local cache files of S3 stores (semantics.md §15): names, and who may use which file.

`stem` is `bucket/key` with every character outside `A-Z a-z 0-9 . _ -` replaced by `_`.
The working file `<stem>.local.sqlite` is shared by Local-mode stores of one config; a
downloaded revision `<stem>.<ETag>.sqlite` belongs to the one store that downloaded it. A store
claims its current file with an `flock` on `<file>.lock` (shared for the working file in Local
mode, exclusive otherwise), so a file in use is never overwritten or deleted, and two stores
never upload each other's local writes: a store that finds a name taken uses the next free
`<name>.<n>.sqlite`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import uuid
import weakref

from ..errors import PgqrsConnectionError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def sanitise(text: str) -> str:
    return _UNSAFE.sub("_", text)


class Claim:
    """A store's hold on one cache file; released by `release()` or when collected."""

    def __init__(self, path: str, fd: int, exclusive: bool) -> None:
        self.path = path
        self.exclusive = exclusive
        self._fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)

    @classmethod
    def take(cls, path: str, exclusive: bool) -> Claim | None:
        """Claim `path`, or None when another store holds it in a conflicting way."""
        while True:
            fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            # The lock file may have been removed by its last owner meanwhile: then this lock
            # guards nothing; take the new file instead.
            with contextlib.suppress(FileNotFoundError):
                if os.fstat(fd).st_ino == os.stat(f"{path}.lock").st_ino:
                    return cls(path, fd, exclusive)
            os.close(fd)

    def release(self, *, remove: bool = False) -> None:
        """Let the file go; with `remove` (exclusive claims only) delete it first."""
        if not self._finalizer.alive:
            return
        if remove and self.exclusive:
            for suffix in ("", "-journal", ".lock"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path + suffix)
        self._finalizer()


class CacheFiles:
    """The cache files of one object in one cache directory."""

    def __init__(self, cache_dir: str, bucket: str, key: str) -> None:
        self.dir = cache_dir
        self.stem = sanitise(f"{bucket}/{key}")

    def prepare(self) -> None:
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as err:
            raise PgqrsConnectionError(
                f"Database connection failed: cannot create s3_cache_dir: {err}"
            ) from err

    @property
    def working(self) -> str:
        return os.path.join(self.dir, f"{self.stem}.local.sqlite")

    def revision(self, etag: str) -> str:
        return os.path.join(self.dir, f"{self.stem}.{sanitise(etag)}.sqlite")

    def temporary(self) -> str:
        return os.path.join(self.dir, f"{self.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")

    def claim_working(self, exclusive: bool) -> Claim | None:
        return Claim.take(self.working, exclusive)

    def claim_free(self, path: str, first: int = 1) -> Claim:
        """An exclusive claim on `path` (from `first` = 2: skip it), or on the first free
        `<path minus .sqlite>.<n>.sqlite`.

        Whatever a free file holds is left over from a store that has gone (a crash): the
        caller replaces it, and its rollback journal is removed so SQLite never replays it.
        """
        base = path.removesuffix(".sqlite")
        n = first
        while True:
            candidate = path if n == 1 else f"{base}.{n}.sqlite"
            claim = Claim.take(candidate, exclusive=True)
            if claim is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{candidate}-journal")
                return claim
            n += 1
