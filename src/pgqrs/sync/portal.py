"""The portal: one daemon thread per sync store running a private event loop, calls into it
from any thread, and how it closes (by `close()`, when its store is collected, at exit).

Why a portal and not a loop per thread: docs/decisions.md, "Features (issue 12)".
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar, cast

from ..client import Store as AsyncStore
from ..store.threads import closed

T = TypeVar("T")

# At interpreter exit, stores nobody closed get this long (in all) to stop their producers and
# close their connections; then the daemon threads are left to die with the process.
EXIT_GRACE_SECONDS = 5.0


class _Call:
    """One call through the portal: the coroutine, the lock its caller blocks on, and the
    outcome, handed over when the loop releases that lock."""

    __slots__ = ("cancelled", "coro", "error", "result", "task", "waiter")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiter: threading.Lock) -> None:
        self.coro = coro
        self.waiter = waiter
        self.task: asyncio.Task[None] | None = None
        self.cancelled = False
        self.result: Any = None
        self.error: BaseException | None = None

    def start(self, loop: asyncio.AbstractEventLoop, running: set[_Call]) -> None:  # on the loop
        if self.cancelled:
            self.coro.close()
            self.error = asyncio.CancelledError()
            self.waiter.release()
            return
        running.add(self)
        self.task = loop.create_task(self._run(running))

    async def _run(self, running: set[_Call]) -> None:  # on the loop
        try:
            self.result = await self.coro
        except BaseException as err:  # every outcome goes to the caller, the loop lives on
            self.error = err
        finally:
            # Released at the end of the task's last step: no extra turn of the loop.
            running.discard(self)
            self.waiter.release()

    def abort(self) -> None:
        """The portal stopped before this call's task ever ran (closed under it)."""
        self.coro.close()
        self.error = closed()
        self.waiter.release()

    def cancel(self) -> None:  # on the loop
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()

    def outcome(self) -> Any:
        error = self.error
        if error is not None:
            self.error = None  # no cycle through the traceback
            raise error
        return self.result


class Portal:
    """One daemon thread running a private event loop. `call` runs a coroutine there and
    blocks the calling thread until it has ended; any number of threads may call at once.

    A call costs one `call_soon_threadsafe`, one task and one lock release: the caller blocks
    on a lock of its own thread, reused from call to call (measured: half the cost of
    `run_coroutine_threadsafe(...).result()`, which builds a concurrent Future and a
    Condition per call; docs/decisions.md, "Features (issue 12)")."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._closing = False
        self._done: concurrent.futures.Future[None] | None = None
        self._waiters = threading.local()  # per thread: free locks, each held (acquired)
        self._running: set[_Call] = set()  # calls whose task has not ended (loop only)
        # Run on the loop by close(): set once the store is open (stop producers, close it).
        self.cleanup: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._thread = threading.Thread(target=self._serve, name="pgqrs-sync", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    def _serve(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            # A call still running when the portal stops (one racing with close()) is
            # cancelled, so its caller hears "Store is closed" instead of waiting forever.
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            for job in list(self._running):  # cancelled before their first step
                job.abort()
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.get_ident() == self._thread.ident:
            coro.close()
            raise RuntimeError(
                "pgqrs.sync called from its own store's event loop would wait for itself: "
                "await the async API there (Store.aio)"
            )
        free: list[threading.Lock] | None = getattr(self._waiters, "free", None)
        if free is None:
            free = self._waiters.free = []
        # Popped, not shared: a signal handler calling in while this thread waits gets its own.
        waiter = free.pop() if free else _held_lock()
        job = _Call(coro, waiter)
        try:
            with self._lock:
                if self._closing:
                    coro.close()
                    raise closed()
                self._loop.call_soon_threadsafe(job.start, self._loop, self._running)
            waiter.acquire()
        except BaseException:
            # Refused, or the wait was interrupted (KeyboardInterrupt, an exception from a
            # signal handler): the call is cancelled on the loop rather than left running
            # unobserved (cancelling one that never started changes nothing). Its lock may be
            # released later, so it is not reused.
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs
                self._loop.call_soon_threadsafe(job.cancel)
            raise
        free.append(waiter)
        try:
            return cast(T, job.outcome())
        except asyncio.CancelledError:
            if self._closing:  # cancelled by close(): the store is gone
                raise closed() from None
            raise

    def check_caller(self) -> None:
        """For a call that runs in the calling thread instead (`connection=`): refused where
        `call` refuses, on the portal's own thread and once the store is closing."""
        if threading.get_ident() == self._thread.ident:
            raise RuntimeError(
                "pgqrs.sync called from its own store's event loop would block it: "
                "await the async API there (Store.aio)"
            )
        if self._closing:
            raise closed()

    def _begin_close(self) -> tuple[concurrent.futures.Future[None], bool]:
        """Refuse new calls, run `cleanup` on the loop, then stop the loop (once); the
        cleanup's future, and whether this call began it."""
        with self._lock:
            first = self._done is None
            if self._done is None:
                self._closing = True
                self._done = asyncio.run_coroutine_threadsafe(self._finish(), self._loop)
            return self._done, first

    async def _finish(self) -> None:
        try:
            if self.cleanup is not None:
                await self.cleanup()
        finally:
            # Scheduled, not called: the loop first hands this task's outcome to close().
            asyncio.get_running_loop().call_soon(self._loop.stop)

    def close(self) -> None:
        """Clean up and stop; waits for the thread. The first close raises what the cleanup
        raised; later ones return once the thread has ended."""
        if threading.get_ident() == self._thread.ident:
            raise RuntimeError("a pgqrs.sync store cannot be closed from its own event loop")
        done, first = self._begin_close()
        try:
            if first:
                done.result()
        finally:
            self._thread.join()

    def abandon(self) -> None:
        """The store was garbage-collected unclosed: clean up in the background, wait for
        nothing (this may run in any thread, the portal's own included)."""
        if not self._loop.is_closed():
            self._begin_close()

    def join(self, seconds: float) -> None:
        if threading.get_ident() != self._thread.ident:
            self._thread.join(max(seconds, 0.0))


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


_LIVE: weakref.WeakSet[Portal] = weakref.WeakSet()


class _Probe:
    pass


# The executors' `weakref.finalize`s stop their threads at exit, and a store closing at exit
# needs them: weakref's exit hook is registered (by a finalizer made here) before ours, so
# ours runs first (atexit runs hooks in reverse order of registration).
weakref.finalize(_Probe(), int)


@atexit.register
def _close_at_exit() -> None:
    """Close what is still open, within EXIT_GRACE_SECONDS in all; never blocks exit longer
    (the threads are daemons)."""
    deadline = time.monotonic() + EXIT_GRACE_SECONDS
    portals = [p for p in list(_LIVE) if not p._loop.is_closed()]
    for portal in portals:
        try:
            portal._begin_close()
        except RuntimeError:  # its loop has already stopped
            continue
    for portal in portals:
        portal.join(deadline - time.monotonic())


# -- what the wrappers share ----------------------------------------------------------------


class Owner(Protocol):
    """What a wrapper holds of its sync store: the portal its calls go through, and the async
    store. Holding the store (not only its portal) keeps it, and so its thread, alive as long
    as the wrapper."""

    @property
    def _portal(self) -> Portal: ...

    @property
    def aio(self) -> AsyncStore: ...


class Delegate:
    """A wrapper of a library object: its calls run on the owning store's portal."""

    __slots__ = ("_owner",)

    _owner: Owner

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._owner._portal.call(coro)
