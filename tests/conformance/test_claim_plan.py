"""The claim walks an index in claim order and stops after `batch` rows (issue 6): its cost does
not grow with the backlog. Checked on the query plan, with a backlog loaded in bulk."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

import pgqrs

BACKLOG = 50_000


async def load_backlog(store: pgqrs.Store, queue_id: int, n: int) -> None:
    """n visible messages and n archived ones beside them, inserted by the database itself."""
    if store.backend == "postgres":
        await store.db.execute(
            "INSERT INTO pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct, archived_at) "
            "SELECT %(q)s, '{}'::jsonb, now() - interval '1 hour', "
            "now() - interval '1 hour' + g * interval '1 microsecond', 0, "
            "CASE WHEN g %% 2 = 0 THEN now() END FROM generate_series(1, %(n)s) g",
            {"q": queue_id, "n": 2 * n},
        )
        await store.db.execute("ANALYZE pgqrs_messages")
    else:
        await store.db.execute(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :n) "
            "INSERT INTO pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct, archived_at) "
            "SELECT :q, '{}', '2000-01-01 00:00:00.000000', "
            "printf('2000-01-01 00:00:%02d.%06d', n / 1000000, n % 1000000), 0, "
            "CASE WHEN n % 2 = 0 THEN '2000-01-02 00:00:00.000000' END FROM g",
            {"q": queue_id, "n": 2 * n},
        )


def claim_params(consumer: pgqrs.Consumer) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    return {
        "queue_id": 1,
        "worker_id": consumer.worker_id,
        "fence": consumer.owner.fence,
        "limit": 10,
        "now": now,
        "lease": 30.0,
        "max_read_ct": 5,
        "ids": [],
        "wall_now": now,
    }


@pytest.mark.slow
@pytest.mark.backends("postgres")
async def test_postgres_claim_reads_a_batch_not_the_backlog(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    await load_backlog(store, 1, BACKLOG)
    for statement in (store.db.sql.MSG_CLAIM, *store.db.sql.LOOP_STEP):
        rows = await store.db.fetch(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, claim_params(consumer)
        )
        nodes = list(_walk(json.loads(rows[0][0])[0]["Plan"]))
        assert not any(n["Node Type"] == "Sort" for n in nodes), nodes
        scans = [n for n in nodes if n.get("Index Name") == "idx_pgqrs_messages_claim_priority"]
        assert scans, nodes
        # It stopped after the batch: a handful of rows read, not the 50,000 visible ones.
        assert all(n["Actual Rows"] <= 10 for n in scans), scans
    # EXPLAIN ANALYZE ran the plain claim for real (the loop step claims nothing for a worker
    # that is not polling): it took the oldest ten, and the next claim goes on from there.
    claimed = await consumer.dequeue(10)
    assert [m.id for m in claimed] == list(range(21, 41, 2))


def _walk(plan: Any) -> Any:
    yield plan
    for child in plan.get("Plans", []):
        yield from _walk(child)


@pytest.mark.backends("sqlite")
async def test_sqlite_claim_walks_the_claim_order_index(store: pgqrs.Store, queue: str) -> None:
    consumer = await store.consumer(queue)
    await load_backlog(store, 1, 2_000)
    for statement in (store.db.sql.MSG_CLAIM, *store.db.sql.LOOP_STEP[1:]):
        rows = await store.db.fetch("EXPLAIN QUERY PLAN " + statement, claim_params(consumer))
        details = [str(row[-1]) for row in rows]
        assert any("idx_messages_claim_priority" in d for d in details), details
        assert not any("TEMP B-TREE" in d for d in details), details  # no sort
    claimed = await consumer.dequeue(10)
    assert [m.id for m in claimed] == list(range(1, 21, 2))
