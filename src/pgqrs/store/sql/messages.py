"""Statements on `pgqrs_messages`: enqueue, claim, settle, look up.

Times: `:now` is the time a statement acts at. Callers pass an injected time, or NULL for "the
database's clock when the statement runs" (`render()` and the executors make it so: the server's
`statement_timestamp()` on PostgreSQL, the local clock at execution on SQLite). Lease ends and
delays are computed in SQL from it (`pgqrs_add_seconds`), so a statement that waited for a
connection or a lock never lands with a lease that is already over (docs/guarantees.md, "Time").
`TS(col)` marks a stored timestamp compared with another time (see `render()`).
"""

from __future__ import annotations

from typing import Literal

from .columns import MESSAGE
from .limits import OVERSHOT, QUEUE_ROOM, QUEUE_ROOM_OF_ROOMS, TAKEN_HERE, rooms, spend
from .spelling import read

# Which limits a claim keeps: none, the queue's own only, or its keys' too.
Limited = Literal["queue", "keys"] | None

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


# Claim order (semantics.md §7.3): the highest priority first, first in first out within one.
CLAIM_ORDER = "priority DESC, enqueued_at, id"


def _next_batch(loop_step: bool, limit: str = ":limit") -> str:
    """The ids of the next batch in claim order (semantics.md §7.3), through the claim-order index
    (migration 11), for a consumer that is not suspended, or (`loop_step`) that is polling.
    :ids are excluded: the poll loop archives them in the same transaction."""
    worker = POLLING if loop_step else NOT_SUSPENDED
    return (
        f"SELECT id FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id AND {VISIBLE} "
        f"AND {worker} AND NOT (id IN_LIST(:ids)) ORDER BY {CLAIM_ORDER} LIMIT {limit}"
    )


# The claim of a queue with limits (semantics.md §7.10), as CTEs ending in `picked`. Without
# limits of its keys (`keyed` False), the next batch, as many as the queue's room allows.
# Otherwise at most :scan visible messages in claim order (keys out of room skipped), of which
# each key keeps as many as its room, and the queue as many as its own. `cte_in_limit` False
# (Turso, which resolves no CTE in a LIMIT): the queue's room is written out in the LIMIT, and
# the keys' leases are counted per limit rather than in one grouped pass. `locking`
# (PostgreSQL): the messages looked at are locked, those another claim holds skipped.
# `finishing` (keyed): a loop step that archives :ids in the same statement counts them out of
# flight.
def _limited_batch(
    loop_step: bool,
    keyed: bool,
    cte_in_limit: bool,
    *,
    locking: bool = False,
    finishing: bool = False,
) -> str:
    limit = f"COALESCE({QUEUE_ROOM_OF_ROOMS if cte_in_limit else QUEUE_ROOM}, :limit)"
    lock = " FOR UPDATE SKIP LOCKED" if locking else ""
    if not keyed:
        picked = f"picked AS ({_next_batch(loop_step, limit)}{lock})"
        return f"{rooms(keyed)}, {picked}"
    # When every limit has room for the whole batch, no scanned message is passed over, so the
    # next :limit are enough.
    scan = (
        "CASE WHEN (SELECT MIN(r.room) FROM rooms r) >= :limit THEN :limit ELSE :scan END"
        if cte_in_limit
        else ":scan"
    )
    worker = POLLING if loop_step else NOT_SUSPENDED
    order = "c.priority DESC, c.enqueued_at, c.id"
    return (
        f"{rooms(keyed, grouped=cte_in_limit, finishing=finishing)}, "
        "cand AS (SELECT id, limit_key, priority, enqueued_at "
        f"FROM {{s}}pgqrs_messages WHERE queue_id = :queue_id AND {VISIBLE} AND {worker} "
        "AND NOT (id IN_LIST(:ids)) AND (limit_key IS NULL OR limit_key NOT IN "
        f"(SELECT r.limit_key FROM rooms r WHERE r.room < 1)) ORDER BY {CLAIM_ORDER} "
        f"LIMIT {scan}{lock}), "
        "ranked AS (SELECT c.id, c.priority, c.enqueued_at, r.room, ROW_NUMBER() OVER "
        f"(PARTITION BY c.limit_key ORDER BY {order}) AS nth FROM cand c "
        "LEFT JOIN rooms r ON r.limit_key = c.limit_key), "
        "picked AS (SELECT c.id FROM ranked c WHERE c.room IS NULL OR c.nth <= c.room "
        f"ORDER BY {order} LIMIT {limit})"
    )


