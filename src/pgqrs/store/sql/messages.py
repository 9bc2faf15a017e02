"""Statements on `pgqrs_messages`: enqueue, claim, settle, look up."""

from __future__ import annotations

MSG_COLS = (
    "id, queue_id, payload, vt, enqueued_at, read_ct, dequeued_at, "
    "producer_worker_id, consumer_worker_id, archived_at"
)

# The worker named :worker_id is still polling (the poll loop's claims are guarded by it).
POLLING = (
    "EXISTS (SELECT 1 FROM {s}pgqrs_workers w WHERE w.id = :worker_id AND w.status = 'polling')"
)

# The worker is not suspended: a suspended consumer takes no new work (docs/decisions.md).
NOT_SUSPENDED = (
    "NOT EXISTS (SELECT 1 FROM {s}pgqrs_workers w WHERE w.id = :worker_id "
    "AND w.status = 'suspended')"
)

# A message is visible (claimable) at :now when it is unarchived, its lease or delay is over and
# it has not reached the poison threshold (semantics §7.1).
VISIBLE = (
    "archived_at IS NULL AND (vt IS NULL OR vt <= :now) AND COALESCE(read_ct, 0) < :max_read_ct"
)


class MessageSql:
    MSG_INSERT = (
        "INSERT INTO {s}pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct, "
        "producer_worker_id) VALUES (:queue_id, :payload, :vt, :now, 0, :worker_id) RETURNING id"
    )
    # :payloads is a list of stored JSON texts; one statement inserts the whole batch in order.
    MSG_INSERT_BATCH = (
        "INSERT INTO {s}pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct, "
        "producer_worker_id) SELECT :queue_id, value, :vt, :now, 0, :worker_id "
        "FROM json_each(:payloads) ORDER BY key RETURNING id"
    )
    # Runs inside BEGIN IMMEDIATE, so no other writer can claim the same rows meanwhile. The
    # claim-order index (migration 8) lets it stop after :limit rows (semantics §7.3).
    MSG_CLAIM = (
        "UPDATE {s}pgqrs_messages SET consumer_worker_id = :worker_id, vt = :vt, "
        "read_ct = COALESCE(read_ct, 0) + 1, dequeued_at = COALESCE(dequeued_at, :now) "
        "WHERE id IN (SELECT id FROM {s}pgqrs_messages WHERE queue_id = :queue_id AND "
        f"{VISIBLE} AND {NOT_SUSPENDED} ORDER BY enqueued_at, id LIMIT :limit) "
        f"RETURNING {MSG_COLS}"
    )
    # The poll loop's claim: nothing unless the worker is still polling, so the loop learns of
    # an interrupt from the claim itself instead of a status read per iteration.
    MSG_CLAIM_IF_POLLING = MSG_CLAIM.replace(NOT_SUSPENDED, POLLING)
    MSG_ARCHIVE = (
        "UPDATE {s}pgqrs_messages SET archived_at = :archived_at WHERE id IN_LIST(:ids) "
        "AND consumer_worker_id = :worker_id AND archived_at IS NULL RETURNING id"
    )
    # One poll-loop iteration, as one transaction: archive what the last handler finished
    # (:ids), then claim the next batch. The last statement's rows are the claimed messages.
    LOOP_STEP: tuple[str, ...] = (MSG_ARCHIVE, MSG_CLAIM_IF_POLLING)
    MSG_DELETE = (
        "DELETE FROM {s}pgqrs_messages WHERE id IN_LIST(:ids) "
        "AND consumer_worker_id = :worker_id RETURNING id"
    )
    MSG_REFERENCED_BY_RUN = (
        "SELECT message_id FROM {s}pgqrs_workflow_runs WHERE message_id IN_LIST(:ids)"
    )
    # max(vt, now) + seconds: the lease never ends earlier than it would have (semantics §7.4).
    MSG_EXTEND = (
        "UPDATE {s}pgqrs_messages SET vt = pgqrs_add_seconds("
        "CASE WHEN vt IS NULL OR vt < :now THEN :now ELSE vt END, :seconds) "
        "WHERE id = :id AND consumer_worker_id = :worker_id AND archived_at IS NULL"
    )
    MSG_SET_LEASE = (
        "UPDATE {s}pgqrs_messages SET vt = :vt WHERE id IN_LIST(:ids) "
        "AND consumer_worker_id = :worker_id AND archived_at IS NULL"
    )
    MSG_RELEASE = (
        "UPDATE {s}pgqrs_messages SET vt = :vt, consumer_worker_id = NULL WHERE id IN_LIST(:ids) "
        "AND consumer_worker_id = :worker_id AND archived_at IS NULL RETURNING id"
    )
    MSG_RELEASE_WORKER = (
        "UPDATE {s}pgqrs_messages SET vt = :vt, consumer_worker_id = NULL "
        "WHERE consumer_worker_id = :worker_id AND archived_at IS NULL"
    )
    MSG_BY_ID = f"SELECT {MSG_COLS} FROM {{s}}pgqrs_messages WHERE id = :id"
    MSG_COUNT = "SELECT COUNT(*) FROM {s}pgqrs_messages WHERE archived_at IS NULL"
    MSG_LIST_ARCHIVED = (
        f"SELECT {MSG_COLS} FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id "
        "AND archived_at IS NOT NULL ORDER BY archived_at DESC, id DESC"
    )
    # Browsing a queue (the command line): bounded, newest archive first for history.
    MSG_LIST_LIVE = (
        f"SELECT {MSG_COLS} FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id "
        "AND archived_at IS NULL ORDER BY id LIMIT :limit"
    )
    MSG_LIST_LEASED = (
        f"SELECT {MSG_COLS} FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id "
        "AND archived_at IS NULL AND consumer_worker_id IS NOT NULL AND vt > :now "
        "ORDER BY id LIMIT :limit"
    )
    MSG_LIST_ARCHIVED_RECENT = (
        f"SELECT {MSG_COLS} FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id "
        "AND archived_at IS NOT NULL ORDER BY archived_at DESC, id DESC LIMIT :limit"
    )


