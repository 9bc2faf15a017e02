"""In-process wake-ups: an enqueue or a status change lets idle poll loops skip their wait.

Only an optimisation; every loop still polls on its interval, so a missed wake-up costs latency,
never correctness.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable


class Wakeups:
    def __init__(self) -> None:
        self._waiters: dict[Hashable, set[asyncio.Future[None]]] = {}

    def notify(self, key: Hashable) -> None:
        for future in self._waiters.pop(key, ()):
            if not future.done():
                future.set_result(None)

    async def wait(self, keys: tuple[Hashable, ...], seconds: float) -> None:
        """Return after `seconds`, or earlier when any of `keys` is notified."""
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
