"""Stored times in every accepted form compare as times (issue 10, defect 10).

Readers accept timestamps written without a fraction, with a `T` separator, with `Z` or an
offset (rows from other programs, column defaults: semantics.md §5.1). On SQLite, Turso and S3
times are text, and text compares as time only in the fixed-width form the library writes: a
row whose lease ended a minute ago, written `...T...Z`, sorted after every time of its day and
was not claimable until the next UTC day. Each form now compares as the time it names.
PostgreSQL's timestamps are read as the server's text too (issue 16): they come back in the
API form and claims sort them as times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

import pgqrs
from tests.support.raw_db import RawDb
from tests.support.target import Target

FORMS: dict[str, Callable[[datetime], str]] = {
    "T and Z": lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    "T and +00:00": lambda t: t.isoformat(),
    "T and +02:00": lambda t: t.astimezone(timezone(timedelta(hours=2))).isoformat(),
    "no fraction": lambda t: t.strftime("%Y-%m-%d %H:%M:%S"),
    "space and Z": lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%fZ"),
}


# PostgreSQL's timestamptz has one form; the text forms are a matter of the SQLite-file backends.
pytestmark = pytest.mark.backends("sqlite", "turso", "s3")


@pytest.mark.parametrize("form", list(FORMS))
async def test_a_lease_written_in_any_form_ends_when_it_says(
    store: pgqrs.Store, queue: str, target: Target, form: str
) -> None:
    write = FORMS[form]
    now = datetime.now(UTC)
    ended, running = now - timedelta(minutes=1), now + timedelta(minutes=1)
    producer = await store.producer(queue)
    over_id, live_id = await producer.enqueue_batch(["lease over", "lease running"])
    raw = RawDb(target)
    owner = await store.consumer(queue)
    for mid, vt in ((over_id, ended), (live_id, running)):
        raw.query(
            "UPDATE {s}pgqrs_messages SET vt = ?, consumer_worker_id = ?, read_ct = 1 WHERE id = ?",
            [write(vt), owner.worker_id, mid],
        )
    metrics = await pgqrs.admin(store).queue_metrics(queue)
    assert (metrics.pending_messages, metrics.locked_messages) == (1, 1)
    claimed = await (await store.consumer(queue)).dequeue(5)
    assert [m.id for m in claimed] == [over_id]  # the running lease is not taken


async def test_a_heartbeat_written_in_another_form_is_judged_as_a_time(
    store: pgqrs.Store, queue: str, target: Target
) -> None:
    fresh = await store.consumer(queue)
    stale = await store.consumer(queue)
    now = datetime.now(UTC)
    raw = RawDb(target)
    # Both in the `T...Z` form: one beat a second ago, one an hour ago.
    for worker, beat in ((fresh, now - timedelta(seconds=1)), (stale, now - timedelta(hours=1))):
        raw.query(
            "UPDATE {s}pgqrs_workers SET heartbeat_at = ? WHERE id = ?",
            [beat.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), worker.worker_id],
        )
    await pgqrs.admin(store).reclaim_messages(older_than_seconds=60)
    assert (await fresh.status(), await stale.status()) == (
        pgqrs.WorkerStatus.Ready,
        pgqrs.WorkerStatus.Stopped,
    )


# -- PostgreSQL: timestamps read as the server's text (store/pg_types.py) ------------------------

# Microseconds whose text the server trims (`.1`, `.05`), drops (0) or keeps whole.
FRACTIONS = (100000, 50000, 0, 123456, 100001)


@pytest.mark.backends("postgres")
async def test_postgres_timestamps_read_in_the_api_form(
    store: pgqrs.Store, queue: str, target: Target
) -> None:
    producer = await store.producer(queue)
    ids = await producer.enqueue_batch([{"n": n} for n in range(len(FRACTIONS))])
    base = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    raw = RawDb(target)
    written = {}
    for mid, micro in zip(ids, FRACTIONS, strict=True):
        # Older than any enqueue of this test, in an order that the ids do not have.
        at = base - timedelta(seconds=1) + timedelta(microseconds=micro)
        written[mid] = at
        raw.query("UPDATE {s}pgqrs_messages SET enqueued_at = ? WHERE id = ?", [at, mid])
    messages = await store.get_messages()
    for mid, at in written.items():
        assert (await messages.get(mid)).enqueued_at == at.isoformat()
    claimed = await (await store.consumer(queue)).dequeue(len(ids))
    assert [m.id for m in claimed] == sorted(written, key=lambda mid: written[mid])
    assert [m.enqueued_at for m in claimed] == sorted(at.isoformat() for at in written.values())
    for m in claimed:
        assert m.vt is not None
        assert datetime.fromisoformat(m.vt) > written[m.id]
