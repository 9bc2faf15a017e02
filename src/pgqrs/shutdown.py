"""`run_worker`: a poll loop that stops cleanly on SIGINT / SIGTERM.

The first signal interrupts the worker: the handler that is running finishes and its messages
are settled, then the loop suspends and the worker is stopped. A second signal does not wait:
the running handler is cancelled, its messages are released (visible again at once) and the
worker is stopped. This is the warm / cold shutdown pair Celery and procrastinate users know.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .errors import PgqrsError, StateTransitionError, SuspendedError
from .poller import Runner
from .tables import workers as rows
from .tables.workers import INTERRUPTED, POLLING, STOPPED, SUSPENDED

if TYPE_CHECKING:
    from .builders.dequeue import DequeueBuilder
    from .store.facade import Store

log = logging.getLogger("pgqrs")

DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stop:
    """What the signals asked for so far."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.task: asyncio.Future[Any] | None = None
        self.signals = 0
        self.interrupting: asyncio.Task[None] | None = None

    def on_signal(self, signum: int) -> None:
        self.signals += 1
        name = signal.Signals(signum).name
        wid = self.runner.consumer.worker_id
        if self.signals == 1:
            log.info("pgqrs: %s: worker %s finishes its current work, then stops", name, wid)
            self.interrupting = asyncio.ensure_future(self._interrupt())
        else:
            log.warning("pgqrs: %s again: worker %s releases its messages and stops now", name, wid)
            if self.task is not None:
                self.task.cancel()

    async def _interrupt(self) -> None:
        try:
            await self.runner.consumer.interrupt()
        except StateTransitionError:
            # Already suspended or stopped by someone else: the loop ends on its own.
            log.info(
                "pgqrs: worker %s was not running; nothing to interrupt",
                self.runner.consumer.worker_id,
            )


async def run_worker(
    store: Store,
    builder: DequeueBuilder,
    *,
    signals: Sequence[signal.Signals] = DEFAULT_SIGNALS,
) -> None:
    """Run `builder`'s poll loop until SIGINT or SIGTERM, then stop the worker cleanly.

    First signal: `interrupt()`; the running handler finishes and its messages are settled,
    then the worker is suspended and shut down (`stopped`). Second signal: the handler is
    cancelled, its messages are released, and the worker is stopped at once. Returns normally
    after either. Any other end of the loop (the worker suspended by an admin, a database down
    for longer than `connection_timeout_seconds`) raises what the loop raised and leaves the
    worker as the loop left it.

    Signal handlers are installed on the running event loop for the duration of the call, so
    it must run in the main thread; pass `signals=()` to run without them (stop the worker
    with `interrupt()` instead).
    """
    settler = builder._check(store, "poll")
    if signals and threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "run_worker() handles signals, which only the main thread can do; "
            "pass signals=() to run it elsewhere and stop the worker with interrupt()"
        )
    runner = await builder._runner(store, settler)
    stop = _Stop(runner)
    with _handlers(signals, stop.on_signal):
        stop.task = task = asyncio.ensure_future(runner.poll())
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            # Cancelled from outside: the loop suspends the worker, as any cancelled loop does.
            task.cancel()
            await asyncio.wait((task,))
            raise
        finally:
            if stop.interrupting is not None:
                await asyncio.wait((stop.interrupting,))
        if stop.signals:
            await _stop_worker(runner)  # handlers stay: a late second signal changes nothing
    if task.cancelled():
        if stop.signals:
            return  # the second signal cancelled the loop
        raise asyncio.CancelledError
    error = task.exception()
    assert error is not None  # the poll loop never returns normally
    if stop.signals and isinstance(error, SuspendedError):
        return
    raise error


async def _stop_worker(runner: Runner) -> None:
    """Leave the worker `stopped` with nothing held; an ephemeral one the loop already did."""
    if runner.ephemeral:
        return
    consumer = runner.consumer
    try:
        # Interrupts and cancellation leave the worker `suspended`, a loop that failed after
        # the signal leaves it `ready`: both may shut down. `stopped` means reclaimed already.
        status = await rows.status(runner.store.db, consumer.worker_id)
        if status in (POLLING, INTERRUPTED):
            await rows.try_transition(
                runner.store.db,
                consumer.worker_id,
                SUSPENDED,
                (POLLING, INTERRUPTED),
                runner.wall_time(),
            )
        if status != STOPPED:
            await consumer.shutdown(release=True)
    except PgqrsError:
        log.warning("pgqrs: could not stop worker %s cleanly", consumer.worker_id, exc_info=True)


@contextlib.contextmanager
def _handlers(signals: Sequence[signal.Signals], callback: Callable[[int], None]) -> Iterator[None]:
    """Route `signals` to `callback` on the running loop; put the previous handlers back after."""
    if not signals:
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in signals}
    installed: list[signal.Signals] = []
    try:
        for sig in signals:
            try:
                loop.add_signal_handler(sig, callback, int(sig))
            except NotImplementedError:  # Windows event loops: the plain signal module
                signal.signal(sig, lambda n, _f: loop.call_soon_threadsafe(callback, n))
            installed.append(sig)
        yield
    finally:
        for sig in installed:
            with contextlib.suppress(NotImplementedError, ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
            handler = previous[sig]
            if handler is not None:
                signal.signal(sig, handler)
