"""Statements on `pgqrs_messages`: enqueue, claim, settle, look up.

Times: `:now` is the time a statement acts at. Callers pass an injected time, or NULL for "the
database's clock when the statement runs" (`render()` and the executors make it so: the server's
`statement_timestamp()` on PostgreSQL, the local clock at execution on SQLite). Lease ends and
delays are computed in SQL from it (`pgqrs_add_seconds`), so a statement that waited for a
connection or a lock never lands with a lease that is already over (docs/guarantees.md, "Time").
`TS(col)` marks a stored timestamp compared with another time (see `render()`).
"""

from __future__ import annotations

from .columns import MESSAGE
from .spelling import read

# The worker named :worker_id is the registration the caller holds (`fence`, set anew each time
# a name registers): a handle from an earlier registration of the same worker passes no check.
CURRENT = "EXISTS (SELECT 1 FROM {s}pgqrs_workers w WHERE w.id = :worker_id AND w.fence = :fence"
# ... and is still polling (the poll loop's claims are guarded by it).
POLLING = f"{CURRENT} AND w.status = 'polling')"
# ... and is not suspended: a suspended consumer takes no new work (docs/decisions.md).
NOT_SUSPENDED = f"{CURRENT} AND w.status <> 'suspended')"
# What a consumer may settle: its own unarchived messages, while it is the current registration.
OWNED = f"consumer_worker_id = :worker_id AND archived_at IS NULL AND {CURRENT})"

# The poison threshold of queue :queue_id: its own `max_read_ct`, else the caller's default.
QUEUE_LIMIT = (
    "COALESCE((SELECT lq.max_read_ct FROM {s}pgqrs_queues lq WHERE lq.id = :queue_id), "
    ":max_read_ct)"
)

# A message is visible (claimable) at :now when it is unarchived, its lease or delay is over and
# it has not reached its queue's poison threshold (docs/guarantees.md, "Visibility").
VISIBLE = (
    f"archived_at IS NULL AND (vt IS NULL OR TS(vt) <= :now) AND COALESCE(read_ct, 0) < "
    f"{QUEUE_LIMIT}"
)

# Finished messages :ids archived at :wall_now, where the caller still owns them.
_ARCHIVE = (
    "UPDATE {s}pgqrs_messages SET archived_at = :wall_now WHERE id IN_LIST(:ids) "
    f"AND {OWNED} RETURNING id"
)
# A claim's changes to each row it takes: the lease ends :lease seconds after :now.
_TAKE = (
    "consumer_worker_id = :worker_id, vt = {s}pgqrs_add_seconds(:now, :lease), "
    "read_ct = COALESCE(read_ct, 0) + 1, dequeued_at = COALESCE(dequeued_at, :now)"
)


def _next_batch(loop_step: bool) -> str:
    """The ids of the next batch in claim order (semantics.md §7.3), through the claim-order index
    (migration 8), for a consumer that is not suspended, or (`loop_step`) that is polling.
    :ids are excluded: the poll loop archives them in the same transaction."""
    worker = POLLING if loop_step else NOT_SUSPENDED
    return (
        f"SELECT id FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id AND {VISIBLE} "
        f"AND {worker} AND NOT (id IN_LIST(:ids)) ORDER BY enqueued_at, id LIMIT :limit"
    )


# The claim, in every variant, is made by one builder per dialect. Each gives the statements
# of one transaction; the rows of the last are the claimed messages. `loop_step`: one poll-loop
# iteration, which archives what the last handler finished (:ids), then claims the next batch
# unless the worker stopped polling. Otherwise a consumer's claim (dequeue).


def claim_sqlite(*, loop_step: bool) -> tuple[str, ...]:
    # Runs inside BEGIN IMMEDIATE, so no other writer can claim the same rows meanwhile.
    take = (
        f"UPDATE {{s}}pgqrs_messages SET {_TAKE} WHERE id IN ({_next_batch(loop_step)}) "
        f"RETURNING {MESSAGE.select}"
    )
    return (_ARCHIVE, take) if loop_step else (take,)


