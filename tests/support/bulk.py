"""Building big queues fast on PostgreSQL, for plan checks and scale measurements.

One `INSERT ... SELECT generate_series` writes every row; the mix of states is fixed by the row
number, so the expected metrics are known exactly (see `expected_counts`).
"""

from __future__ import annotations

from typing import Any

import pgqrs

# Out of every 1000 rows: 975 archived, 10 pending, 5 delayed, 5 leased, 5 poison.
MIX = (("archived", 975), ("pending", 10), ("delayed", 5), ("leased", 5), ("poison", 5))

_FILL = """
INSERT INTO {s}.pgqrs_messages
    (queue_id, payload, vt, enqueued_at, read_ct, dequeued_at, consumer_worker_id, archived_at)
SELECT %(queue_id)s, jsonb_build_object('n', g),
    CASE WHEN b < 975 THEN e + interval '30 seconds'
         WHEN b < 985 THEN e
         WHEN b < 990 THEN %(now)s + interval '1 hour'
         WHEN b < 995 THEN %(now)s + interval '1 hour'
         ELSE %(now)s - interval '1 minute' END,
    e,
    CASE WHEN b < 975 THEN 1 WHEN b < 990 THEN 0 WHEN b < 995 THEN 1 ELSE %(max_read_ct)s END,
    CASE WHEN b < 975 OR (b >= 990 AND b < 995) THEN e END,
    CASE WHEN b < 975 OR (b >= 990 AND b < 995) THEN %(worker_id)s END,
    CASE WHEN b < 975 THEN e + interval '1 second' END
FROM generate_series(1, %(rows)s) AS g,
    LATERAL (SELECT g %% 1000 AS b,
        %(now)s - interval '1 millisecond' * (%(rows)s - g) - interval '1 hour' AS e) AS x
"""


def expected_counts(rows: int) -> dict[str, int]:
    """How many rows of each state `fill` writes (row numbers 1..rows, state by `g % 1000`)."""
    counts = dict.fromkeys((name for name, _ in MIX), 0)
    full, rest = divmod(rows, 1000)
    for bucket in range(1000):
        counts[_state(bucket)] += full + (1 if 1 <= bucket <= rest else 0)
    return counts


def _state(bucket: int) -> str:
    upper = 0
    for name, width in MIX:
        upper += width
        if bucket < upper:
            return name
    raise AssertionError(bucket)


async def fill(store: pgqrs.Store, queue: str, rows: int, worker_id: int, now: Any) -> None:
    """Write `rows` messages into `queue` in one statement, then VACUUM ANALYZE the table."""
    info = await store.get_queue(queue)
    schema = store.db.quoted_schema  # type: ignore[attr-defined]
    params = {
        "queue_id": info.id,
        "rows": rows,
        "worker_id": worker_id,
        "now": now,
        "max_read_ct": store.config.max_read_ct,
    }
    await store.db.execute(_FILL.format(s=schema), params)
    await store.db.execute(f"VACUUM ANALYZE {schema}.pgqrs_messages")
