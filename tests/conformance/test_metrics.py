"""Metrics and health (semantics.md §14): exact counts per message state at an injected now, and
query plans that use the partial indexes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pgqrs
from pgqrs.store.migrate import latest_version
from pgqrs.tables import workers as worker_rows
from tests.support.bulk import expected_counts, fill
from tests.support.clocks import FixedClock, at
from tests.support.target import StoreFactory

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def iso(seconds: float) -> str:
    return t(seconds).isoformat()


class Scene:
    """A queue "jobs" holding 4 archived, 1 poison, 2 leased, 3 pending and 2 delayed
    messages at T0+3600 (the clock is moved by hand; claims use injected times)."""

    def __init__(self, store: pgqrs.Store) -> None:
        self.store = store

    def tick(self, seconds: float) -> None:
        self.store.clock = FixedClock(t(seconds))

    async def build(self) -> None:
        store = self.store
        self.tick(0)
        await store.queue("jobs")
        producer = await store.producer("jobs")
        self.consumer = consumer = await store.consumer("jobs")
        archived = await producer.enqueue_batch(["a1", "a2", "a3", "a4"])
        assert len(await consumer.dequeue_at(4, 30, t(1))) == 4
        self.tick(2)
        assert await consumer.archive_many(archived) == [True] * 4

        self.tick(10)
        poison = await producer.enqueue("poison")
        for attempt in range(5):  # max_read_ct claims, each lease lapsing unsettled
            claimed = await consumer.dequeue_at(1, 1, t(11 + 10 * attempt))
            assert [m.id for m in claimed] == [poison]

        self.tick(100)
        await producer.enqueue_batch(["l1", "l2"])
        assert len(await consumer.dequeue_at(2, 7200, t(100))) == 2  # leased until T0+7300

        self.tick(200)
        expired = await producer.enqueue("lease lapses at T0+230")
        assert [m.id for m in await consumer.dequeue_at(1, 30, t(200))] == [expired]
        self.tick(300)
        await producer.enqueue_batch(["p1", "p2"])

        self.tick(400)
        await producer.enqueue_delayed("d1", 7200)
        self.tick(401)
        await producer.enqueue_delayed("d2", 7200)


EXPECTED_AT_3600 = pgqrs.QueueMetrics(
    name="jobs",
    total_messages=12,
    pending_messages=3,
    delayed_messages=2,
    locked_messages=2,
    poison_messages=1,
    archived_messages=4,
    oldest_pending_message=iso(200),
    newest_message=iso(401),
)


async def test_queue_metrics_are_exact(store: pgqrs.Store) -> None:
    scene = Scene(store)
    await scene.build()
    admin = pgqrs.admin(store)
    queues = await store.get_queues()

    scene.tick(3600)
    assert await admin.queue_metrics("jobs") == EXPECTED_AT_3600
    assert await queues.metrics("jobs") == EXPECTED_AT_3600

    # Later, the two leases have lapsed (pending again) and the delays still run.
    scene.tick(7400)
    later = await admin.queue_metrics("jobs")
    assert (later.pending_messages, later.locked_messages, later.delayed_messages) == (5, 0, 2)
    assert later.oldest_pending_message == iso(100)
    assert later.total_messages == 12
    # Once the delays are over, everything unarchived but the poison message is pending.
    scene.tick(8000)
    last = await admin.queue_metrics("jobs")
    assert (last.pending_messages, last.delayed_messages, last.poison_messages) == (7, 0, 1)


async def test_all_queues_and_system_stats(store: pgqrs.Store) -> None:
    scene = Scene(store)
    await scene.build()
    scene.tick(500)
    await store.queue("aaa-empty")
    await store.queue("other")
    await (await store.producer("other")).enqueue("o1")
    await scene.consumer.suspend()  # not active any more
    scene.tick(3600)
    admin = pgqrs.admin(store)

    empty = pgqrs.QueueMetrics("aaa-empty", 0, 0, 0, 0, 0, 0, None, None)
    other = pgqrs.QueueMetrics("other", 1, 1, 0, 0, 0, 0, iso(500), iso(500))
    expected = [empty, EXPECTED_AT_3600, other]
    assert await admin.all_queues_metrics() == expected
    assert await (await store.get_queues()).list_metrics() == expected

    stats = await admin.system_stats()
    assert stats == pgqrs.SystemStats(
        total_queues=3,
        total_workers=3,
        active_workers=2,
        total_messages=13,
        pending_messages=4,
        delayed_messages=2,
        locked_messages=2,
        poison_messages=1,
        archived_messages=4,
        schema_version=str(latest_version(store.db.migration_kind)),
    )


async def test_metrics_of_a_missing_queue(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    with pytest.raises(pgqrs.QueueNotFoundError, match="Queue 'ghost' not found"):
        await admin.queue_metrics("ghost")
    with pytest.raises(pgqrs.QueueNotFoundError):
        await (await store.get_queues()).metrics("ghost")
    with pytest.raises(pgqrs.ValidationError):
        await admin.queue_metrics("not valid")
    assert await admin.all_queues_metrics() == []


async def test_worker_health(store: pgqrs.Store, make_store: StoreFactory) -> None:
    for name in ("jobs", "other"):
        await store.queue(name)
    await store.consumer("jobs")  # ready, beating
    suspended = await store.consumer("jobs")
    await suspended.suspend()
    interrupted = await store.consumer("jobs")
    await interrupted.interrupt()
    stopped = await store.producer("jobs")
    await stopped.shutdown()
    await store.producer("other")
    # Workers of other programs may have no queue (pgqrs's admin workers): grouped as "Admin".
    await worker_rows.register(store.db, None, "pgqrs-admin", store.clock.now(), fence=1)

    past = await make_store()
    past.clock = FixedClock(at(-600))
    await past.consumer("jobs")  # ready, silent for ten minutes: stale
    quiet = await past.consumer("other")
    await quiet.suspend()  # silent too, but suspended workers are never stale

    admin = pgqrs.admin(store)
    [total] = await admin.worker_health_stats(60)
    assert total == pgqrs.WorkerHealthStats("Global", 8, 4, 0, 1, 2, 1, 1)
    grouped = await admin.worker_health_stats(60, group_by_queue=True)
    assert grouped == [
        pgqrs.WorkerHealthStats("Admin", 1, 1, 0, 0, 0, 0, 0),
        pgqrs.WorkerHealthStats("jobs", 5, 2, 0, 1, 1, 1, 1),
        pgqrs.WorkerHealthStats("other", 2, 1, 0, 0, 1, 0, 0),
    ]
    # The handle groups by default, with a timeout of three heartbeat intervals (15 s).
    assert await (await store.get_workers()).health_stats() == grouped
    [loose] = await admin.worker_health_stats(3600)
    assert loose.stale_workers == 0
    with pytest.raises(ValueError):
        await admin.worker_health_stats(-1)


async def test_worker_health_counts_polling(store: pgqrs.Store) -> None:
    import asyncio

    await store.queue("jobs")
    consumer = await store.consumer("jobs")
    task = asyncio.create_task(pgqrs.dequeue().worker(consumer).handle(print).poll(store))
    try:
        while await consumer.status() != "polling":
            await asyncio.sleep(0.01)
        [stats] = await pgqrs.admin(store).worker_health_stats(60)
        assert (stats.polling_workers, stats.ready_workers, stats.total_workers) == (1, 0, 1)
        assert (await pgqrs.admin(store).system_stats()).active_workers == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# -- query plans -------------------------------------------------------------------------------


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(_nodes(child))
    return found


async def _plan(store: pgqrs.Store, statement: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    [[raw]] = await store.db.fetch("EXPLAIN (FORMAT JSON) " + statement, params)
    document = json.loads(raw) if isinstance(raw, str) else raw
    return _nodes(document[0]["Plan"])


def _message_scans(nodes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(node type, index, condition) of every node reading pgqrs_messages or its indexes
    (a Bitmap Index Scan names only its index)."""
    return [
        (n["Node Type"], n.get("Index Name", ""), n.get("Filter", "") + n.get("Index Cond", ""))
        for n in nodes
        if n.get("Relation Name") == "pgqrs_messages"
        or n.get("Index Name", "").startswith("idx_pgqrs_messages")
    ]


