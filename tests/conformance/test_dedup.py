"""Deduplication keys (semantics.md §7.8, beyond pgqrs), on every backend.

A key is unique per queue among unarchived messages, and for `dedup_window_seconds` after its
message was archived; enqueuing a duplicate writes nothing and answers the existing id, marked
`duplicate`. Races are settled by the database: two producer processes enqueuing the same keys
at the same moment leave exactly one message per key.
"""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
from datetime import timedelta
from typing import Any

import psycopg
import pytest

import pgqrs
from pgqrs.store.executor import JsonTexts
from pgqrs.tables import messages as message_rows
from tests.support.clocks import FixedClock, at
from tests.support.process import spawn
from tests.support.target import StoreFactory, Target
from tests.support.waiting import eventually


async def live_keys(store: pgqrs.Store, queue: str) -> list[tuple[int, str | None]]:
    """(id, key) of every unarchived message of the queue, by id."""
    queue_id = (await store.get_queue(queue)).id
    rows = await message_rows.browse_rows(store.db, queue_id, which="live", now=None, limit=100_000)
    found = []
    for row in rows:
        _, key, _ = await message_rows.options(store.db, int(row[0]))
        found.append((int(row[0]), key))
    return found


async def archive_all(store: pgqrs.Store, queue: str) -> list[int]:
    consumer = await store.consumer(queue)
    claimed = await consumer.dequeue(store.config.default_max_batch_size)
    assert all(await consumer.archive_many([m.id for m in claimed]))
    return [m.id for m in claimed]


