"""Message priorities (semantics.md §7.2-7.3, beyond pgqrs), on every backend.

Claims take the highest priority first and, within one priority, the oldest first
(`enqueued_at`, then id); rows pgqrs's own workers insert get priority 0. The claim still walks
one index in claim order and stops after its batch (migration 11), checked on the query plans
with 100,000 messages of mixed priorities.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

import pgqrs
from pgqrs.tables import messages as message_rows
from pgqrs.validation import MAX_PRIORITY, MIN_PRIORITY
from tests.support.clocks import FixedClock, at

PRIORITY_BACKLOG = 100_000


async def claim_all(store: pgqrs.Store, queue: str, batch: int = 3) -> list[Any]:
    """Every visible message's payload, in the order claims return them `batch` at a time."""
    consumer = await store.consumer(queue)
    seen: list[Any] = []
    while claimed := await consumer.dequeue(batch):
        seen += [m.payload for m in claimed]
        assert all(await consumer.archive_many([m.id for m in claimed]))
    return seen


async def test_priority_claims_take_the_highest_priority_first(
    store: pgqrs.Store, queue: str
) -> None:
    t0 = at(0)
    producer = await store.producer(queue)
    plan = [("a", 0), ("b", 5), ("c", -2), ("d", 5), ("e", 0), ("f", 9), ("g", -2)]
    for n, (name, priority) in enumerate(plan):
        store.clock = FixedClock(t0 + timedelta(seconds=n))  # distinct enqueue times
        await producer.enqueue(name, priority=priority)
    store.clock = FixedClock(t0 + timedelta(seconds=60))
    assert await claim_all(store, queue) == ["f", "b", "d", "a", "e", "c", "g"]