# The partial indexes that hold exactly the unarchived rows (schema.md §2.4, migration 11).
UNARCHIVED_INDEXES = {"idx_pgqrs_messages_hot_path", "idx_pgqrs_messages_claim_priority"}


@pytest.mark.slow
@pytest.mark.backends("postgres")
async def test_metrics_plans_use_the_partial_indexes(store: pgqrs.Store) -> None:
    """200,000 rows in one queue, 5,000 in another. A queue's unarchived rows are always read
    through one of the partial indexes on them (hot path or claim order), and a small queue's
    history through the archived index: no
    statement reads the table to count a small part of it. Counting the history of a queue
    that *is* most of the table may scan it; that reads as much as the whole index would."""
    for name in ("bulk", "small"):
        await store.queue(name)
    worker = await store.consumer("bulk")
    now = at(0)
    await fill(store, "bulk", 200_000, worker.worker_id, now)
    await fill(store, "small", 5_000, worker.worker_id, now)
    store.clock = FixedClock(now)
    sql = store.db.sql
    params = {"now": now, "max_read_ct": store.config.max_read_ct}

    for name, rows in (("bulk", 200_000), ("small", 5_000)):
        counts = expected_counts(rows)
        metrics = await pgqrs.admin(store).queue_metrics(name)
        assert (
            metrics.total_messages,
            metrics.pending_messages,
            metrics.delayed_messages,
            metrics.locked_messages,
            metrics.poison_messages,
            metrics.archived_messages,
        ) == (rows, *(counts[s] for s in ("pending", "delayed", "leased", "poison", "archived")))
        queue_id = (await store.get_queue(name)).id
        scans = _message_scans(
            await _plan(store, sql.QUEUE_METRICS, {**params, "queue_id": queue_id})
        )
        used = {index for _, index, _ in scans}
        assert used & UNARCHIVED_INDEXES, scans
        if name == "small":
            assert "idx_pgqrs_messages_archived_enqueued" in used, scans
            assert all("Seq Scan" not in kind for kind, _, _ in scans), scans
        _only_history_is_scanned(scans)

    for statement in (sql.QUEUE_METRICS_ALL, sql.SYSTEM_STATS):
        scans = _message_scans(await _plan(store, statement, params))
        assert any(index in UNARCHIVED_INDEXES for _, index, _ in scans), scans
        _only_history_is_scanned(scans)


def _only_history_is_scanned(scans: list[tuple[str, str, str]]) -> None:
    for kind, _, condition in scans:
        if "Seq Scan" in kind:
            assert "archived_at IS NOT NULL" in condition, scans


@pytest.mark.backends("sqlite")
async def test_sqlite_metrics_plan_uses_the_partial_indexes(store: pgqrs.Store) -> None:
    sql = store.db.sql
    params = {"queue_id": 1, "now": at(0), "max_read_ct": 5}
    rows = await store.db.fetch("EXPLAIN QUERY PLAN " + sql.QUEUE_METRICS, params)
    details = [str(row[-1]) for row in rows if "pgqrs_messages" in str(row[-1])]
    assert len(details) == 2, rows
    assert all(d.startswith("SEARCH") and "INDEX" in d for d in details), details