def claim_postgres(*, loop_step: bool) -> tuple[str, ...]:
    # SKIP LOCKED lets any number of consumers claim side by side without waiting on each other.
    # The loop step is one statement and one commit: a data-modifying CTE always runs to
    # completion, so the archive happens even when nothing is claimed. All CTEs see one
    # snapshot, in which a finished message whose lease lapsed is visible again: the claim
    # excludes :ids, or it would take the row back and PostgreSQL would keep only one of the
    # two updates of that row (the archive would be lost and the handler would run again).
    archived = f"WITH archived AS ({_ARCHIVE}), " if loop_step else "WITH "
    return (
        f"{archived}picked AS ({_next_batch(loop_step)} FOR UPDATE SKIP LOCKED) "
        f"UPDATE {{s}}pgqrs_messages m SET {_TAKE} FROM picked WHERE m.id = picked.id "
        f"RETURNING {MESSAGE.qualified('m')}",
    )


class MessageSql:
    MSG_INSERT = (
        "INSERT INTO {s}pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct, "
        "producer_worker_id) VALUES (:queue_id, :payload, {s}pgqrs_add_seconds(:now, :delay), "
        ":now, 0, :worker_id) RETURNING id"
    )
    # :payloads is a list of stored JSON texts; one statement inserts the whole batch in order.
    MSG_INSERT_BATCH = (
        "INSERT INTO {s}pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct, "
        "producer_worker_id) SELECT :queue_id, value, {s}pgqrs_add_seconds(:now, :delay), "
        ":now, 0, :worker_id FROM json_each(:payloads) ORDER BY key RETURNING id"
    )
    MSG_CLAIM = claim_sqlite(loop_step=False)[0]
    MSG_ARCHIVE = _ARCHIVE
    # One poll-loop iteration, as one transaction (see `claim_sqlite`).
    LOOP_STEP = claim_sqlite(loop_step=True)
    # Archived rows too (semantics.md §7.4): an owner may drop its history.
    MSG_DELETE = (
        "DELETE FROM {s}pgqrs_messages WHERE id IN_LIST(:ids) AND consumer_worker_id = :worker_id "
        f"AND {CURRENT}) RETURNING id"
    )
    MSG_REFERENCED_BY_RUN = read(
        "SELECT message_id FROM {s}pgqrs_workflow_runs WHERE message_id IN_LIST(:ids)"
    )
    # max(vt, now) + seconds: the lease never ends earlier than it would have (semantics.md §7.4).
    MSG_EXTEND = (
        "UPDATE {s}pgqrs_messages SET vt = {s}pgqrs_add_seconds("
        "CASE WHEN vt IS NULL OR TS(vt) < :now THEN :now ELSE vt END, :seconds) "
        f"WHERE id = :id AND {OWNED}"
    )
    # Heartbeats keep the leases of messages a handler holds alive.
    MSG_SET_LEASE = (
        "UPDATE {s}pgqrs_messages SET vt = {s}pgqrs_add_seconds(:now, :lease) "
        f"WHERE id IN_LIST(:ids) AND {OWNED}"
    )
    # Visible again :delay seconds after :now (an absolute time is :now with no delay).
    MSG_RELEASE = (
        "UPDATE {s}pgqrs_messages SET vt = {s}pgqrs_add_seconds(:now, :delay), "
        f"consumer_worker_id = NULL WHERE id IN_LIST(:ids) AND {OWNED} RETURNING id"
    )
    # Give claims back: released and the claim's read count returned, so it never counts
    # towards max_read_ct. For a claim cancelled before its messages reached a handler, and a
    # workflow's planned wait ("release for scheduling", semantics.md §11.2).
    MSG_GIVE_BACK = (
        "UPDATE {s}pgqrs_messages SET vt = {s}pgqrs_add_seconds(:now, :delay), "
        "consumer_worker_id = NULL, "
        "read_ct = CASE WHEN COALESCE(read_ct, 0) > 0 THEN read_ct - 1 ELSE 0 END "
        f"WHERE id IN_LIST(:ids) AND {OWNED} RETURNING id"
    )
    # Everything a registration holds, given back (a cancelled poll loop's claim).
    MSG_GIVE_BACK_ALL = (
        "UPDATE {s}pgqrs_messages SET vt = :now, consumer_worker_id = NULL, "
        "read_ct = CASE WHEN COALESCE(read_ct, 0) > 0 THEN read_ct - 1 ELSE 0 END "
        f"WHERE {OWNED}"
    )
    # Everything a worker holds, without fencing (its own shutdown, an ephemeral worker's end).
    MSG_RELEASE_WORKER = (
        "UPDATE {s}pgqrs_messages SET vt = :now, consumer_worker_id = NULL "
        "WHERE consumer_worker_id = :worker_id AND archived_at IS NULL"
    )
    # What a stale worker held under a lease that is over: the owner is cleared, the message is
    # visible from when its lease ended. A lease still running is never taken (recovery).
    MSG_RELEASE_EXPIRED = (
        "UPDATE {s}pgqrs_messages SET consumer_worker_id = NULL "
        "WHERE consumer_worker_id = :worker_id AND archived_at IS NULL "
        "AND (vt IS NULL OR TS(vt) <= :now)"
    )
    MSG_BY_ID = read(f"SELECT {MESSAGE.select} FROM {{s}}pgqrs_messages WHERE id = :id")
    MSG_COUNT = read("SELECT COUNT(*) FROM {s}pgqrs_messages WHERE archived_at IS NULL")
    MSG_LIST_ARCHIVED = read(
        f"SELECT {MESSAGE.select} FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id "
        "AND archived_at IS NOT NULL ORDER BY archived_at DESC, id DESC"
    )
    # Browsing a queue (the command line): bounded, newest archive first for history.
    MSG_LIST_LIVE = read(
        f"SELECT {MESSAGE.select} FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id "
        "AND archived_at IS NULL ORDER BY id LIMIT :limit"
    )
    MSG_LIST_LEASED = read(
        f"SELECT {MESSAGE.select} FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id "
        "AND archived_at IS NULL AND consumer_worker_id IS NOT NULL AND TS(vt) > :now "
        "ORDER BY id LIMIT :limit"
    )
    MSG_LIST_ARCHIVED_RECENT = read(
        f"SELECT {MESSAGE.select} FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id "
        "AND archived_at IS NOT NULL ORDER BY archived_at DESC, id DESC LIMIT :limit"
    )


