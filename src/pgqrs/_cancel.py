"""Awaiting database work so that a cancellation never leaves it half-done.

A cancelled `await` does not stop what it waited for: the SQLite writer thread still runs the
statement, PostgreSQL may commit a statement whose reply was never read. So work whose effect
matters (a claim, a registration, a cleanup) runs in a task of its own; a cancelled caller waits
for it to finish (within `CLEANUP_SECONDS`), undoes what it did when asked to, and only then
sees its `CancelledError`. See docs/guarantees.md, "Cancellation".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger("pgqrs")

T = TypeVar("T")

# How long a cancelled caller still waits for its work (and the undo) to finish.
CLEANUP_SECONDS = 5.0

Undo = Callable[[T], Awaitable[object]]

# Work still running after its caller gave up waiting: kept alive until it ends.
_orphans: set[asyncio.Future[Any]] = set()


async def complete(work: Awaitable[T], undo: Undo[T] | None = None) -> T:
    """Await `work` to its end even if the caller is cancelled meanwhile.

    On a cancellation, `work` is left running; once it has finished, `undo(result)` is run
    when `work` succeeded (a claim gives its rows back, a registration stops its worker), and
    the cancellation is raised. Work that is still running after `CLEANUP_SECONDS` is left to
    finish on its own (and undone then).
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled():
            raise  # the work itself was cancelled, not only our wait for it
        await _settle_after_cancel(task, undo)
        raise


async def _settle_after_cancel(task: asyncio.Future[T], undo: Undo[T] | None) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CLEANUP_SECONDS
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            _undo_when_done(task, undo)
            return
        try:
            await asyncio.wait((task,), timeout=remaining)
        except asyncio.CancelledError:
            continue  # cancelled again: the cleanup still gets its bounded time
    if task.cancelled() or task.exception() is not None or undo is None:
        return
    undoing = asyncio.ensure_future(undo(task.result()))
    try:
        await asyncio.wait((undoing,), timeout=max(0.0, deadline - loop.time()))
    except asyncio.CancelledError:
        pass
    if undoing.done():
        _log_failure(undoing)
    else:
        keep(undoing)


def _undo_when_done(task: asyncio.Future[T], undo: Undo[T] | None) -> None:
    """Leave slow work to finish by itself; undo it then."""
    keep(task)

    def finished(done: asyncio.Future[T]) -> None:
        if done.cancelled() or done.exception() is not None or undo is None:
            return
        keep(asyncio.ensure_future(undo(done.result())))

    task.add_done_callback(finished)


def keep(future: asyncio.Future[Any]) -> None:
    """Keep `future` alive until it is done, then retrieve its outcome (a failure is logged in
    one line): no "Task exception was never retrieved" from work nobody awaits."""
    _orphans.add(future)

    def forget(done: asyncio.Future[Any]) -> None:
        _orphans.discard(done)
        _log_failure(done)

    future.add_done_callback(forget)


def _log_failure(future: asyncio.Future[Any]) -> None:
    """Retrieve the outcome (no "exception was never retrieved"); log a failure in one line."""
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        log.warning("cleanup failed: %s", error)


async def cleanup(work: Awaitable[Any]) -> None:
    """Run cleanup work to its end, within `CLEANUP_SECONDS`, even if the caller is cancelled
    (again) meanwhile; a failure is logged in one line, never raised (the caller is already on
    its way out). A cancellation that arrived meanwhile is raised afterwards."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CLEANUP_SECONDS
    interrupted = False
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning("cleanup still running after %ss; left to finish", CLEANUP_SECONDS)
            keep(task)
            break
        try:
            await asyncio.wait((task,), timeout=remaining)
        except asyncio.CancelledError:
            interrupted = True
    if task.done():
        _log_failure(task)
    if interrupted:
        raise asyncio.CancelledError
