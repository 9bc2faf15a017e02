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
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import PgqrsError, StateTransitionError, SuspendedError
from ..tables import workers as rows
from ..tables.workers import INTERRUPTED, POLLING, STOPPED, SUSPENDED
from ..validation import check_some_builders
from .loop import Runner

if TYPE_CHECKING:
    from ..tables.context import Context
    from .builder import BaseDequeueBuilder

log = logging.getLogger("pgqrs")

DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# Signals that arrived before `run_worker` installed its handlers (see `catch_signals_early`).
_early: list[int] = []


def catch_signals_early(signals: Sequence[signal.Signals] = DEFAULT_SIGNALS) -> None:
    """Record SIGINT/SIGTERM from now on instead of dying of them: a process manager may stop
    a worker while it is still connecting or registering. `run_worker` then acts on what was
    recorded as soon as its loops start (a clean stop, exit status 0). `pgqrs run` calls this
    first thing; call it at the top of your own worker program for the same."""
    for sig in signals:
        signal.signal(sig, lambda signum, _frame: _early.append(signum))


class _Stop:
    """What the signals asked for so far, for every loop of the process."""

    def __init__(self, runners: Sequence[Runner]) -> None:
        self.runners = runners
        self.tasks: list[asyncio.Future[Any]] = []
        self.signals = 0
        self.requested = False  # a signal, or a sibling loop that ended on its own
        self.interrupting: list[asyncio.Task[None]] = []

    def on_signal(self, signum: int) -> None:
        self.signals += 1
        name = signal.Signals(signum).name
        ids = ", ".join(str(r.consumer.worker_id) for r in self.runners)
        who = f"worker {ids}" if len(self.runners) == 1 else f"workers {ids}"
        if self.signals == 1:
            log.info("%s: stopping %s once the current work is done", name, who)
            self.interrupt_all()
        else:
            log.warning("%s again: stopping %s now; unfinished messages are released", name, who)
            for task in self.tasks:
                task.cancel()

    def interrupt_all(self, ended: Collection[int] = ()) -> None:
        """Interrupt every loop but those that already `ended` (their workers stay as left)."""
        if self.requested:
            return
        self.requested = True
        self.interrupting = [
            asyncio.ensure_future(self._interrupt(runner))
            for n, runner in enumerate(self.runners)
            if n not in ended
        ]

    async def _interrupt(self, runner: Runner) -> None:
        try:
            await runner.consumer.interrupt()
        except StateTransitionError:
            # Already suspended or stopped by someone else: the loop ends on its own.
            log.info("worker %s was not running; nothing to interrupt", runner.consumer.worker_id)


async def run_worker(
    store: Context,
    builder: BaseDequeueBuilder,
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
    await run_workers(store, [builder], signals=signals)


async def run_workers(
    store: Context,
    builders: Sequence[BaseDequeueBuilder],
    *,
    signals: Sequence[signal.Signals] = DEFAULT_SIGNALS,
) -> None:
    """`run_worker` for several poll loops in one process (`pgqrs run --concurrency K`).

    A signal acts on every loop at once, as `run_worker` describes. When one loop ends for
    another reason, the others are stopped as on a first signal (warm) and that loop's error is
    raised once they all have ended: a supervisor then restarts the process as a whole.
    """
    check_some_builders(builders)
    settlers = [builder._check(store, "poll") for builder in builders]
    if signals and threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "run_worker() handles signals, which only the main thread can do; "
            "pass signals=() to run it elsewhere and stop the worker with interrupt()"
        )
    runners = [await b._runner(store, s) for b, s in zip(builders, settlers, strict=True)]
    stop = _Stop(runners)
    own: dict[int, BaseException] = {}  # loops that ended before any stop was asked for
    with _handlers(signals, stop.on_signal):
        stop.tasks = [asyncio.ensure_future(runner.poll()) for runner in runners]
        pending: set[asyncio.Future[Any]] = set(stop.tasks)
        if signals:
            while _early:  # arrived before the handlers: acted on now, in order
                stop.on_signal(_early.pop(0))
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if not stop.requested:
                    # A loop ended on its own (never a cancellation: that would be ours).
                    for task in done:
                        own[stop.tasks.index(task)] = _ending(task)
                    stop.interrupt_all(ended=own)  # the others follow it
        except asyncio.CancelledError:
            # Cancelled from outside: each loop suspends its worker, as any cancelled loop does.
            for task in stop.tasks:
                task.cancel()
            await asyncio.wait(stop.tasks)
            raise
        finally:
            if stop.interrupting:
                await asyncio.wait(stop.interrupting)
        if stop.requested:
            # Handlers stay installed meanwhile: a late second signal changes nothing.
            for n, runner in enumerate(runners):
                if n not in own:
                    await _stop_worker(runner)
    endings = [_ending(task) for task in stop.tasks]  # every one retrieved, none logged
    if own:
        raise own[min(own)]
    for error in endings:
        if isinstance(error, asyncio.CancelledError):
            if not stop.signals:
                raise error
            continue  # the second signal cancelled the loop
        if not isinstance(error, SuspendedError):
            raise error


def _ending(task: asyncio.Future[Any]) -> BaseException:
    """Why a poll loop ended: it never returns normally."""
    if task.cancelled():
        return asyncio.CancelledError()
    error = task.exception()
    assert error is not None
    return error


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
        log.warning("could not stop worker %s cleanly", consumer.worker_id, exc_info=True)


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
