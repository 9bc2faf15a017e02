"""Message rows: enqueue, claim, settle (archive, delete, release, extend) and lookups.

Settling calls are fenced by ownership: they act only on rows whose `consumer_worker_id` is the
caller, so a consumer whose lease lapsed and was re-claimed changes nothing (semantics.md §7.4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from .. import tracing
from .._clock import db_to_api
from ..errors import InternalError, MessageLeasedError, MessageNotFoundError, ValidationError
from ..records import EnqueuedId
from ..store.executor import (
    JsonTexts,
    LimitsOvershot,
    Queryable,
    Row,
    first_column,
    run_steps,
    scalar_int,
)
from ..store.sql.columns import MESSAGE
from ..store.sql.messages import Limited
from ..types import QueueMessage
from ..validation import decode_json, encode_json, key_list
from . import queues
from .workers import Owner


class MessageReader:
    """Turns rows into `QueueMessage`s, unwrapping workflow trigger payloads (semantics.md §4.3).

    Whether a queue belongs to a workflow is only asked for payloads shaped `{"input": X}`, and a
    yes is remembered: a workflow definition is never removed while its queue has messages.
    """

    def __init__(self) -> None:
        self._workflow_queues: set[int] = set()

    def remember_workflow_queue(self, queue_id: int) -> None:
        self._workflow_queues.add(queue_id)

    async def read(self, db: Queryable, rows: Iterable[Row]) -> list[QueueMessage]:
        out = []
        build, payload_at, queue_at = MESSAGE.build, _PAYLOAD, _QUEUE_ID
        for row in rows:
            stored = row[payload_at]
            raw = decode_json(stored) if isinstance(stored, str) else stored
            payload = raw
            if (
                type(raw) is dict
                and len(raw) == 1
                and "input" in raw
                and await self._is_workflow_queue(db, int(row[queue_at]))
            ):
                payload = raw["input"]
            out.append(build(row, payload, raw))
        return out

    async def _is_workflow_queue(self, db: Queryable, queue_id: int) -> bool:
        if queue_id in self._workflow_queues:
            return True
        if await queues.is_workflow_queue(db, queue_id):
            self._workflow_queues.add(queue_id)
            return True
        return False


# The raw values the reader and the claim order need, by the position of their columns.
_ID, _QUEUE_ID = MESSAGE.index("id"), MESSAGE.index("queue_id")
_PAYLOAD, _ENQUEUED_AT = MESSAGE.index("payload"), MESSAGE.index("enqueued_at")
_PRIORITY = MESSAGE.index("priority")


def sort_rows(rows: list[Row]) -> list[Row]:
    """Claim order, `(priority DESC, enqueued_at, id)` (semantics.md §7.3): RETURNING gives
    rows in no particular order.

    Stored values sort as they are: fixed-width UTC text on SQLite, and PostgreSQL's UTC text,
    whose trimmed fractions sort right too (`+` sorts below every digit and `.`); a NULL
    `enqueued_at` (only a row written by another program) sorts first.
    """
    if len(rows) < 2:
        return rows
    at, key, priority = _ENQUEUED_AT, _ID, _PRIORITY
    return sorted(
        rows, key=lambda r: (-(r[priority] or 0), r[at] is not None, r[at] or r[key], r[key])
    )


def _owner(owner: Owner) -> dict[str, Any]:
    return {"worker_id": owner.worker_id, "fence": owner.fence}


async def enqueue(
    db: Queryable,
    queue_id: int,
    worker_id: int | None,
    texts: Sequence[str],
    now: datetime | None,
    delay_seconds: float = 0.0,
    priority: int = 0,
    limit_key: str | None = None,
) -> list[int]:
    """Insert the stored JSON texts as one statement; their ids in input order. Visible
    `delay_seconds` after `now` (None: the database's clock, see store/sql/messages.py).
    Every message carries the trace context current now (`tracing.carrier`)."""
    params = {
        "queue_id": queue_id,
        "worker_id": worker_id,
        "now": now,
        "delay": float(delay_seconds),
        "priority": priority,
        "limit_key": limit_key,
        "trace_context": tracing.carrier(),
    }
    if len(texts) == 1:
        row = await db.fetchone(db.sql.MSG_INSERT, {**params, "payload": texts[0]})
        assert row is not None
        return [int(row[0])]
    rows = await db.fetch(db.sql.MSG_INSERT_BATCH, {**params, "payloads": JsonTexts(texts)})
    # One statement, one sequence: ids ascend in input order.
    return sorted(int(row[0]) for row in rows)


async def enqueue_keyed(
    db: Queryable,
    queue_id: int,
    worker_id: int | None,
    texts: Sequence[str],
    keys: Sequence[str | None],
    now: datetime | None,
    *,
    delay_seconds: float = 0.0,
    priority: int = 0,
    window: float | None = None,
    limit_key: str | None = None,
) -> list[EnqueuedId]:
    """Insert the payloads whose deduplication key (`keys`, one per payload, None for none)
    no message holds yet, as one transaction; an id for every payload, in input order, marked
    `duplicate` where an existing message (or an earlier payload of the batch: the first wins)
    holds the key (semantics.md §7.8). The database decides; this only reads its answer."""
    params = {
        "queue_id": queue_id,
        "worker_id": worker_id,
        "now": now,
        "delay": float(delay_seconds),
        "priority": priority,
        "limit_key": limit_key,
        "trace_context": tracing.carrier(),
        "payloads": JsonTexts(texts),
        "keys": encode_json(list(keys)),
        "key_list": key_list(keys),
        "window": window,
    }
    sql = db.sql.MSG_INSERT_KEYED if window is None else db.sql.MSG_INSERT_KEYED_WINDOW
    rows = [row for step in await _every_step(db, sql, params) for row in step]
    answered, missing = _answer(keys, rows)
    if missing:  # taken by a concurrent enqueue after this one's snapshot (Postgres)
        more = await db.fetch(db.sql.MSG_KEY_HOLDERS, {**params, "key_list": missing})
        answered, missing = _answer(keys, [*rows, *more])
        if missing:
            raise InternalError(f"Enqueue failed: no message holds key {missing[0]!r}")
    return answered


async def _every_step(
    db: Queryable, statements: Sequence[str], params: dict[str, Any]
) -> list[list[Row]]:
    """The statements as one transaction (see `run_steps`), with the rows of every one."""
    batch = getattr(db, "batch", None)
    if batch is not None:
        results: list[list[Row]] = await batch([(sql, params) for sql in statements])
        return results
    return [await db.fetch(sql, params) for sql in statements]


def _answer(keys: Sequence[str | None], rows: Sequence[Row]) -> tuple[list[EnqueuedId], list[str]]:
    """Each position's id from the rows of a keyed insert, (id, key, inserted, archived), and
    the keys no row answers."""
    inserted = sorted((int(r[0]), r[1]) for r in rows if r[2])
    fresh = {key: mid for mid, key in inserted if key is not None}
    held: dict[str, tuple[int, int]] = {}  # key -> (archived, -id): unarchived first, newest
    for mid, key, was_inserted, archived in rows:
        rank = (int(archived), -int(mid))
        if not was_inserted and (key not in held or rank < held[key]):
            held[key] = rank
    ids = iter(mid for mid, _ in inserted)
    out: list[EnqueuedId] = []
    missing: list[str] = []
    seen: set[str] = set()
    for key in keys:
        if key is None or (key in fresh and key not in seen):
            out.append(EnqueuedId(next(ids)))
        elif key in fresh:
            out.append(EnqueuedId(fresh[key], duplicate=True))
        elif key in held:
            out.append(EnqueuedId(-held[key][1], duplicate=True))
        elif key not in missing:
            missing.append(key)
        if key is not None:
            seen.add(key)
    return out, missing


async def cancel(
    db: Queryable,
    queue_id: int,
    now: datetime | None,
    *,
    message_id: int | None = None,
    key: str | None = None,
    queue: str = "",
) -> bool:
    """Cancel the queued message `message_id` (or the unarchived one holding `key`) of the
    queue: archived with a mark, never delivered again (semantics.md §7.9). True when this
    call cancelled it; False when it was archived already (handled, or cancelled before) or,
    by key, when no unarchived message holds the key. A message under a running lease raises
    `MessageLeasedError`; the trigger of a workflow run, `ValidationError`; an id not in the
    queue, `MessageNotFoundError`. One guarded UPDATE decides; the reads after it only say why
    it changed nothing."""
    by_key = key is not None
    sql = db.sql
    update, state = (
        (sql.MSG_CANCEL_KEY, sql.MSG_CANCEL_KEY_STATE)
        if by_key
        else (sql.MSG_CANCEL, sql.MSG_CANCEL_STATE)
    )
    params = {"queue_id": queue_id, "now": now, "id": message_id, "key": key}
    for _ in range(_CANCEL_ATTEMPTS):
        if await db.fetch(update, params):
            return True
        row = await db.fetchone(state, params)
        if row is None:
            if by_key:
                return False
            where = f" in queue '{queue}'" if queue else ""
            raise MessageNotFoundError(f"Message with id '{message_id}' not found{where}")
        mid, archived_at, _cancelled_at, leased, worker, vt, run_id = row
        if archived_at is not None:
            return False
        if run_id is not None:
            raise ValidationError(
                f"Validation failed: message {mid} is the trigger of workflow run {run_id} and "
                f"cannot be cancelled on its own; cancel the workflow run instead "
                f"(Run.cancel(), or `pgqrs workflow cancel {run_id}`)"
            )
        if leased:
            ends = db_to_api(vt)
            raise MessageLeasedError(
                f"Message {mid} is leased by worker {worker} until {ends}: a handler may be "
                "running it, so it cannot be cancelled; try again once the lease is over",
                message_id=int(mid),
                worker_id=None if worker is None else int(worker),
                lease_ends=ends,
            )
        # Its lease ended between the two statements: the next UPDATE decides again.
    raise InternalError(f"Cancel failed: message {message_id or key!r} kept changing; try again")


# A lease that ends between the guarded UPDATE and the read after it is tried once more.
_CANCEL_ATTEMPTS = 3


async def options(db: Queryable, message_id: int) -> tuple[int, str | None, str | None]:
    """What pgqrs's record does not carry: the message's priority, deduplication key and
    when it was cancelled (None: it was not)."""
    row = await db.fetchone(db.sql.MSG_OPTIONS, {"id": message_id})
    if row is None:
        raise MessageNotFoundError(f"Message with id '{message_id}' not found")
    return int(row[0] or 0), row[1], db_to_api(row[2])


async def claim(
    db: Queryable,
    queue_id: int,
    owner: Owner,
    limit: int,
    lease_seconds: float,
    now: datetime | None,
    max_read_ct: int,
    limits: Limited = None,
) -> list[Row]:
    """Lease up to `limit` visible messages to the worker, in claim order (semantics.md §7.3).
    The lease ends `lease_seconds` after the claim's own time (`now`, or the database's clock
    when the statement runs). `limits`: which limits of the queue the claim keeps (its own, or
    its keys' too; semantics.md §7.10)."""
    params = {
        **_owner(owner),
        "queue_id": queue_id,
        "ids": [],
        "limit": limit,
        "now": now,
        "lease": float(lease_seconds),
        "max_read_ct": max_read_ct,
    }
    if limits is not None:
        return sort_rows(await _limited(db, limits, False, params))
    return sort_rows(await db.fetch(db.sql.MSG_CLAIM, params))


# Per-key limited claims of at least this many messages take first on PostgreSQL: the check
# costs a statement, which pays once a claim would hold its queue's lock long (docs/decisions.md,
# "Concurrency and rate limits": measured from 25 up; at 10, and for a queue's own limits at
# every size, taking turns was as fast or faster).
TAKE_FIRST_FROM = 20


async def _limited(
    db: Queryable, limits: Limited, loop_step: bool, params: dict[str, Any]
) -> list[Row]:
    """A limited claim (or loop step), in turns; a per-key one of TAKE_FIRST_FROM or more taking
    first where the backend can (PostgreSQL, outside a caller's transaction, whose rollback the
    check would need), and in turns when that took more than a limit allows (semantics.md
    §7.10)."""
    limit = int(params["limit"])
    params["scan"] = limited_scan(limit)
    sql = db.sql
    if limits == "keys":
        first = sql.LOOP_STEP_KEY_LIMITED_FIRST if loop_step else sql.MSG_CLAIM_KEY_LIMITED_FIRST
        if first and limit >= TAKE_FIRST_FROM and getattr(db, "batch", None) is not None:
            try:
                return await run_steps(db, first, params, 0)
            except LimitsOvershot:
                pass
        turns = sql.LOOP_STEP_KEY_LIMITED if loop_step else sql.MSG_CLAIM_KEY_LIMITED
    else:
        turns = sql.LOOP_STEP_QUEUE_LIMITED if loop_step else sql.MSG_CLAIM_QUEUE_LIMITED
    return await run_steps(db, turns, params, sql.limited_claim_rows)


def limited_scan(limit: int) -> int:
    """How many visible messages a limited claim of `limit` considers: keys whose room is
    smaller than their share of the next `limit` are passed over, so it looks further."""
    return limit + limit // 2 + 16


async def loop_step(
    db: Queryable,
    queue_id: int,
    owner: Owner,
    finished: Sequence[int],
    limit: int,
    lease_seconds: float,
    now: datetime | None,
    archived_at: datetime | None,
    max_read_ct: int,
    limits: Limited = None,
    open_runs_at: datetime | None = None,
) -> list[Row]:
    """One poll-loop iteration in one transaction: archive the messages the last handler
    finished, then claim the next batch if the worker is still polling (semantics.md §10.1).
    A finished message is never claimed again by the same step.

    `open_runs_at` (a workflow loop, where the backend has LOOP_STEP_OPEN_RUNS): the claim also
    opens the run of each message it takes, those times taken from the store's clock; the rows
    then carry the run's columns after the message's (`runs.split_opened`)."""
    params = {
        **_owner(owner),
        "queue_id": queue_id,
        "ids": list(finished),
        "limit": limit,
        "now": now,
        "lease": float(lease_seconds),
        "wall_now": archived_at,
        "max_read_ct": max_read_ct,
    }
    if limits is not None:
        return sort_rows(await _limited(db, limits, True, params))
    if open_runs_at is not None:
        params["run_now"] = open_runs_at
        return sort_rows(await run_steps(db, db.sql.LOOP_STEP_OPEN_RUNS, params))
    return sort_rows(await run_steps(db, db.sql.LOOP_STEP, params))


async def archive(
    db: Queryable, ids: Sequence[int], owner: Owner, archived_at: datetime | None
) -> set[int]:
    params = {**_owner(owner), "ids": list(ids), "wall_now": archived_at}
    return {row[0] for row in await db.fetch(db.sql.MSG_ARCHIVE, params)}


async def delete(db: Queryable, ids: Sequence[int], owner: Owner) -> set[int]:
    """Delete owned rows; refused as a whole when a workflow run references one of them."""
    referenced = first_column(await db.fetch(db.sql.MSG_REFERENCED_BY_RUN, {"ids": list(ids)}))
    if referenced:
        raise ValidationError(
            f"Validation failed: message {referenced[0]} is the trigger of a workflow run and "
            "cannot be deleted; archive it instead"
        )
    params = {**_owner(owner), "ids": list(ids)}
    return {int(i) for i in first_column(await db.fetch(db.sql.MSG_DELETE, params))}


async def extend(
    db: Queryable, message_id: int, owner: Owner, extra_seconds: float, now: datetime | None
) -> bool:
    params = {**_owner(owner), "id": message_id, "seconds": float(extra_seconds), "now": now}
    return await db.execute(db.sql.MSG_EXTEND, params) > 0


async def set_lease(
    db: Queryable, ids: Sequence[int], owner: Owner, lease_seconds: float, now: datetime | None
) -> int:
    """Let the leases of still-owned messages end `lease_seconds` after `now` (heartbeats keep
    the leases of a running handler alive)."""
    params = {**_owner(owner), "ids": list(ids), "lease": float(lease_seconds), "now": now}
    return await db.execute(db.sql.MSG_SET_LEASE, params)


async def release(
    db: Queryable,
    ids: Sequence[int],
    owner: Owner,
    now: datetime | None,
    delay_seconds: float = 0.0,
) -> set[int]:
    """Give owned messages back, visible again `delay_seconds` after `now`."""
    return await _released(db, db.sql.MSG_RELEASE, ids, owner, now, delay_seconds)


async def give_back(
    db: Queryable,
    ids: Sequence[int],
    owner: Owner,
    now: datetime | None,
    delay_seconds: float = 0.0,
) -> set[int]:
    """`release`, and the read count the claim used is returned: what was given back never
    counts towards max_read_ct (a cancelled claim, a workflow's planned wait)."""
    return await _released(db, db.sql.MSG_GIVE_BACK, ids, owner, now, delay_seconds)


async def _released(
    db: Queryable,
    sql: str,
    ids: Sequence[int],
    owner: Owner,
    now: datetime | None,
    delay_seconds: float,
) -> set[int]:
    params = {**_owner(owner), "ids": list(ids), "now": now, "delay": float(delay_seconds)}
    return {int(i) for i in first_column(await db.fetch(sql, params))}


async def give_back_all(db: Queryable, owner: Owner, now: datetime | None) -> int:
    """`give_back` every message the registration holds (a cancelled poll loop)."""
    return await db.execute(db.sql.MSG_GIVE_BACK_ALL, {**_owner(owner), "now": now})


async def release_worker(db: Queryable, worker_id: int, now: datetime | None) -> int:
    """Release everything the worker holds, visible at `now`, without fencing (its own
    shutdown, the end of an ephemeral worker)."""
    return await db.execute(db.sql.MSG_RELEASE_WORKER, {"worker_id": worker_id, "now": now})


async def release_expired(db: Queryable, worker_id: int, now: datetime | None) -> int:
    """Clear the owner of what the worker held under a lease that ended by `now`; messages
    under a running lease keep it (recovery never takes a valid lease)."""
    return await db.execute(db.sql.MSG_RELEASE_EXPIRED, {"worker_id": worker_id, "now": now})


async def get_row(db: Queryable, message_id: int) -> Row:
    row = await db.fetchone(db.sql.MSG_BY_ID, {"id": message_id})
    if row is None:
        raise MessageNotFoundError(f"Message with id '{message_id}' not found")
    return row


async def count(db: Queryable) -> int:
    return await scalar_int(db, db.sql.MSG_COUNT)


async def archived_rows(db: Queryable, queue_id: int) -> list[Row]:
    return await db.fetch(db.sql.MSG_LIST_ARCHIVED, {"queue_id": queue_id})


async def browse_rows(
    db: Queryable, queue_id: int, *, which: str, now: datetime | None, limit: int
) -> list[Row]:
    """Up to `limit` rows of a queue: "live" (unarchived, by id), "leased" (by id) or
    "archived" (most recently archived first)."""
    statement = {
        "live": db.sql.MSG_LIST_LIVE,
        "leased": db.sql.MSG_LIST_LEASED,
        "archived": db.sql.MSG_LIST_ARCHIVED_RECENT,
    }[which]
    return await db.fetch(statement, {"queue_id": queue_id, "now": now, "limit": limit})