# After a limited claim, its rate limits' buckets lose a token per message taken: the queue's
# for every message, a key's for the key's (`taken`: the claimed rows `t`, a FROM and WHERE).
def _spend(taken: str, keyed: bool) -> str:
    mine = "l.limit_key = '' OR t.limit_key = l.limit_key" if keyed else "l.limit_key = ''"
    counted = f"SELECT COUNT(*) FROM {taken} AND ({mine})"
    return (
        f"UPDATE {{s}}pgqrs_limits AS l SET {spend('l', counted)} "
        "WHERE l.queue_id = :queue_id AND l.rate_per_second IS NOT NULL"
    )


# SQLite: the rows this transaction's claim took. The executor gives a transaction's statements
# one :now, so they are the worker's unarchived rows whose lease ends at :now + :lease (an
# earlier claim of the same worker at the same injected time would be counted too: tokens are
# then spent twice, never handed out twice).
_TAKEN_SQLITE = (
    "{s}pgqrs_messages t WHERE t.queue_id = :queue_id AND t.archived_at IS NULL "
    "AND t.consumer_worker_id = :worker_id AND t.vt = {s}pgqrs_add_seconds(:now, :lease)"
)


# Postgres: the rows picked, each locked by the pick (SKIP LOCKED) and so each taken.
def _taken_postgres(keyed: bool) -> str:
    return "picked p JOIN cand t ON t.id = p.id WHERE TRUE" if keyed else "picked t WHERE TRUE"


# The claim, in every variant, is made by one builder per dialect. Each gives the statements
# of one transaction; the rows of the last are the claimed messages. `loop_step`: one poll-loop
# iteration, which archives what the last handler finished (:ids), then claims the next batch
# unless the worker stopped polling. Otherwise a consumer's claim (dequeue).


def claim_sqlite(
    *, loop_step: bool, limits: Limited = None, cte_in_limit: bool = True
) -> tuple[str, ...]:
    # Runs inside BEGIN IMMEDIATE, so no other writer can claim the same rows meanwhile (and
    # the limits' room, counted in the statement, cannot change under it). `cte_in_limit`:
    # False for Turso (see `_limited_batch`).
    if limits is not None:
        keyed = limits == "keys"
        take = (
            f"UPDATE {{s}}pgqrs_messages SET {_TAKE} WHERE id IN (WITH "
            f"{_limited_batch(loop_step, keyed, cte_in_limit)} SELECT id FROM picked) "
            f"RETURNING {MESSAGE.select}"
        )
        spent = _spend(_TAKEN_SQLITE, keyed)
        return (_ARCHIVE, take, spent) if loop_step else (take, spent)
    take = (
        f"UPDATE {{s}}pgqrs_messages SET {_TAKE} WHERE id IN ({_next_batch(loop_step)}) "
        f"RETURNING {MESSAGE.select}"
    )
    return (_ARCHIVE, take) if loop_step else (take,)


# Limited claims of one queue take turns (a transaction lock on the queue), and count room in a
# statement of their own after it: a statement's snapshot is taken when it starts, so room
# counted in the statement that waited for the lock would miss the claim it waited for.
_LOCK = "pg_advisory_xact_lock(hashtextextended('pgqrs-limits:' || CAST(:queue_id AS text), 0))"
_LIMITS_LOCK = f"SELECT {_LOCK}"
# ... taken only by a claim that took something (`claim_postgres_first`).
_LIMITS_LOCK_IF_TAKEN = f"WITH {TAKEN_HERE} SELECT {_LOCK} WHERE EXISTS (SELECT 1 FROM taken)"


# PostgreSQL: the claim's changes to the rows of CTE `picked`, which it locked; their new state.
_TAKE_PICKED = (
    f"UPDATE {{s}}pgqrs_messages m SET {_TAKE} FROM picked WHERE m.id = picked.id "
    f"RETURNING {MESSAGE.qualified('m')}"
)