async def test_priority_within_one_priority_is_first_in_first_out(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    await producer.enqueue_batch(list(range(5)), priority=1)
    await producer.enqueue_batch(list(range(5, 10)), priority=1)
    await producer.enqueue_batch(list(range(10, 15)))
    assert await claim_all(store, queue, batch=4) == list(range(15))


async def test_priority_every_enqueue_form_and_the_poll_loop(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    await pgqrs.produce(store, queue, "produce-1", priority=1)
    await pgqrs.produce_batch(store, queue, ["batch-7", "batch-7b"], priority=7)
    await pgqrs.enqueue(producer, "enqueue-3", priority=3)
    await pgqrs.enqueue_batch(producer, ["enqueue_batch-2"], priority=2)
    await pgqrs.enqueue_delayed(producer, "delayed-9", 0, priority=9)
    await producer.enqueue_delayed("later-99", 3600, priority=99)  # not visible: skipped
    await producer.enqueue("plain-0")
    consumer = await store.consumer(queue)
    seen: list[list[Any]] = []

    async def handle(messages: list[pgqrs.QueueMessage]) -> None:
        seen.append([m.payload for m in messages])

    builder = pgqrs.dequeue().worker(consumer).batch(4).handle_batch(handle)
    assert await builder.execute(store) == 4  # the poll loop's claim (LOOP_STEP's builder)
    assert await builder.execute(store) == 3
    assert seen == [
        ["delayed-9", "batch-7", "batch-7b", "enqueue-3"],
        ["enqueue_batch-2", "produce-1", "plain-0"],
    ]


async def test_priority_is_stored_and_defaults_to_zero(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    low = await producer.enqueue({"n": 1}, priority=MIN_PRIORITY)
    high = await producer.enqueue({"n": 2}, priority=MAX_PRIORITY)
    plain = await producer.enqueue({"n": 3})
    found = [(await message_rows.options(store.db, i))[0] for i in (low, high, plain)]
    assert found == [-(2**31), 2**31 - 1, 0]
    # The record of pgqrs's API is unchanged: no priority field.
    message = await (await store.get_messages()).get(high)
    assert "priority" not in vars(message)


@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_priority_rows_written_without_the_column_get_priority_zero(
    store: pgqrs.Store, queue: str
) -> None:
    """A pgqrs 0.15.3 worker inserts without `priority`: its rows are claimed as priority 0."""
    producer = await store.producer(queue)
    low = await producer.enqueue("ours, -1", priority=-1)
    queue_id = (await store.get_queue(queue)).id
    if store.backend == "postgres":
        insert = (
            "INSERT INTO pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct) "
            "VALUES (%(q)s, '\"theirs\"', now(), now(), 0) RETURNING id"
        )
    else:
        insert = (
            "INSERT INTO pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct) "
            "VALUES (:q, '\"theirs\"', datetime('now'), datetime('now'), 0) RETURNING id"
        )
    [(theirs,)] = await store.db.fetch(insert, {"q": queue_id})
    assert (await message_rows.options(store.db, int(theirs)))[0] == 0
    assert await claim_all(store, queue) == ["theirs", "ours, -1"]
    assert low < theirs


async def test_priority_bad_values_raise_validation_error_before_any_write(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    workers = len(await pgqrs.admin(store).list_workers())
    for bad in (True, False, 1.0, "1", None, 2**31, -(2**31) - 1):
        calls = (
            producer.enqueue({"n": 1}, priority=bad),  # type: ignore[arg-type]
            producer.enqueue_delayed({"n": 1}, 1, priority=bad),  # type: ignore[arg-type]
            producer.enqueue_batch([{"n": 1}], priority=bad),  # type: ignore[arg-type]
            pgqrs.produce(store, queue, {"n": 1}, priority=bad),  # type: ignore[arg-type]
            pgqrs.produce_batch(store, queue, [{"n": 1}], priority=bad),  # type: ignore[arg-type]
        )
        for call in calls:
            with pytest.raises(pgqrs.ValidationError, match=r"^Validation failed: priority"):
                await call
    assert await (await store.get_messages()).count() == 0
    assert len(await pgqrs.admin(store).list_workers()) == workers  # no ephemeral worker


# -- the plan: a claim walks the priority index and stops after its batch ----------------------
async def load_mixed(store: pgqrs.Store, queue_id: int, n: int) -> None:
    """n visible messages with priorities -3..3 in turn, and n archived ones beside them."""
    if store.backend == "postgres":
        await store.db.execute(
            "INSERT INTO pgqrs_messages "
            "(queue_id, payload, vt, enqueued_at, read_ct, archived_at, priority) "
            "SELECT %(q)s, '{}'::jsonb, now() - interval '1 hour', "
            "now() - interval '1 hour' + g * interval '1 microsecond', 0, "
            "CASE WHEN g %% 2 = 0 THEN now() END, (g / 2) %% 7 - 3 "
            "FROM generate_series(1, %(n)s) g",
            {"q": queue_id, "n": 2 * n},
        )
        await store.db.execute("ANALYZE pgqrs_messages")
    else:
        await store.db.execute(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :n) "
            "INSERT INTO pgqrs_messages "
            "(queue_id, payload, vt, enqueued_at, read_ct, archived_at, priority) "
            "SELECT :q, '{}', '2000-01-01 00:00:00.000000', "
            "printf('2000-01-01 00:00:%02d.%06d', n / 1000000, n % 1000000), 0, "
            "CASE WHEN n % 2 = 0 THEN '2000-01-02 00:00:00.000000' END, (n / 2) % 7 - 3 FROM g",
            {"q": queue_id, "n": 2 * n},
        )


def _params(consumer: pgqrs.Consumer, queue_id: int) -> dict[str, Any]:
    now = at(0)
    return {
        "queue_id": queue_id,
        "worker_id": consumer.worker_id,
        "fence": consumer.owner.fence,
        "limit": 10,
        "now": now,
        "lease": 30.0,
        "max_read_ct": 5,
        "ids": [],
        "wall_now": now,
    }


def _walk(plan: Any) -> Any:
    yield plan
    for child in plan.get("Plans", []):
        yield from _walk(child)


def _expected_first(n: int, count: int) -> list[int]:
    """The ids a claim of `count` takes from `load_mixed`: odd rows (visible) of priority 3,
    oldest first."""
    return [g for g in range(1, 2 * n + 1) if g % 2 and (g // 2) % 7 - 3 == 3][:count]


@pytest.mark.slow
@pytest.mark.backends("postgres")
async def test_priority_postgres_claim_walks_the_priority_index(
    store: pgqrs.Store, queue: str
) -> None:
    consumer = await store.consumer(queue)
    queue_id = (await store.get_queue(queue)).id
    await load_mixed(store, queue_id, PRIORITY_BACKLOG)
    for statement in (store.db.sql.MSG_CLAIM, *store.db.sql.LOOP_STEP):
        rows = await store.db.fetch(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, _params(consumer, queue_id)
        )
        nodes = list(_walk(json.loads(rows[0][0])[0]["Plan"]))
        assert not any(n["Node Type"] == "Sort" for n in nodes), nodes
        scans = [n for n in nodes if n.get("Index Name") == "idx_pgqrs_messages_claim_priority"]
        assert scans, nodes
        # It stopped after the batch: a handful of rows, not the 100,000 visible ones.
        assert all(n["Actual Rows"] <= 10 for n in scans), scans
    # EXPLAIN ANALYZE ran the plain claim: it took the ten oldest of priority 3.
    claimed = await consumer.dequeue(10)
    assert [m.id for m in claimed] == _expected_first(PRIORITY_BACKLOG, 20)[10:20]


@pytest.mark.backends("sqlite", "turso")
async def test_priority_sqlite_claim_walks_the_priority_index(
    store: pgqrs.Store, queue: str
) -> None:
    consumer = await store.consumer(queue)
    queue_id = (await store.get_queue(queue)).id
    await load_mixed(store, queue_id, PRIORITY_BACKLOG)
    if store.backend == "sqlite":  # Turso's EXPLAIN QUERY PLAN speaks its own dialect
        for statement in (store.db.sql.MSG_CLAIM, *store.db.sql.LOOP_STEP[1:]):
            rows = await store.db.fetch(
                "EXPLAIN QUERY PLAN " + statement, _params(consumer, queue_id)
            )
            details = [str(row[-1]) for row in rows]
            assert any("idx_messages_claim_priority" in d for d in details), details
            assert not any("TEMP B-TREE" in d for d in details), details  # no sort
    claimed = await consumer.dequeue(10)
    assert [m.id for m in claimed] == _expected_first(PRIORITY_BACKLOG, 10)
