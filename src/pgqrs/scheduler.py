"""`pgqrs.Scheduler`: enqueues the ticks of cron schedules, exactly once each however many
schedulers run (semantics.md §17).

No leader: every scheduler reads the due schedules and, per schedule, in one transaction,
moves `next_fire_at` on with a compare-and-set and enqueues the ticks only when its update
changed the row. Schedulers that lose the race change nothing and enqueue nothing. Each tick's
message also carries the deduplication key `schedule:<name>:<tick>` (semantics.md §7.8), a
second guard that costs nothing. `pgqrs run` runs one beside its workers.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Final

from ._clock import Clock, Time, format_time, parse_time
from .cron import Cron, due_ticks
from .errors import PgqrsError, ValidationError
from .records import FiredTick, ScheduleInfo
from .store.wakeup import queue_key
from .tables import messages, queues, schedules, workflows
from .tables.context import Context
from .validation import encode_json

__all__ = ["Scheduler"]

log = logging.getLogger("pgqrs.scheduler")

# A tick fired at most this late is on time; an older one was missed, and fires only within
# its schedule's `catch_up` (semantics.md §17.3).
DEFAULT_GRACE_SECONDS: Final = 60.0
# The longest a running scheduler sleeps: a schedule created meanwhile is noticed this soon.
DEFAULT_MAX_WAIT_SECONDS: Final = 1.0


def tick_key(name: str, tick: datetime) -> str:
    """The deduplication key of a schedule's tick."""
    return f"schedule:{name}:{format_time(tick)}"


class Scheduler:
    """Fires the due ticks of every schedule of a store.

    `run_once(now)` fires what is due at `now` (default: the clock's now) and returns it;
    `run()` does that until `stop()` or cancellation, sleeping until the earliest next tick
    (at most `max_wait` seconds). `clock` (default: the store's) says what "now" is;
    `grace_seconds` how late a tick may fire and still count as on time.
    """

    def __init__(
        self,
        store: Context,
        *,
        clock: Clock | None = None,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    ) -> None:
        if grace_seconds < 0 or max_wait <= 0:
            raise ValueError("grace_seconds must be >= 0 and max_wait > 0")
        self._store = store
        self._clock = clock
        self._grace = float(grace_seconds)
        self._max_wait = float(max_wait)
        self._stopping = asyncio.Event()
        self._last_error = ""

    def __repr__(self) -> str:
        return f"<pgqrs.Scheduler store={self._store!r}>"

    def now(self) -> datetime:
        return (self._clock or self._store.clock).now()

    async def run_once(self, now: Time | None = None) -> list[FiredTick]:
        """Fire every tick due at `now`; the ticks this scheduler enqueued, oldest first per
        schedule (those another scheduler fired are not in it)."""
        at = self.now() if now is None else parse_time(now)
        fired: list[FiredTick] = []
        for schedule in await schedules.due(self._store.db, at):
            fired += await self._fire(schedule, at)
        return fired

    async def run(self) -> None:
        """Fire ticks until `stop()` is called or the task is cancelled. A failure (the
        database away) is logged and retried after `max_wait`: it never ends the loop."""
        self._stopping.clear()
        while not self._stopping.is_set():
            try:
                await self.run_once()
                wait = await self._wait_seconds()
            except Exception as err:  # the database away, a bug: logged, the loop goes on
                self._report(err)
                wait = self._max_wait
            try:
                async with asyncio.timeout(wait):
                    await self._stopping.wait()
            except TimeoutError:
                pass

    def stop(self) -> None:
        """End `run()` at its next wait (a firing under way completes)."""
        self._stopping.set()

    async def _wait_seconds(self) -> float:
        upcoming = await schedules.next_fire(self._store.db)
        if upcoming is None:
            return self._max_wait
        until = (upcoming - self.now()).total_seconds()
        return min(self._max_wait, max(until, 0.0))

    def _report(self, err: Exception) -> None:
        """A failure logged once while it repeats; one not of pgqrs with its traceback."""
        text = f"{type(err).__name__}: {err}"
        level = logging.DEBUG if text == self._last_error else logging.WARNING
        trace = not isinstance(err, PgqrsError | OSError)
        log.log(level, "scheduler: %s (retrying)", text, exc_info=err if trace else None)
        self._last_error = text

    async def _fire(self, schedule: ScheduleInfo, now: datetime) -> list[FiredTick]:
        store, name = self._store, schedule.name
        expected = parse_time(schedule.next_fire_at)
        try:
            cron = Cron.of(schedule.cron, schedule.timezone)
        except ValidationError as err:  # its time zone is gone from this machine's database
            log.warning("schedule '%s' skipped by this scheduler: %s", name, err)
            return []
        ticks, after = due_ticks(cron, expected, now, catch_up=schedule.catch_up, grace=self._grace)
        target = await self._target(schedule)
        async with store.db.transaction() as db:
            last = ticks[-1] if ticks and target is not None else None
            if not await schedules.advance(db, name, expected, after, last):
                return []  # another scheduler fired it, or it was paused, resumed or replaced
            if not ticks or target is None:
                return []
            queue_id, text = target
            keys = [tick_key(name, tick) for tick in ticks]
            ids = await messages.enqueue_keyed(
                db, queue_id, None, [text] * len(ticks), keys, store.sql_now()
            )
        store.wakeups.notify(queue_key(queue_id))
        fired = [
            FiredTick(name, format_time(tick), int(mid))
            for tick, mid in zip(ticks, ids, strict=True)
            if not mid.duplicate
        ]
        for tick in fired:
            log.info("schedule '%s' fired tick %s: message %d", name, tick.tick, tick.message_id)
        return fired

    async def _target(self, schedule: ScheduleInfo) -> tuple[int, str] | None:
        """The queue id and stored text of the schedule's message; None (logged) when its
        queue or workflow no longer exists: its ticks pass without a message."""
        db = self._store.db
        if schedule.workflow is not None:
            definition = await workflows.find_by_name(db, schedule.workflow)
            if definition is not None:
                self._store.messages.remember_workflow_queue(definition.queue_id)
                return definition.queue_id, encode_json({"input": schedule.input})
            missing = f"workflow '{schedule.workflow}'"
        else:
            assert schedule.queue is not None
            found = await queues.find_by_name(db, schedule.queue)
            if found is not None:
                return found.id, encode_json(schedule.payload)
            missing = f"queue '{schedule.queue}'"
        log.warning("schedule '%s': %s does not exist; its due ticks pass", schedule.name, missing)
        return None
