"""Signals to a run and events from it (semantics.md §18.1-18.2).

A receive is a step (`__pgqrs_recv__:<topic>#n`): it consumes the oldest unconsumed signal of
its topic and records it as the step's result in one transaction, so a signal is consumed
exactly once and a run executed again gets the same one back. With none there, the run waits
(`RunWaitingError`): its trigger message is given back until the timeout, and `send_signal`
(workflows/messaging.py) wakes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .._clock import format_time, parse_time
from .._clock import seconds as timedelta_of
from ..errors import RunWaitingError
from ..records import Signal
from ..store.executor import Queryable
from ..tables import runs, steps, waits
from ..types import StepRecord, WorkflowStatus
from ..validation import encode_json, require_duration, validate_step_name
from .replay import Replay

if TYPE_CHECKING:
    from ..tables.context import Context


class Running(Protocol):
    """What the receives, events and children of a run need of its `Run` (which calls them)."""

    _store: Context
    _replay: Replay
    _current_time: datetime | None

    def id(self) -> int: ...

    def _notify(self) -> None: ...


RECV_PREFIX = "__pgqrs_recv__:"

# `get_event` re-reads at least this often; events set in this process wake it sooner.
EVENT_POLL_SECONDS = 0.5

Recheck = Callable[[Queryable], Awaitable[bool]]


def event_key(run_id: int) -> tuple[str, int]:
    """The in-process wake-up key of a run's events."""
    return ("event", run_id)


def waiting(run_id: int, what: str, until: datetime | None, recheck: Recheck) -> RunWaitingError:
    """The exception a waiting run raises; `recheck` tells the worker, inside the transaction
    that gives the message back, whether what it waits for has arrived meanwhile."""
    shown = None if until is None else format_time(until)
    detail = f" until {shown}" if shown else ""
    err = RunWaitingError(
        f"Run {run_id} waits for {what}{detail}",
        run_id=run_id,
        until=shown,
        waiting_for=what,
        resume_after=None,
    )
    err._pgqrs_recheck = recheck  # type: ignore[attr-defined]
    return err


def recheck_of(err: RunWaitingError) -> Recheck | None:
    found: Recheck | None = getattr(err, "_pgqrs_recheck", None)
    return found


async def take_step(run: Running, name: str) -> StepRecord:
    """Acquire a library-kept step of the run (never failed, so never ERROR); a cancelled run
    raises `WorkflowCancelledError` as `acquire_step` does."""
    store = run._store
    now = store.clock.now()
    record = await steps.acquire(store.db, run.id(), name, now, now)
    if record is None:
        run._notify()
        raise runs.cancelled(run.id())
    return record


async def recv(
    run: Running,
    topic: str,
    timeout: float | None,  # noqa: ASYNC109 (durable: it outlives this process)
    name: str | None,
) -> Signal | None:
    topic = validate_step_name(topic, "topic")
    wait = None if timeout is None else require_duration("timeout", timeout)
    step_name = validate_step_name(name) if name is not None else None
    step_name = step_name or run._replay.next_name(f"{RECV_PREFIX}{topic}")
    record = await take_step(run, step_name)
    if record.status == WorkflowStatus.Success:
        stored = record.output if isinstance(record.output, dict) else {}
        got = stored.get("signal")
        return Signal(**got) if isinstance(got, dict) else None
    store, run_id = run._store, run.id()
    until = None if wait is None else parse_time(record.created_at) + timedelta_of(wait)
    now = store.clock.now()
    current = run._current_time or now  # an injected time decides the timeout (tests, `at`)
    async with store.db.transaction() as db:
        signal = await waits.consume_signal(db, run_id, topic, step_name, now)
        timed_out = signal is None and until is not None and current >= until
        if signal is not None or timed_out:
            output = {"signal": asdict(signal)} if signal else {"timed_out": True}
            await steps.succeed(db, run_id, step_name, encode_json(output), now)
    if signal is not None or timed_out:
        return signal

    async def arrived(db: Queryable) -> bool:
        return await waits.signal_pending(db, run_id, topic)

    raise waiting(run_id, f"signal:{topic}", until, arrived)


async def set_event(run: Running, key: str, value: Any) -> None:
    key = validate_step_name(key, "event key")
    store = run._store
    await waits.set_event(store.db, run.id(), key, encode_json(value), store.clock.now())
    store.wakeups.notify(event_key(run.id()))