async def test_dedup_a_duplicate_returns_the_existing_id(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    first = await producer.enqueue({"n": 1}, dedup_key="order-1")
    again = await producer.enqueue({"n": 2}, dedup_key="order-1")
    delayed = await producer.enqueue_delayed({"n": 3}, 60, dedup_key="order-1")
    helper = await pgqrs.produce(store, queue, {"n": 4}, dedup_key="order-1")
    wrapped = await pgqrs.enqueue(producer, {"n": 5}, dedup_key="order-1")
    assert isinstance(first, pgqrs.EnqueuedId)
    assert isinstance(first, int)
    assert first.duplicate is False
    assert [again, delayed, helper, wrapped] == [first] * 4
    assert [i.duplicate for i in (again, delayed, helper, wrapped)] == [True] * 4
    assert await live_keys(store, queue) == [(first, "order-1")]
    [message] = await (await store.consumer(queue)).dequeue(10)
    assert message.payload == {"n": 1}  # the duplicate wrote nothing


async def test_dedup_without_a_key_nothing_is_deduplicated(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    ids = [await producer.enqueue({"n": 1}) for _ in range(2)]
    ids += await producer.enqueue_batch([{"n": 1}, {"n": 1}], dedup_keys=[None, None])
    assert len(set(ids)) == 4
    assert all(isinstance(i, pgqrs.EnqueuedId) and not i.duplicate for i in ids)


async def test_dedup_keys_are_per_queue(store: pgqrs.Store, queue: str) -> None:
    await store.queue("other")
    a = await (await store.producer(queue)).enqueue({"n": 1}, dedup_key="k")
    b = await (await store.producer("other")).enqueue({"n": 1}, dedup_key="k")
    assert a != b
    assert not a.duplicate
    assert not b.duplicate


async def test_dedup_a_leased_or_delayed_message_still_holds_its_key(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    leased = await producer.enqueue({"n": 1}, dedup_key="leased")
    delayed = await producer.enqueue_delayed({"n": 2}, 3600, dedup_key="delayed")
    [m] = await (await store.consumer(queue)).dequeue()
    assert m.id == leased
    assert await producer.enqueue({"n": 3}, dedup_key="leased") == leased
    assert await producer.enqueue({"n": 4}, dedup_key="delayed") == delayed


async def test_dedup_an_archived_key_is_free_without_a_window(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    first = await producer.enqueue({"n": 1}, dedup_key="k")
    assert await archive_all(store, queue) == [first]
    second = await producer.enqueue({"n": 2}, dedup_key="k")
    assert second != first
    assert not second.duplicate
    assert await live_keys(store, queue) == [(second, "k")]


async def test_dedup_window_keeps_the_key_of_an_archived_message(
    store: pgqrs.Store, queue: str
) -> None:
    """Time is injected: archived at t0, enqueued again at t0 + 30 s."""
    t0 = at(0)
    store.clock = FixedClock(t0)
    producer = await store.producer(queue)
    first = await producer.enqueue({"n": 1}, dedup_key="k")
    assert await archive_all(store, queue) == [first]
    store.clock = FixedClock(t0 + timedelta(seconds=30))
    within = await producer.enqueue({"n": 2}, dedup_key="k", dedup_window_seconds=60)
    assert (within, within.duplicate) == (first, True)
    batch = await producer.enqueue_batch(
        [{"n": 3}, {"n": 4}], dedup_keys=["k", "fresh"], dedup_window_seconds=31
    )
    assert next((int(i), i.duplicate) for i in batch) == (first, True)
    assert not batch[1].duplicate
    assert await live_keys(store, queue) == [(batch[1], "fresh")]
    # 30 s is not less than a window of 30 s: the key is free again.
    after = await producer.enqueue({"n": 5}, dedup_key="k", dedup_window_seconds=30)
    assert after != first
    assert not after.duplicate
    # Now the unarchived message holds the key, whatever the window.
    assert await producer.enqueue({"n": 6}, dedup_key="k", dedup_window_seconds=3600) == after


async def test_dedup_window_prefers_the_unarchived_holder(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    old = await producer.enqueue({"n": 1}, dedup_key="k")
    await archive_all(store, queue)
    live = await producer.enqueue({"n": 2}, dedup_key="k")  # no window: a new message
    found = await producer.enqueue({"n": 3}, dedup_key="k", dedup_window_seconds=3600)
    assert (found, found.duplicate, live != old) == (live, True, True)


async def test_dedup_batch_first_wins_and_existing_keys_answer(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    held = await producer.enqueue({"n": 0}, dedup_key="held")
    ids = await pgqrs.enqueue_batch(
        producer,
        [{"n": i} for i in range(1, 7)],
        dedup_keys=["a", None, "a", "held", "b", None],
    )
    assert [i.duplicate for i in ids] == [False, False, True, True, False, False]
    assert ids[2] == ids[0]
    assert ids[3] == held
    new = [ids[0], ids[1], ids[4], ids[5]]
    assert new == sorted(new)
    assert len(set(new)) == 4
    claimed = await (await store.consumer(queue)).dequeue(10)
    assert [m.payload["n"] for m in claimed] == [0, 1, 2, 5, 6]
    helper = await pgqrs.produce_batch(store, queue, [{"n": 7}, {"n": 8}], dedup_keys=["b", "c"])
    assert (helper[0], helper[0].duplicate, helper[1].duplicate) == (ids[4], True, False)


async def test_dedup_a_cancelled_message_frees_its_key(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    first = await producer.enqueue({"n": 1}, dedup_key="k")
    assert await producer.cancel_key("k")
    second = await producer.enqueue({"n": 2}, dedup_key="k", dedup_window_seconds=3600)
    assert second != first
    assert not second.duplicate


async def test_dedup_bad_values_raise_validation_error_before_any_write(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    workers = len(await pgqrs.admin(store).list_workers())
    bad: list[dict[str, Any]] = [
        {"dedup_key": ""},
        {"dedup_key": "x" * 256},
        {"dedup_key": 5},
        {"dedup_key": "a\x00b"},
        {"dedup_key": "k", "dedup_window_seconds": -1},
        {"dedup_key": "k", "dedup_window_seconds": True},
        {"dedup_key": "k", "dedup_window_seconds": float("nan")},
        {"dedup_window_seconds": 10},  # a window without a key
    ]
    for kwargs in bad:
        for call in (
            producer.enqueue({"n": 1}, **kwargs),
            producer.enqueue_delayed({"n": 1}, 5, **kwargs),
            pgqrs.produce(store, queue, {"n": 1}, **kwargs),
        ):
            with pytest.raises(pgqrs.ValidationError, match=r"^Validation failed: "):
                await call
    for keys in (["a"], ["a", ""], "ab", [None, 3]):
        with pytest.raises(pgqrs.ValidationError, match="dedup_keys"):
            await producer.enqueue_batch([{"n": 1}, {"n": 2}], dedup_keys=keys)  # type: ignore[arg-type]
        with pytest.raises(pgqrs.ValidationError, match="dedup_keys"):
            await pgqrs.produce_batch(store, queue, [{"n": 1}, {"n": 2}], dedup_keys=keys)  # type: ignore[arg-type]
    assert await live_keys(store, queue) == []
    assert len(await pgqrs.admin(store).list_workers()) == workers  # no ephemeral worker
    longest = await producer.enqueue({"n": 1}, dedup_key="x" * 255)
    assert not longest.duplicate


async def test_dedup_enqueued_id_behaves_as_an_int(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    plain = await producer.enqueue({"n": 1})
    dup = await producer.enqueue({"n": 1}, dedup_key="k")
    dup = await producer.enqueue({"n": 1}, dedup_key="k")
    assert dup.duplicate
    assert isinstance(plain, pgqrs.EnqueuedId)  # every enqueue answers one, typed int or not
    assert not plain.duplicate
    assert repr(dup) == str(int(dup))
    assert f"{dup}" == str(int(dup))
    assert json.dumps({"id": dup}) == json.dumps({"id": int(dup)})
    assert {int(dup): 1}[dup] == 1
    assert dup + 0 == int(dup)
    assert type(dup + 0) is int
    for made in (pickle.loads(pickle.dumps(dup)), copy.deepcopy(dup)):
        assert made == dup
        assert made.duplicate
    with pytest.raises(AttributeError):
        dup.duplicate = False  # type: ignore[misc]
    assert (await (await store.get_messages()).get(dup)).id == dup


async def test_dedup_enqueued_ids_mix_with_plain_ints_in_every_call(
    store: pgqrs.Store, queue: str
) -> None:
    """Ids go back into the API beside plain ints (lists a driver must encode as one type)."""
    producer = await store.producer(queue)
    ids = await producer.enqueue_batch([{"n": 1}, {"n": 2}, {"n": 3}], dedup_keys=["a", "b", "c"])
    consumer = await store.consumer(queue)
    assert len(await consumer.dequeue(3)) == 3
    assert await consumer.release_messages([ids[0], int(ids[0])]) == 1
    assert await consumer.archive_many([ids[1], 999_999]) == [True, False]
    assert await consumer.delete_many([ids[1], 999_999]) == [True, False]
    assert await consumer.extend_vt(ids[2], 10)
    assert [m.id for m in await pgqrs.admin(store).get_worker_messages(consumer.worker_id)] == [
        ids[2]
    ]


# -- races ---------------------------------------------------------------------------------------
KEYS = 40


async def _race(target: Target, queue: str, mode: str) -> list[list[list[Any]]]:
    """Two producer processes enqueue the same KEYS keys, started at the same moment."""
    children = [spawn("dedup_child", target.env(), queue, str(KEYS), mode) for _ in range(2)]
    try:
        for child in children:
            assert child.stdout is not None
            line = await asyncio.to_thread(child.stdout.readline)
            assert line.strip() == "ready", child.stderr.read() if child.stderr else line
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        answers = []
        for child in children:
            assert child.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 120)
            assert line.strip(), child.stderr.read() if child.stderr else "no output"
            answers.append(json.loads(line))
            assert await asyncio.to_thread(child.wait, 30) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
            for pipe in (child.stdin, child.stdout, child.stderr):
                if pipe is not None:
                    pipe.close()
    return answers


# Real processes share the database file or schema; an S3 object has one writing store
# (semantics.md §16), so S3 races two producers of one store instead (the next test).
@pytest.mark.slow
@pytest.mark.backends("sqlite", "postgres", "turso")
@pytest.mark.parametrize("mode", ["single", "batch"])
async def test_dedup_two_producer_processes_race_on_the_same_keys(
    store: pgqrs.Store, queue: str, target: Target, mode: str
) -> None:
    first, second = await _race(target, queue, mode)
    live = await live_keys(store, queue)
    assert sorted(str(key) for _, key in live) == sorted(f"key-{n}" for n in range(KEYS))
    by_key = {key: mid for mid, key in live}
    for n, ((a, a_dup), (b, b_dup)) in enumerate(zip(first, second, strict=True)):
        # Both processes answer the one message of the key; exactly one of them wrote it.
        assert a == b == by_key[f"key-{n}"], n
        assert sorted([a_dup, b_dup]) == [False, True], n


async def test_dedup_concurrent_enqueues_of_one_store_race_on_the_same_keys(
    store: pgqrs.Store, queue: str
) -> None:
    producers = [await store.producer(queue) for _ in range(4)]

    async def enqueue(producer: pgqrs.Producer) -> list[pgqrs.EnqueuedId]:
        found = []
        for n in range(10):
            found.append(await producer.enqueue({"n": n}, dedup_key=f"key-{n}"))
            found += await producer.enqueue_batch(
                [{"n": n}, {"n": n + 1}], dedup_keys=[f"key-{n}", f"key-{n + 1}"]
            )
        return found

    results = await asyncio.gather(*(enqueue(p) for p in producers))
    live = {key: mid for mid, key in await live_keys(store, queue)}
    assert sorted(str(key) for key in live) == sorted(f"key-{n}" for n in range(11))
    fresh = [i for found in results for i in found if not i.duplicate]
    assert sorted(fresh) == sorted(live.values())  # every key written exactly once


# Not on S3: an S3 object has one writing store (semantics.md §16).
@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_dedup_several_stores_race_on_the_same_keys(
    store: pgqrs.Store, queue: str, make_store: StoreFactory
) -> None:
    others = [await make_store() for _ in range(3)]
    producers = [await s.producer(queue) for s in (store, *others)]
    results = await asyncio.gather(
        *(
            p.enqueue_batch([{"n": n} for n in range(20)], dedup_keys=[f"k{n}" for n in range(20)])
            for p in producers
        )
    )
    live = await live_keys(store, queue)
    assert len(live) == 20
    assert sum(not i.duplicate for found in results for i in found) == 20


@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_dedup_the_database_refuses_a_second_unarchived_key(
    store: pgqrs.Store, queue: str
) -> None:
    """The partial unique index itself (migration 11), past the library's own statements."""
    producer = await store.producer(queue)
    mid = await producer.enqueue({"n": 1}, dedup_key="k")
    queue_id = (await store.get_queue(queue)).id
    insert = (
        "INSERT INTO pgqrs_messages (queue_id, payload, dedup_key) VALUES (:q, '{}', 'k')"
        if store.backend != "postgres"
        else "INSERT INTO pgqrs_messages (queue_id, payload, dedup_key) VALUES (%(q)s, '{}', 'k')"
    )
    with pytest.raises(pgqrs.PgqrsConnectionError):
        await store.db.execute(insert, {"q": queue_id})
    assert await live_keys(store, queue) == [(mid, "k")]


# -- the plan: a keyed enqueue looks its keys up in the two key indexes ----------------------------
HISTORY = 50_000


async def _keyed_history(store: pgqrs.Store, queue: str) -> int:
    """HISTORY archived messages with keys and HISTORY unarchived ones, loaded in bulk."""
    queue_id = (await store.get_queue(queue)).id
    if store.backend == "postgres":
        await store.db.execute(
            "INSERT INTO pgqrs_messages (queue_id, payload, archived_at, dedup_key) "
            "SELECT %(q)s, '{}'::jsonb, CASE WHEN g %% 2 = 0 THEN now() END, 'k' || g "
            "FROM generate_series(1, %(n)s) g",
            {"q": queue_id, "n": 2 * HISTORY},
        )
        await store.db.execute("ANALYZE pgqrs_messages")
    else:
        await store.db.execute(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :n) "
            "INSERT INTO pgqrs_messages (queue_id, payload, archived_at, dedup_key) "
            "SELECT :q, '{}', CASE WHEN n % 2 = 0 THEN '2000-01-01 00:00:00.000000' END, "
            "'k' || n FROM g",
            {"q": queue_id, "n": 2 * HISTORY},
        )
    return queue_id


def _keyed_params(producer: pgqrs.Producer, queue_id: int) -> dict[str, Any]:
    return {
        "queue_id": queue_id,
        "worker_id": producer.worker_id,
        "now": at(0),
        "delay": 0.0,
        "priority": 0,
        "limit_key": None,
        "trace_context": None,
        "payloads": JsonTexts(["{}", "{}"]),
        "keys": '["k7", "new"]',
        "key_list": ["k7", "new"],
        "window": 3600.0,
    }


@pytest.mark.backends("sqlite")
async def test_dedup_sqlite_keyed_enqueue_reads_the_key_indexes(
    store: pgqrs.Store, queue: str
) -> None:
    queue_id = await _keyed_history(store, queue)
    producer = await store.producer(queue)
    params = _keyed_params(producer, queue_id)
    details = []
    for statement in store.db.sql.MSG_INSERT_KEYED:
        rows = await store.db.fetch("EXPLAIN QUERY PLAN " + statement, params)
        details += [str(row[-1]) for row in rows]
    assert not any(d.startswith("SCAN h") for d in details), details  # no table scan
    for index in ("idx_messages_dedup_key", "idx_messages_dedup_archived"):
        assert any(f"USING INDEX {index}" in d for d in details), details
    assert await producer.enqueue({"n": 1}, dedup_key="k7") == 7  # unarchived: a duplicate


@pytest.mark.slow
@pytest.mark.backends("postgres")
async def test_dedup_postgres_keyed_enqueue_reads_the_key_indexes(
    store: pgqrs.Store, queue: str
) -> None:
    queue_id = await _keyed_history(store, queue)
    producer = await store.producer(queue)
    statement = store.db.sql.MSG_INSERT_KEYED[-1]
    # EXPLAIN without ANALYZE: the statement is planned, not run.
    rows = await store.db.fetch(
        "EXPLAIN (FORMAT JSON) " + statement, _keyed_params(producer, queue_id)
    )
    nodes = list(_walk(json.loads(rows[0][0])[0]["Plan"]))
    scans = [n for n in nodes if n.get("Relation Name") == "pgqrs_messages"]
    assert not [n for n in scans if n["Node Type"] == "Seq Scan"], scans  # the insert itself
    names = {n.get("Index Name") for n in nodes}
    assert {"idx_pgqrs_messages_dedup_key", "idx_pgqrs_messages_dedup_archived"} <= names, nodes
    archived = await producer.enqueue({"n": 1}, dedup_key="k8", dedup_window_seconds=3600)
    assert (archived, archived.duplicate) == (8, True)


def _walk(plan: Any) -> Any:
    yield plan
    for child in plan.get("Plans", []):
        yield from _walk(child)


# -- PostgreSQL: what the lock and the unique index settle, step by step --------------------------
async def _raw(target: Target) -> psycopg.AsyncConnection[Any]:
    conn = await psycopg.AsyncConnection.connect(target.dsn)
    await conn.execute(f'SET search_path TO "{target.schema}"')
    await conn.commit()
    return conn


async def _waiting_on(target: Target, kind: str) -> bool:
    """Some session of the test's database waits for a lock of `kind` (advisory, transactionid)."""
    async with await psycopg.AsyncConnection.connect(target.dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = %s", [kind]
        )
        row = await cur.fetchone()
        return bool(row and row[0])


@pytest.mark.backends("postgres")
async def test_dedup_postgres_a_key_taken_during_the_insert_is_answered(
    store: pgqrs.Store, queue: str, target: Target
) -> None:
    """Another transaction inserts the key (without the library's lock) and commits while the
    enqueue's insert waits on the unique index: the enqueue answers that message."""
    queue_id = (await store.get_queue(queue)).id
    producer = await store.producer(queue)
    raw = await _raw(target)
    try:
        cur = await raw.execute(
            "INSERT INTO pgqrs_messages (queue_id, payload, dedup_key) "
            "VALUES (%s, '{}', 'k') RETURNING id",
            [queue_id],
        )
        row = await cur.fetchone()
        assert row is not None
        task = asyncio.create_task(producer.enqueue({"n": 1}, dedup_key="k"))
        await eventually(lambda: _waiting_on(target, "transactionid"))
        await raw.commit()
        found = await asyncio.wait_for(task, 10)
    finally:
        await raw.close()
    assert (found, found.duplicate) == (row[0], True)
    assert await live_keys(store, queue) == [(row[0], "k")]


@pytest.mark.backends("postgres")
async def test_dedup_postgres_the_window_waits_for_an_earlier_enqueue_of_the_key(
    store: pgqrs.Store, queue: str, target: Target
) -> None:
    """An enqueue of the key holds its lock and commits a message that is already archived
    (the unique index cannot see it): an enqueue with a window waited for the lock, and its
    insert then sees that message, within the window."""
    queue_id = (await store.get_queue(queue)).id
    producer = await store.producer(queue)
    raw = await _raw(target)
    try:
        await raw.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.' || %s::text), "
            "hashtext('k'))",
            [queue_id],
        )
        cur = await raw.execute(
            "INSERT INTO pgqrs_messages (queue_id, payload, dedup_key, archived_at) "
            "VALUES (%s, '{}', 'k', now()) RETURNING id",
            [queue_id],
        )
        row = await cur.fetchone()
        assert row is not None
        task = asyncio.create_task(
            producer.enqueue({"n": 1}, dedup_key="k", dedup_window_seconds=3600)
        )
        await eventually(lambda: _waiting_on(target, "advisory"))
        await raw.commit()
        found = await asyncio.wait_for(task, 10)
    finally:
        await raw.close()
    assert (found, found.duplicate) == (row[0], True)
    assert await live_keys(store, queue) == []