class MessagePostgres(MessageSql):
    # `{notify}` adds a NOTIFY on the schema's channel in the same statement (one per call, not
    # per row), so idle consumers in other processes wake at once (Config.listen_notify).
    MSG_INSERT = (
        "WITH ins AS (INSERT INTO {s}pgqrs_messages (queue_id, payload, vt, enqueued_at, "
        "read_ct, producer_worker_id) VALUES (:queue_id, :payload, :vt, :now, 0, :worker_id) "
        "RETURNING id) SELECT ins.id FROM ins{notify}"
    )
    # :payloads arrives as one JSON array (built from the stored texts): the server splits it,
    # which costs far less than sending a text[] whose elements the driver escapes one by one.
    MSG_INSERT_BATCH = (
        "WITH ins AS (INSERT INTO {s}pgqrs_messages (queue_id, payload, vt, enqueued_at, "
        "read_ct, producer_worker_id) SELECT :queue_id, e.value, :vt, :now, 0, :worker_id "
        "FROM jsonb_array_elements(CAST(:payloads AS jsonb)) WITH ORDINALITY AS e(value, ord) "
        "ORDER BY e.ord RETURNING id) SELECT ins.id FROM ins{notify}"
    )
    # SKIP LOCKED lets any number of consumers claim side by side without waiting on each other.
    MSG_CLAIM = (
        "WITH picked AS (SELECT id FROM {s}pgqrs_messages WHERE queue_id = :queue_id AND "
        f"{VISIBLE} AND {NOT_SUSPENDED} ORDER BY enqueued_at, id LIMIT :limit "
        "FOR UPDATE SKIP LOCKED) "
        "UPDATE {s}pgqrs_messages m SET consumer_worker_id = :worker_id, vt = :vt, "
        "read_ct = COALESCE(m.read_ct, 0) + 1, dequeued_at = COALESCE(m.dequeued_at, :now) "
        "FROM picked WHERE m.id = picked.id RETURNING "
        + ", ".join(f"m.{col.strip()}" for col in MSG_COLS.split(","))
    )
    # One statement and one commit per poll-loop iteration: a data-modifying CTE always runs to
    # completion, so the archive happens even when nothing is claimed.
    LOOP_STEP = (
        "WITH archived AS (UPDATE {s}pgqrs_messages SET archived_at = :archived_at "
        "WHERE id = ANY(:ids) AND consumer_worker_id = :worker_id AND archived_at IS NULL "
        "RETURNING id), "
        "picked AS (SELECT id FROM {s}pgqrs_messages WHERE queue_id = :queue_id AND "
        f"{VISIBLE} AND {POLLING} ORDER BY enqueued_at, id LIMIT :limit FOR UPDATE SKIP LOCKED) "
        "UPDATE {s}pgqrs_messages m SET consumer_worker_id = :worker_id, vt = :vt, "
        "read_ct = COALESCE(m.read_ct, 0) + 1, dequeued_at = COALESCE(m.dequeued_at, :now) "
        "FROM picked WHERE m.id = picked.id RETURNING "
        + ", ".join(f"m.{col.strip()}" for col in MSG_COLS.split(",")),
    )
    MSG_EXTEND = (
        "UPDATE {s}pgqrs_messages SET vt = GREATEST(COALESCE(vt, :now), :now) "
        "+ make_interval(secs => :seconds) "
        "WHERE id = :id AND consumer_worker_id = :worker_id AND archived_at IS NULL"
    )
