"""Waiting for an observable event with a deadline (never a bare sleep as synchronisation)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pgqrs

HOUR_MS = 3_600_000  # a poll interval no test could wait out


async def eventually(
    check: Callable[[], Awaitable[Any]], *, within: float = 5.0, interval: float = 0.02
) -> Any:
    """Await `check()` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(interval)


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def file_appears(path: Path, *, within: float = 10.0) -> str:
    """The text of `path` once it exists and is not empty."""

    async def ready() -> str:
        return _text(path)

    text: str = await eventually(ready, within=within)
    return text


async def wait_until_polling(consumer: pgqrs.Consumer) -> None:
    """Until `consumer`'s poll loop has started."""

    async def polling() -> bool:
        return await consumer.status() == pgqrs.WorkerStatus.Polling

    await eventually(polling, within=10.0, interval=0.01)