def claim_postgres(*, loop_step: bool, limits: Limited = None, then: str = "") -> tuple[str, ...]:
    if limits is not None:
        keyed = limits == "keys"
        # In turns: the loop step's archive goes first (so the claim counts those messages out
        # of flight, and it never waits for a row lock while holding the queue's lock), then
        # the lock, then the claim, which counts the room, takes and spends the tokens. It
        # skips what is locked: a claim that took first (`claim_postgres_first`) holds its rows
        # while it waits for its turn, and waiting for them here would deadlock.
        claim = (
            f"WITH {_limited_batch(loop_step, keyed, cte_in_limit=True, locking=True)}, "
            f"spent AS ({_spend(_taken_postgres(keyed), keyed)}) {_TAKE_PICKED}"
        )
        return (_ARCHIVE, _LIMITS_LOCK, claim) if loop_step else (_LIMITS_LOCK, claim)
    # SKIP LOCKED lets any number of consumers claim side by side without waiting on each other.
    # The loop step is one statement and one commit: a data-modifying CTE always runs to
    # completion, so the archive happens even when nothing is claimed. All CTEs see one
    # snapshot, in which a finished message whose lease lapsed is visible again: the claim
    # excludes :ids, or it would take the row back and PostgreSQL would keep only one of the
    # two updates of that row (the archive would be lost and the handler would run again).
    # With `then` (more CTEs and a final SELECT, reading the claimed rows as CTE `taken`), the
    # statement goes on after the claim: the workflow loop's opens the runs of what it took.
    archived = f"WITH archived AS ({_ARCHIVE}), " if loop_step else "WITH "
    picked = f"{archived}picked AS ({_next_batch(loop_step)} FOR UPDATE SKIP LOCKED)"
    if then:
        return (f"{picked}, taken AS ({_TAKE_PICKED}), {then}",)
    return (f"{picked} {_TAKE_PICKED}",)


def claim_postgres_first(*, loop_step: bool) -> tuple[str, ...]:
    """A per-key limited claim that takes first and its turn only to check (semantics.md §7.10):
    it claims side by side with the others, as much as the room it counts in its own snapshot
    allows; then, if it took anything, it waits for the queue's lock and checks in a snapshot
    that sees every claim made before its turn (`OVERSHOT`): a limit now exceeded undoes the
    whole transaction (the claim is then made again in turns), else it spends the tokens. The
    claimed rows are the first statement's."""
    archived = f"archived AS ({_ARCHIVE}), " if loop_step else ""
    batch = _limited_batch(loop_step, True, cte_in_limit=True, locking=True, finishing=loop_step)
    return (f"WITH {archived}{batch} {_TAKE_PICKED}", _LIMITS_LOCK_IF_TAKEN, OVERSHOT)


# -- deduplication keys (semantics.md §7.8) -----------------------------------------------------
# Message `h` holds its key when it is unarchived, or (with a window of :window seconds, NULL
# for none) when it was archived, not cancelled, less than :window seconds before :now. Two
# conditions, not one with OR, so that each is answered by its own partial index (migration 11).
_LIVE = "h.queue_id = :queue_id AND {key} AND h.archived_at IS NULL"
_RECENT = (
    "h.queue_id = :queue_id AND {key} AND h.archived_at IS NOT NULL AND h.cancelled_at IS NULL "
    "AND {s}pgqrs_add_seconds(h.archived_at, :window) > :now"
)


def _not_held(key: str) -> str:
    return " AND ".join(
        f"NOT EXISTS (SELECT 1 FROM {{s}}pgqrs_messages h WHERE {held})"
        for held in (_LIVE.format(key=key), _RECENT.format(key=key, s="{s}"))
    )


