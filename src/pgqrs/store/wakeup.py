"""In-process wake-ups: an enqueue or a status change lets idle poll loops skip their wait.

Only an optimisation; every loop still polls on its interval, so a missed wake-up costs latency,
never correctness.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


def worker_key(worker_id: int) -> tuple[str, int]:
    """The wake-up key of a worker: status changes wake its poll loop at once."""
    return ("worker", worker_id)


def queue_key(queue_id: int) -> tuple[str, int]:
    """The wake-up key of a queue: enqueues wake the loops polling it."""
    return ("queue", queue_id)


def run_key(message_id: int) -> tuple[str, int]:
    """The wake-up key of a workflow run (by its trigger message): `result()` waits on it for
    a terminal status."""
    return ("run", message_id)


Mark = tuple[int, ...]


# Keys remembered at most: a long-lived worker notifies a key per workflow run it finishes.
MAX_KEYS = 1024


class Wakeups:
    """Waiters by key, and when each key was last notified.

    A loop takes a `mark` before it looks for work and waits `since` that mark, so a
    notification that arrives after the look but before the wait still ends the wait at once.
    Notifications are numbered; a key's value only ever grows. Memory stays flat: past
    `MAX_KEYS` keys everything is forgotten and every key counts as notified just now, which
    can end a wait early (one extra look) but never lets one miss a notification.
    """

    def __init__(self) -> None:
        self._waiters: dict[Hashable, set[asyncio.Future[None]]] = {}
        self._last: dict[Hashable, int] = {}  # key -> number of its last notification
        self._seq = 0  # notifications so far
        self._floor = 0  # the value of every key not in `_last`
        self._epoch = 0  # bumped by notify_all

    def mark(self, keys: tuple[Hashable, ...]) -> Mark:
        return (self._epoch, *(self._last.get(key, self._floor) for key in keys))

    def notify(self, key: Hashable) -> None:
        self._seq += 1
        if len(self._last) >= MAX_KEYS and key not in self._last:
            self._last.clear()
            self._floor = self._seq
        self._last[key] = self._seq
        for future in self._waiters.pop(key, ()):
            if not future.done():
                future.set_result(None)

    def notify_all(self) -> None:
        """Wake every waiter (e.g. when notifications may have been missed)."""
        self._epoch += 1
        for key in list(self._waiters):
            self.notify(key)

    def remembered(self) -> int:
        """How many keys are remembered (flat however many were ever notified)."""
        return len(self._last)

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

    async def poll(
        self,
        keys: tuple[Hashable, ...],
        look: Callable[[], Awaitable[T | None]],
        every: float,
        within: float | None,
    ) -> T | None:
        """What `look` finds (not None), looking again every `every` seconds, or at once when
        any of `keys` is notified; None once `within` seconds (None: no limit) have passed."""
        deadline = None if within is None else time.monotonic() + within
        while True:
            mark = self.mark(keys)
            found = await look()
            if found is not None:
                return found
            pause = every
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                pause = min(pause, remaining)
            await self.wait(keys, pause, since=mark)


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