class MessagePostgres(MessageSql):
    # `{notify}` adds a NOTIFY on the schema's channel in the same statement (one per call, not
    # per row), so idle consumers in other processes wake at once (Config.listen_notify).
    MSG_INSERT = (
        "WITH ins AS (INSERT INTO {s}pgqrs_messages (queue_id, payload, vt, enqueued_at, "
        "read_ct, producer_worker_id) VALUES (:queue_id, :payload, "
        "{s}pgqrs_add_seconds(:now, :delay), :now, 0, :worker_id) "
        "RETURNING id) SELECT ins.id FROM ins{notify}"
    )
    # :payloads arrives as one JSON array (built from the stored texts): the server splits it,
    # which costs far less than sending a text[] whose elements the driver escapes one by one.
    MSG_INSERT_BATCH = (
        "WITH ins AS (INSERT INTO {s}pgqrs_messages (queue_id, payload, vt, enqueued_at, "
        "read_ct, producer_worker_id) SELECT :queue_id, e.value, "
        "{s}pgqrs_add_seconds(:now, :delay), :now, 0, :worker_id "
        "FROM jsonb_array_elements(CAST(:payloads AS jsonb)) WITH ORDINALITY AS e(value, ord) "
        "ORDER BY e.ord RETURNING id) SELECT ins.id FROM ins{notify}"
    )
    MSG_CLAIM = claim_postgres(loop_step=False)[0]
    LOOP_STEP = claim_postgres(loop_step=True)
