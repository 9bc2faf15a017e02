"""Limit rows (semantics.md §7.10): a queue's concurrency and rate limits and its keys'."""

from __future__ import annotations

from datetime import datetime

from ..records import LimitInfo
from ..store.executor import Queryable, Row
from ..store.sql.messages import Limited
from ..validation import Limits

# The key of the row that limits the queue as a whole.
QUEUE_ROW = ""


async def put(
    db: Queryable, queue_id: int, key: str | None, limits: Limits, now: datetime | None
) -> bool:
    """Set the limits of the queue (`key` None) or of a key; empty limits remove the row.
    Whether a row is there now."""
    params = {"queue_id": queue_id, "limit_key": QUEUE_ROW if key is None else key}
    if limits.empty:
        await db.fetch(db.sql.LIMIT_DELETE, params)
        return False
    await db.fetch(
        db.sql.LIMIT_SET,
        {
            **params,
            "max_in_flight": limits.max_in_flight,
            "rate_per_second": limits.rate_per_second,
            "burst": limits.burst,
            "wall_now": now,
        },
    )
    return True


async def present(db: Queryable, queue_id: int) -> Limited:
    """Which limits the queue has (its claims then keep them): none, its own only, or its
    keys' too."""
    row = await db.fetchone(db.sql.LIMITS_PRESENT, {"queue_id": queue_id})
    total, keyed = (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)
    if not total:
        return None
    return "keys" if keyed else "queue"


async def usage(
    db: Queryable, queue_id: int, queue_name: str, now: datetime | None
) -> list[LimitInfo]:
    """Every limit of the queue with its use at `now` (None: the database's clock): the
    queue's own first, then its keys'."""
    rows = await db.fetch(db.sql.LIMITS_USAGE, {"queue_id": queue_id, "now": now})
    return [_info(queue_name, row) for row in rows]


def _info(queue_name: str, row: Row) -> LimitInfo:
    key, max_in_flight, rate, burst, in_flight, tokens = row
    return LimitInfo(
        queue_name=queue_name,
        key=None if key == QUEUE_ROW else key,
        max_in_flight=None if max_in_flight is None else int(max_in_flight),
        rate_per_second=None if rate is None else float(rate),
        burst=None if burst is None else int(burst),
        in_flight=int(in_flight or 0),
        tokens=None if tokens is None else float(tokens),
    )