# The holders of the keys :key_list: (id, key, 0, archived).
_KEYS = "h.dedup_key IN_LIST(:key_list)"
_HOLDERS = (
    f"SELECT h.id, h.dedup_key, 0, 0 FROM {{s}}pgqrs_messages h WHERE {_LIVE.format(key=_KEYS)} "
    f"UNION ALL SELECT h.id, h.dedup_key, 0, 1 FROM {{s}}pgqrs_messages h "
    f"WHERE {_RECENT.format(key=_KEYS, s='{s}')}"
)
# :trace_context, the enqueue's trace context (pgqrs.tracing), is NULL unless tracing is on.
_INSERT_COLUMNS = (
    "INSERT INTO {s}pgqrs_messages (queue_id, payload, vt, enqueued_at, read_ct, "
    "producer_worker_id, priority, limit_key, trace_context"
)
_VALUES = (
    "{s}pgqrs_add_seconds(:now, :delay), :now, 0, :worker_id, :priority, :limit_key, :trace_context"
)
# A keyed batch, position by position (:payloads stored JSON texts, :keys a JSON array of keys
# or nulls): a position is inserted unless its key is held already or an earlier position has
# the same key (the first wins). Every step returns rows (id, key, inserted, archived): the
# rows inserted, then each key's holders, from which the caller answers every position.
_KEYED_INSERT_SQLITE = (
    f"{_INSERT_COLUMNS}, dedup_key) SELECT :queue_id, i.payload, {_VALUES}, i.dedup_key "
    "FROM (SELECT p.key AS ord, p.value AS payload, k.value AS dedup_key, "
    "row_number() OVER (PARTITION BY k.value ORDER BY p.key) AS nth "
    "FROM json_each(:payloads) p JOIN json_each(:keys) k ON k.key = p.key) AS i "
    f"WHERE i.dedup_key IS NULL OR (i.nth = 1 AND {_not_held('h.dedup_key = i.dedup_key')}) "
    "ORDER BY i.ord RETURNING id, dedup_key, 1, 0"
)
# PostgreSQL: every enqueue of a key takes a transaction lock on (schema, queue, key), keys in
# one order (two batches never deadlock), before it inserts. Without a window, in the same
# statement: the unique index settles a race among unarchived holders (ON CONFLICT; a key a
# concurrent enqueue took meanwhile is answered by MSG_KEY_HOLDERS after). With a window, in a
# statement of its own first, so the insert's snapshot shows every earlier enqueue of the key
# committed, with a holder archived meanwhile (the unique index only sees unarchived rows).
_LOCKED = (
    "locked AS MATERIALIZED (SELECT count(pg_advisory_xact_lock("
    "hashtext(current_schema() || '.' || CAST(:queue_id AS text)), hashtext(k))) AS n "
    "FROM (SELECT DISTINCT k FROM unnest(CAST(:key_list AS text[])) AS u(k) ORDER BY k) AS keys)"
)
_LOCK_KEYS = f"WITH {_LOCKED} SELECT NULL, NULL, NULL, NULL FROM locked WHERE locked.n < 0"
# The holders of :key_list looked up key by key (a lateral join: one index search per key,
# whatever the planner's statistics say of a young table).
_HOLDERS_POSTGRES = (
    "SELECT x.id, u.k AS dedup_key, 0, x.archived FROM unnest(CAST(:key_list AS text[])) AS u(k) "
    "CROSS JOIN LATERAL (SELECT h.id, 0 AS archived FROM {s}pgqrs_messages h "
    f"WHERE {_LIVE.format(key='h.dedup_key = u.k')} UNION ALL SELECT h.id, 1 "
    f"FROM {{s}}pgqrs_messages h WHERE {_RECENT.format(key='h.dedup_key = u.k', s='{s}')}) AS x"
)
_KEYED_INSERT_POSTGRES = (
    f"WITH {_LOCKED}, input AS (SELECT e.ord, e.value AS payload, k.value AS dedup_key, "
    "row_number() OVER (PARTITION BY k.value ORDER BY e.ord) AS nth "
    "FROM jsonb_array_elements(CAST(:payloads AS jsonb)) WITH ORDINALITY AS e(value, ord) "
    "JOIN jsonb_array_elements_text(CAST(:keys AS jsonb)) WITH ORDINALITY AS k(value, ord) "
    f"ON k.ord = e.ord), held AS ({_HOLDERS_POSTGRES}), "
    f"ins AS ({_INSERT_COLUMNS}, dedup_key) SELECT :queue_id, i.payload, {_VALUES}, "
    "i.dedup_key FROM input i CROSS JOIN locked WHERE i.dedup_key IS NULL OR (i.nth = 1 "
    "AND NOT EXISTS (SELECT 1 FROM held WHERE held.dedup_key = i.dedup_key)) ORDER BY i.ord "
    "ON CONFLICT (queue_id, dedup_key) WHERE archived_at IS NULL AND dedup_key IS NOT NULL "
    "DO NOTHING RETURNING id, dedup_key) "
    "SELECT ins.id, ins.dedup_key, 1, 0 FROM ins{notify} UNION ALL SELECT * FROM held"
)

