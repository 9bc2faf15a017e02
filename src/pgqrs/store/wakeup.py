"""In-process wake-ups: an enqueue or a status change lets idle poll loops skip their wait.

Only an optimisation; every loop still polls on its interval, so a missed wake-up costs latency,
never correctness.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Hashable


def worker_key(worker_id: int) -> tuple[str, int]:
    """The wake-up key of a worker: status changes wake its poll loop at once."""
    return ("worker", worker_id)


def queue_key(queue_id: int) -> tuple[str, int]:
    """The wake-up key of a queue: enqueues wake the loops polling it."""
    return ("queue", queue_id)


Mark = tuple[int, ...]


class Wakeups:
    """Waiters by key, and a count of notifications per key.

    A loop takes a `mark` before it looks for work and waits `since` that mark, so a
    notification that arrives after the look but before the wait still ends the wait at once.
    """

    def __init__(self) -> None:
        self._waiters: dict[Hashable, set[asyncio.Future[None]]] = {}
        self._counts: dict[Hashable, int] = {}
        self._epoch = 0  # bumped by notify_all

    def mark(self, keys: tuple[Hashable, ...]) -> Mark:
        return (self._epoch, *(self._counts.get(key, 0) for key in keys))

    def notify(self, key: Hashable) -> None:
        self._counts[key] = self._counts.get(key, 0) + 1
        for future in self._waiters.pop(key, ()):
            if not future.done():
                future.set_result(None)

    def notify_all(self) -> None:
        """Wake every waiter (e.g. when notifications may have been missed)."""
        self._epoch += 1
        for key in list(self._waiters):
            self.notify(key)

    async def wait(
        self, keys: tuple[Hashable, ...], seconds: float, since: Mark | None = None
    ) -> None:
        """Return after `seconds`, or earlier when any of `keys` is notified (or already was,
        after the `since` mark)."""
        if since is not None and self.mark(keys) != since:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for key in keys:
            self._waiters.setdefault(key, set()).add(future)
        try:
            await asyncio.wait((future,), timeout=seconds)
        finally:
            for key in keys:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(future)
                    if not waiters:
                        del self._waiters[key]


# Stores of one process that open the same database share their wake-ups, so an enqueue in one
# wakes the poll loops of the others. Per event loop: futures must stay on their own loop.
_shared: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakValueDictionary[Hashable, Wakeups]
] = weakref.WeakKeyDictionary()


def shared_wakeups(scope: Hashable | None) -> Wakeups:
    """The wake-ups of the database named by `scope` on the running loop (None: a private one)."""
    if scope is None:
        return Wakeups()
    by_scope = _shared.setdefault(asyncio.get_running_loop(), weakref.WeakValueDictionary())
    wakeups = by_scope.get(scope)
    if wakeups is None:
        wakeups = by_scope[scope] = Wakeups()
    return wakeups
