"""Talking to a run from outside it (semantics.md §18.1-18.2): `send_signal` and `get_event`,
addressed by run id, `Run` or trigger message."""

from __future__ import annotations

from typing import Any

from ..errors import StateTransitionError
from ..records import Event
from ..store.wakeup import queue_key
from ..tables import runs, waits
from ..tables.context import Context
from ..types import QueueMessage
from ..validation import encode_json, require_duration, validate_step_name
from .run import Run
from .signals import EVENT_POLL_SECONDS, event_key


async def resolve_run(store: Context, target: object) -> int:
    """A run id from an id, a `Run`, or a trigger message (whose run is created if it has
    none yet, so a signal can be sent before the first delivery)."""
    if isinstance(target, Run):
        return target.id()
    if isinstance(target, QueueMessage):
        record = await runs.get_or_create(
            store.db, target.id, target.queue_id, target.raw_payload, store.clock.now()
        )
        return record.id
    if isinstance(target, bool) or not isinstance(target, int):
        raise TypeError(
            f"run must be a run id (int), a pgqrs.Run or a trigger message, "
            f"not {type(target).__name__}"
        )
    return target


async def send_signal(store: Context, target: object, topic: str, payload: Any) -> int:
    """Send `payload` to a run on `topic`; the signal's id. The run must not have finished."""
    topic = validate_step_name(topic, "topic")
    text = encode_json(payload)  # refused before anything is written
    run_id = await resolve_run(store, target)
    now = store.clock.now()
    async with store.db.transaction() as db:
        locked = await waits.lock_run(db, run_id)
        if locked is None:
            current = await runs.status(db, run_id)  # NotFoundError for a missing run
            raise StateTransitionError(
                f"Run {run_id} is {current.db}: signals go only to runs that have not finished"
            )
        signal_id = await waits.insert_signal(db, run_id, topic, text, now)
        woken = await waits.wake_message(db, locked[0], now)
    if woken is not None:
        store.wakeups.notify(queue_key(woken))
    return signal_id


async def get_event(
    store: Context,
    target: object,
    key: str,
    timeout: float | None,  # noqa: ASYNC109 (api.md §24, like `result(timeout)`)
) -> Event | None:
    """The run's event `key`, waiting up to `timeout` seconds (None: forever) for it to be
    set; None when the time ran out."""
    key = validate_step_name(key, "event key")
    wait_for = None if timeout is None else require_duration("timeout", timeout)
    run_id = await resolve_run(store, target)
    await runs.status(store.db, run_id)  # NotFoundError for a missing run
    keys = (event_key(run_id),)
    return await store.wakeups.poll(
        keys, lambda: waits.get_event(store.db, run_id, key), EVENT_POLL_SECONDS, wait_for
    )