# -- cancelling (semantics.md §7.9) ---------------------------------------------------------------
# A queued message may be cancelled: unarchived, under no running lease, and the trigger of no
# workflow run. It is archived with a mark, so it is never claimed again (by pgqrs's workers
# either: they skip archived rows).
_CANCEL = (
    "UPDATE {s}pgqrs_messages SET archived_at = :now, cancelled_at = :now "
    "WHERE queue_id = :queue_id AND {which} AND archived_at IS NULL "
    "AND (consumer_worker_id IS NULL OR vt IS NULL OR TS(vt) <= :now) "
    "AND NOT EXISTS (SELECT 1 FROM {s}pgqrs_workflow_runs r "
    "WHERE r.message_id = {s}pgqrs_messages.id) RETURNING id"
)
# Why a cancel changed nothing: the message as it is now (whether it is leased, its owner and
# lease end, the workflow run it triggers).
_CANCEL_STATE = (
    "SELECT m.id, m.archived_at, m.cancelled_at, "
    "CASE WHEN m.consumer_worker_id IS NOT NULL AND m.vt IS NOT NULL AND TS(m.vt) > :now "
    "THEN 1 ELSE 0 END, m.consumer_worker_id, m.vt, "
    "(SELECT r.id FROM {s}pgqrs_workflow_runs r WHERE r.message_id = m.id) "
    "FROM {s}pgqrs_messages m WHERE m.queue_id = :queue_id AND {which}"
)


class MessageSql:
    MSG_INSERT = f"{_INSERT_COLUMNS}) VALUES (:queue_id, :payload, {_VALUES}) RETURNING id"
    # :payloads is a list of stored JSON texts; one statement inserts the whole batch in order.
    MSG_INSERT_BATCH = (
        f"{_INSERT_COLUMNS}) SELECT :queue_id, value, {_VALUES} "
        "FROM json_each(:payloads) ORDER BY key RETURNING id"
    )
    # Payloads with deduplication keys, as one transaction (see `_KEYED_INSERT_SQLITE`);
    # with a window (the same here: SQLite's writer is alone).
    MSG_INSERT_KEYED: tuple[str, ...] = (_KEYED_INSERT_SQLITE, _HOLDERS)
    MSG_INSERT_KEYED_WINDOW: tuple[str, ...] = MSG_INSERT_KEYED
    # The messages of keys no statement above answered (a concurrent enqueue took the key on
    # Postgres): the unarchived holder, else the latest not cancelled.
    MSG_KEY_HOLDERS = read(
        "SELECT h.id, h.dedup_key, 0, CASE WHEN h.archived_at IS NULL THEN 0 ELSE 1 END "
        "FROM {s}pgqrs_messages h WHERE h.queue_id = :queue_id "
        "AND h.dedup_key IN_LIST(:key_list) AND h.cancelled_at IS NULL"
    )
    MSG_CANCEL = _CANCEL.format(which="id = :id", s="{s}")
    MSG_CANCEL_KEY = _CANCEL.format(which="dedup_key = :key", s="{s}")
    MSG_CANCEL_STATE = read(_CANCEL_STATE.format(which="m.id = :id", s="{s}"))
    MSG_CANCEL_KEY_STATE = read(
        _CANCEL_STATE.format(which="m.dedup_key = :key AND m.archived_at IS NULL", s="{s}")
    )
    # What pgqrs's record does not carry (the command line shows it).
    MSG_OPTIONS = read(
        "SELECT priority, dedup_key, cancelled_at FROM {s}pgqrs_messages WHERE id = :id"
    )
    MSG_CLAIM = claim_sqlite(loop_step=False)[0]
    MSG_ARCHIVE = _ARCHIVE
    # One poll-loop iteration, as one transaction (see `claim_sqlite`).
    LOOP_STEP = claim_sqlite(loop_step=True)
    # The same on a queue with limits of its own only, and with limits of its keys
    # (semantics.md §7.10); which statement's rows are the claimed messages (here the one
    # before the tokens are spent).
    MSG_CLAIM_QUEUE_LIMITED: tuple[str, ...] = claim_sqlite(loop_step=False, limits="queue")
    LOOP_STEP_QUEUE_LIMITED = claim_sqlite(loop_step=True, limits="queue")
    MSG_CLAIM_KEY_LIMITED: tuple[str, ...] = claim_sqlite(loop_step=False, limits="keys")
    LOOP_STEP_KEY_LIMITED = claim_sqlite(loop_step=True, limits="keys")
    limited_claim_rows = -2
    # PostgreSQL's per-key limited claims that take first (`claim_postgres_first`); none here:
    # one writer at a time takes turns already.
    MSG_CLAIM_KEY_LIMITED_FIRST: tuple[str, ...] = ()
    LOOP_STEP_KEY_LIMITED_FIRST: tuple[str, ...] = ()
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


