"""Cron schedules (semantics.md §17, beyond pgqrs), on every backend.

Time is injected: the store's clock says when a schedule is created (its first tick is the
next after that) and `Scheduler.run_once(now)` says when the scheduler looks. Nothing sleeps
to make a tick come.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pgqrs
from pgqrs.cron import Cron, due_ticks
from pgqrs.tables import messages as message_rows
from tests.support.clocks import FixedClock
from tests.support.target import StoreFactory, Target
from tests.support.waiting import eventually

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


async def live(store: pgqrs.Store, queue: str) -> list[tuple[Any, str | None]]:
    """(payload, dedup key) of every unarchived message of `queue`, by id."""
    queue_id = (await store.get_queue(queue)).id
    rows = await message_rows.browse_rows(store.db, queue_id, which="live", now=None, limit=10_000)
    out = []
    for message in await store.messages.read(store.db, rows):
        _, key, _ = await message_rows.options(store.db, message.id)
        out.append((message.payload, key))
    return out


@pytest.fixture
async def jobs(store: pgqrs.Store) -> str:
    store.clock = FixedClock(T0)
    await store.queue("jobs")
    return "jobs"


async def test_cron_create_list_pause_resume_delete(store: pgqrs.Store, jobs: str) -> None:
    admin = pgqrs.admin(store)
    made = await admin.create_schedule("tick", "*/10 * * * * *", queue=jobs, payload={"n": 1})
    assert made == pgqrs.ScheduleInfo(
        name="tick",
        cron="*/10 * * * * *",
        timezone="UTC",
        queue="jobs",
        payload={"n": 1},
        workflow=None,
        input=None,
        catch_up=0,
        paused=False,
        next_fire_at=iso(T0 + timedelta(seconds=10)),
        last_fire_at=None,
        created_at=iso(T0),
    )
    nightly = await admin.create_schedule(
        "nightly", "0 3 * * *", queue=jobs, timezone="Europe/Berlin", catch_up=2
    )
    assert nightly.payload == {}
    assert nightly.next_fire_at == "2026-06-02T01:00:00+00:00"  # 03:00 CEST
    assert [s.name for s in await admin.list_schedules()] == ["nightly", "tick"]
    assert await admin.get_schedule("tick") == made

    paused = await admin.pause_schedule("tick")
    assert paused.paused
    assert paused.next_fire_at == made.next_fire_at
    store.clock = FixedClock(T0 + timedelta(seconds=95))
    resumed = await admin.resume_schedule("tick")
    assert not resumed.paused
    assert resumed.next_fire_at == iso(T0 + timedelta(seconds=100))  # ticks while paused: gone
    assert await admin.resume_schedule("tick") == resumed  # not paused: unchanged

    assert await admin.delete_schedule("tick") is True
    assert await admin.delete_schedule("tick") is False
    with pytest.raises(pgqrs.NotFoundError, match="Schedule 'tick' not found"):
        await admin.get_schedule("tick")
    with pytest.raises(pgqrs.NotFoundError):
        await admin.pause_schedule("tick")
    assert [s.name for s in await admin.list_schedules()] == ["nightly"]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "says"),
    [
        (("s", "* * * *"), {"queue": "jobs"}, pgqrs.ValidationError, "has 4 fields; give 5"),
        (("s", "61 * * * *"), {"queue": "jobs"}, pgqrs.ValidationError, "Bad minute"),
        (("s", "* * * * * * *"), {"queue": "jobs"}, pgqrs.ValidationError, "has 7 fields"),
        (("s", "0 * * * *"), {"queue": "jobs", "timezone": "Mars/Olympus"}, pgqrs.ValidationError,
         "unknown time zone 'Mars/Olympus'"),
        (("s", "0 * * * *"), {"queue": "nope"}, pgqrs.QueueNotFoundError, "Queue 'nope' not found"),
        (("s", "0 * * * *"), {}, pgqrs.ValidationError, "needs a queue or a workflow, got neither"),
        (("s", "0 * * * *"), {"queue": "jobs", "workflow": "w"}, pgqrs.ValidationError,
         "got both"),
        (("s", "0 * * * *"), {"queue": "jobs", "input": 1}, pgqrs.ValidationError,
         "pass payload=... instead"),
        (("s", "0 * * * *"), {"queue": "jobs", "catch_up": -1}, pgqrs.ValidationError,
         "catch_up must be from 0"),
        (("s", "0 * * * *"), {"queue": "jobs", "catch_up": 1.5}, pgqrs.ValidationError,
         "catch_up must be an int"),
        (("bad name", "0 * * * *"), {"queue": "jobs"}, pgqrs.ValidationError,
         "invalid schedule name 'bad name'"),
        (("", "0 * * * *"), {"queue": "jobs"}, pgqrs.ValidationError, "must be 1-200"),
        (("s", "0 * * * *"), {"workflow": "missing"}, pgqrs.NotFoundError,
         "Workflow 'missing' not found"),
        (("s", "0 * * * *"), {"queue": "jobs", "payload": {"k": "x" * 2000}},
         pgqrs.ValidationError, "String length 2000 exceeds limit 1024"),
    ],
)  # fmt: skip
async def test_cron_bad_arguments_write_nothing(
    store: pgqrs.Store,
    jobs: str,
    args: tuple[str, str],
    kwargs: dict[str, Any],
    error: type[Exception],
    says: str,
) -> None:
    admin = pgqrs.admin(store)
    with pytest.raises(error, match=re.escape(says)):
        await admin.create_schedule(*args, **kwargs)
    assert await admin.list_schedules() == []


async def test_cron_duplicate_name_is_refused(store: pgqrs.Store, jobs: str) -> None:
    admin = pgqrs.admin(store)
    first = await admin.create_schedule("s", "0 * * * *", queue=jobs)
    with pytest.raises(pgqrs.ValidationError, match="schedule 's' already exists"):
        await admin.create_schedule("s", "*/5 * * * *", queue=jobs)
    assert await admin.list_schedules() == [first]


def test_cron_next_tick_with_seconds_and_dst() -> None:
    every_15s = Cron.of("*/15 * * * * *")
    assert every_15s.next_after(T0) == T0 + timedelta(seconds=15)
    assert every_15s.next_after(T0 + timedelta(seconds=14, microseconds=999_999)) == (
        T0 + timedelta(seconds=15)
    )
    berlin = Cron.of("30 2 * * *", "Europe/Berlin")
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist and fires at the gap's end.
    spring = datetime(2026, 3, 28, 12, tzinfo=UTC)
    assert berlin.next_after(spring) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert berlin.next_after(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == datetime(
        2026, 3, 30, 0, 30, tzinfo=UTC
    )
    # 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice and fires once.
    autumn = datetime(2026, 10, 24, 12, tzinfo=UTC)
    first = berlin.next_after(autumn)
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert berlin.next_after(first) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    # Started inside the repeated hour (after the first 02:30), the next tick is still later.
    assert berlin.next_after(datetime(2026, 10, 25, 1, 10, tzinfo=UTC)) == datetime(
        2026, 10, 26, 1, 30, tzinfo=UTC
    )
    # Hourly in New York across its spring gap: the UTC hours stay one apart.
    hourly = Cron.of("0 * * * *", "America/New_York")
    ticks = [datetime(2026, 3, 8, 5, 30, tzinfo=UTC)]
    for _ in range(4):
        ticks.append(hourly.next_after(ticks[-1]))
    assert [t.hour for t in ticks[1:]] == [6, 7, 8, 9]


async def test_cron_ticks_fire_once_each(store: pgqrs.Store, jobs: str) -> None:
    admin = pgqrs.admin(store)
    await admin.create_schedule("tick", "*/10 * * * * *", queue=jobs, payload={"hello": 1})
    scheduler = pgqrs.Scheduler(store)
    assert await scheduler.run_once(T0 + timedelta(seconds=9)) == []  # not due yet
    tick = T0 + timedelta(seconds=10)
    [fired] = await scheduler.run_once(tick + timedelta(milliseconds=3))
    assert (fired.schedule, fired.tick) == ("tick", iso(tick))
    assert await scheduler.run_once(tick + timedelta(milliseconds=5)) == []  # fired already
    [again] = await scheduler.run_once(tick + timedelta(seconds=10))
    assert again.tick == iso(tick + timedelta(seconds=10))
    assert await live(store, jobs) == [
        ({"hello": 1}, f"schedule:tick:{iso(tick)}"),
        ({"hello": 1}, f"schedule:tick:{iso(tick + timedelta(seconds=10))}"),
    ]
    info = await admin.get_schedule("tick")
    assert info.last_fire_at == again.tick
    assert info.next_fire_at == iso(tick + timedelta(seconds=20))


@pytest.mark.parametrize(
    ("catch_up", "expected_hours"), [(0, []), (1, [15]), (2, [14, 15]), (10, [13, 14, 15])]
)
async def test_cron_missed_ticks_skip_or_catch_up(
    store: pgqrs.Store, jobs: str, catch_up: int, expected_hours: list[int]
) -> None:
    admin = pgqrs.admin(store)
    await admin.create_schedule("hourly", "0 * * * *", queue=jobs, catch_up=catch_up)
    # Nothing ran from 12:00 until 15:40: ticks 13:00, 14:00 and 15:00 were missed.
    now = T0 + timedelta(hours=3, minutes=40)
    fired = await pgqrs.Scheduler(store).run_once(now)
    assert [datetime.fromisoformat(f.tick).hour for f in fired] == expected_hours
    info = await admin.get_schedule("hourly")
    assert info.next_fire_at == iso(T0 + timedelta(hours=4))
    assert info.last_fire_at == (fired[-1].tick if fired else None)
    assert len(await live(store, jobs)) == len(expected_hours)


def test_cron_a_late_tick_within_grace_is_on_time() -> None:
    cron = Cron.of("0 * * * *")
    late = T0 + timedelta(hours=2, seconds=30)  # 14:00 is 30 s late, 13:00 missed
    fired, after = due_ticks(cron, T0 + timedelta(hours=1), late, catch_up=0, grace=60)
    assert fired == [T0 + timedelta(hours=2)]
    assert after == T0 + timedelta(hours=3)
    fired, _ = due_ticks(cron, T0 + timedelta(hours=1), late, catch_up=1, grace=60)
    assert fired == [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    fired, _ = due_ticks(cron, T0 + timedelta(hours=1), late, catch_up=0, grace=10)
    assert fired == []


async def test_cron_paused_schedules_never_fire(store: pgqrs.Store, jobs: str) -> None:
    admin = pgqrs.admin(store)
    await admin.create_schedule("tick", "* * * * * *", queue=jobs, catch_up=100)
    await admin.pause_schedule("tick")
    scheduler = pgqrs.Scheduler(store)
    for seconds in range(1, 30, 7):
        assert await scheduler.run_once(T0 + timedelta(seconds=seconds)) == []
    assert await live(store, jobs) == []
    store.clock = FixedClock(T0 + timedelta(seconds=30, milliseconds=500))
    await admin.resume_schedule("tick")
    # catch_up does not bring back the ticks of the pause: the first is the one after resuming.
    fired = await scheduler.run_once(T0 + timedelta(seconds=31, milliseconds=1))
    assert [f.tick for f in fired] == [iso(T0 + timedelta(seconds=31))]


@pytest.mark.backends("sqlite", "postgres", "turso")  # S3: one writer per object (§16)
async def test_cron_two_schedulers_racing_enqueue_each_tick_once(
    store: pgqrs.Store, jobs: str, make_store: StoreFactory
) -> None:
    await pgqrs.admin(store).create_schedule("tick", "* * * * * *", queue=jobs, catch_up=5)
    schedulers = [pgqrs.Scheduler(await make_store()) for _ in range(2)]
    fired: list[pgqrs.FiredTick] = []
    for second in range(1, 21):
        now = T0 + timedelta(seconds=second, milliseconds=2)
        for found in await asyncio.gather(*(s.run_once(now) for s in schedulers)):
            fired += found
    assert sorted(f.tick for f in fired) == [iso(T0 + timedelta(seconds=s)) for s in range(1, 21)]
    keys = [key for _, key in await live(store, jobs)]
    assert sorted(str(key) for key in keys) == sorted(f"schedule:tick:{f.tick}" for f in fired)
    assert len(keys) == 20


async def test_cron_workflow_target_triggers_a_run(store: pgqrs.Store, jobs: str) -> None:
    await pgqrs.workflow().name("report").store(store).create()
    admin = pgqrs.admin(store)
    info = await admin.create_schedule("daily", "0 6 * * *", workflow="report", input={"d": 1})
    assert (info.queue, info.workflow, info.input, info.payload) == (None, "report", {"d": 1}, None)
    [fired] = await pgqrs.Scheduler(store).run_once(T0 + timedelta(hours=18, seconds=1))
    assert fired.tick == "2026-06-02T06:00:00+00:00"
    consumer = await store.consumer("report")
    [message] = await consumer.dequeue()
    assert message.id == fired.message_id
    assert message.payload == {"d": 1}
    run = await pgqrs.run().message(message).store(store).execute()
    assert run.input == {"input": {"d": 1}}  # as every trigger's run records it


async def test_cron_a_missing_queue_lets_ticks_pass(store: pgqrs.Store, jobs: str) -> None:
    admin = pgqrs.admin(store)
    await store.queue("gone")
    await admin.create_schedule("orphan", "* * * * * *", queue="gone")
    await admin.delete_queue("gone")
    assert await pgqrs.Scheduler(store).run_once(T0 + timedelta(seconds=1)) == []
    info = await admin.get_schedule("orphan")
    assert info.next_fire_at == iso(T0 + timedelta(seconds=2))
    assert info.last_fire_at is None


async def test_cron_run_loop_fires_and_stops(store: pgqrs.Store) -> None:
    """`run()` with the store's own clock: the first tick of an every-second schedule comes
    within a second; `stop()` ends the loop, and cancelling it does too."""
    jobs = (await store.queue("jobs")).queue_name
    admin = pgqrs.admin(store)
    await admin.create_schedule("tick", "* * * * * *", queue=jobs)
    scheduler = pgqrs.Scheduler(store, max_wait=0.05)
    task = asyncio.create_task(scheduler.run())

    async def fired() -> bool:
        return bool(await live(store, jobs))

    await eventually(fired, within=5)
    scheduler.stop()
    async with asyncio.timeout(5):
        await task
    again = asyncio.create_task(scheduler.run())
    await asyncio.sleep(0)
    again.cancel()
    with pytest.raises(asyncio.CancelledError):
        await again


def test_cron_blocking_admin(target: Target) -> None:
    """`pgqrs.sync.Admin` has the schedule calls, blocking, with the same records."""
    import pgqrs.sync

    store = pgqrs.sync.connect_with(target.config())
    try:
        admin = store.admin()
        admin.install()
        store.queue("jobs")
        made = admin.create_schedule("tick", "*/5 * * * *", queue="jobs", catch_up=2)
        assert isinstance(made, pgqrs.ScheduleInfo)
        assert admin.list_schedules() == [made]
        assert admin.get_schedule("tick") == made
        assert admin.pause_schedule("tick").paused
        assert not admin.resume_schedule("tick").paused
        with pytest.raises(pgqrs.ValidationError, match="unknown time zone"):
            admin.create_schedule("x", "0 * * * *", queue="jobs", timezone="Nowhere/Land")
        assert admin.delete_schedule("tick") is True
        assert admin.list_schedules() == []
    finally:
        store.close()
