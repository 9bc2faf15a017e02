"""A cancellation that lands in the same loop turn as the awaited call completes must still
cancel. On Python 3.11 `asyncio.wait_for` drops it and returns the result instead; a poll loop
cancelled that way ran on forever (seen in CI on S3, whose every read is a bounded HTTP call).

The race is made deterministic: the call's future is completed and the task cancelled before
the task gets to run again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pgqrs import _cancel
from pgqrs.store.s3_remote import Remote


class _HandOver:
    """Stands in for the store's worker thread: the test completes each call itself."""

    def __init__(self) -> None:
        self.pending: asyncio.Future[Any] | None = None

    def call(self, fn: Any) -> asyncio.Future[Any]:
        self.pending = asyncio.get_running_loop().create_future()
        return self.pending


async def _started(task: asyncio.Task[Any]) -> None:
    for _ in range(10):  # a few loop turns: the task reaches its first await
        await asyncio.sleep(0)
    assert not task.done()


async def test_a_cancel_as_an_s3_call_completes_still_cancels() -> None:
    pytest.importorskip("boto3")
    remote = Remote("bucket", "key.sqlite", timeout=5)
    remote.stop()
    thread = _HandOver()
    remote._thread = thread  # type: ignore[assignment]
    task = asyncio.create_task(remote._call("head", lambda client: None))
    await _started(task)
    assert thread.pending is not None
    thread.pending.set_result("etag")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancel_as_poll_loop_cleanup_completes_still_cancels() -> None:
    cleanup: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(_cancel.cleanup(cleanup))
    await _started(task)
    cleanup.set_result(None)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