class MessageTurso(MessageSql):
    # Turso resolves no CTE in a LIMIT: the limited claims write the queue's room out.
    MSG_CLAIM_QUEUE_LIMITED = claim_sqlite(loop_step=False, limits="queue", cte_in_limit=False)
    LOOP_STEP_QUEUE_LIMITED = claim_sqlite(loop_step=True, limits="queue", cte_in_limit=False)
    MSG_CLAIM_KEY_LIMITED = claim_sqlite(loop_step=False, limits="keys", cte_in_limit=False)
    LOOP_STEP_KEY_LIMITED = claim_sqlite(loop_step=True, limits="keys", cte_in_limit=False)


class MessagePostgres(MessageSql):
    # `{notify}` adds a NOTIFY on the schema's channel in the same statement (one per call, not
    # per row), so idle consumers in other processes wake at once (Config.listen_notify).
    MSG_INSERT = (
        f"WITH ins AS ({_INSERT_COLUMNS}) VALUES (:queue_id, :payload, {_VALUES}) "
        "RETURNING id) SELECT ins.id FROM ins{notify}"
    )
    # :payloads arrives as one JSON array (built from the stored texts): the server splits it,
    # which costs far less than sending a text[] whose elements the driver escapes one by one.
    MSG_INSERT_BATCH = (
        f"WITH ins AS ({_INSERT_COLUMNS}) SELECT :queue_id, e.value, {_VALUES} "
        "FROM jsonb_array_elements(CAST(:payloads AS jsonb)) WITH ORDINALITY AS e(value, ord) "
        "ORDER BY e.ord RETURNING id) SELECT ins.id FROM ins{notify}"
    )
    MSG_INSERT_KEYED = (_KEYED_INSERT_POSTGRES,)
    MSG_INSERT_KEYED_WINDOW = (_LOCK_KEYS, _KEYED_INSERT_POSTGRES)
    MSG_CLAIM = claim_postgres(loop_step=False)[0]
    LOOP_STEP = claim_postgres(loop_step=True)
    MSG_CLAIM_QUEUE_LIMITED = claim_postgres(loop_step=False, limits="queue")
    LOOP_STEP_QUEUE_LIMITED = claim_postgres(loop_step=True, limits="queue")
    MSG_CLAIM_KEY_LIMITED = claim_postgres(loop_step=False, limits="keys")
    LOOP_STEP_KEY_LIMITED = claim_postgres(loop_step=True, limits="keys")
    limited_claim_rows = -1
    # The per-key ones taking first (`claim_postgres_first`); their rows are the first statement's.
    MSG_CLAIM_KEY_LIMITED_FIRST = claim_postgres_first(loop_step=False)
    LOOP_STEP_KEY_LIMITED_FIRST = claim_postgres_first(loop_step=True)
