"""Statements on `pgqrs_limits`, and the parts of the limited claim that measure and spend room
(semantics.md §7.10).

A queue's limits are its row with `limit_key` '' and its keys' rows: `max_in_flight` (leases
running at once) and a token bucket of `burst` claims refilled at `rate_per_second` (`tokens`
left at `refilled_at`; NULL: full). Room is counted in the claim's own transaction, after a lock
that makes the limited claims of one queue take turns (Postgres; SQLite's writer is alone), and
the claim spends the tokens of what it took in the same transaction.
"""

from __future__ import annotations

from .spelling import read

# A number larger than any batch: "no limit of this kind".
UNLIMITED = "1000000000"

# The leases running now in queue :queue_id, of row `l`'s key (or of the whole queue for ''):
# unarchived messages held by a consumer whose lease is not over. Answered from the partial
# index of held rows (migration 13), which holds only what is (or was last) in flight.
_LEASED = (
    "SELECT COUNT(*) FROM {s}pgqrs_messages f WHERE f.queue_id = :queue_id "
    "AND f.archived_at IS NULL AND f.consumer_worker_id IS NOT NULL AND TS(f.vt) > :now"
)


def _in_flight(row: str, *, for_room: bool = False) -> str:
    """`row`'s leases in flight; `for_room`: only where it limits them (0 for a rate-only
    limit, which a claim need not count)."""
    skip = f"WHEN {row}.max_in_flight IS NULL THEN 0 " if for_room else ""
    return (
        f"CASE {skip}WHEN {row}.limit_key = '' THEN ({_LEASED}) "
        f"ELSE ({_LEASED} AND f.limit_key = {row}.limit_key) END"
    )


def tokens(row: str) -> str:
    """The tokens of `row`'s bucket at :now: what was left, refilled since (a clock that went
    back refills nothing), at most `burst`; NULL without a rate limit. (LEAST and GREATEST,
    which name each argument once, are SQLite's two-argument MIN and MAX: spelling.py. Their
    arguments are never NULL here: a row has a burst exactly when it has a rate.)"""
    elapsed = f"{{s}}pgqrs_seconds_between(:now, {row}.refilled_at)"
    refilled = f"{row}.tokens + {row}.rate_per_second * GREATEST({elapsed}, 0)"
    return (
        f"CASE WHEN {row}.rate_per_second IS NULL THEN NULL "
        f"WHEN {row}.tokens IS NULL OR {row}.refilled_at IS NULL THEN {row}.burst "
        f"ELSE LEAST({row}.burst, {refilled}) END"
    )


# How many more messages a limit row lets a claim take now (< 1: none), from its use `u`.
# (LEAST names the count once: PostgreSQL pulls the subquery `u` up into the expression, so a
# CASE naming `u.in_flight` twice counted the leases twice.)
ROOM = (
    f"LEAST(COALESCE(u.max_in_flight - u.in_flight, {UNLIMITED}), COALESCE(u.tokens, {UNLIMITED}))"
)


# The same for every key at once, in one pass over the held rows (a CTE `held`, read by
# `_in_flight_held`): the queue's count and its keys' would otherwise each walk them again.
# `finishing`: less the messages :ids, which a loop step archives in the statement that counts
# (its snapshot still shows them held).
def _held(finishing: bool = False) -> str:
    less = " AND NOT (f.id IN_LIST(:ids))" if finishing else ""
    return (
        "held AS (SELECT f.limit_key, COUNT(*) AS n FROM {s}pgqrs_messages f "
        "WHERE f.queue_id = :queue_id AND f.archived_at IS NULL "
        f"AND f.consumer_worker_id IS NOT NULL AND TS(f.vt) > :now{less} GROUP BY f.limit_key)"
    )


def _in_flight_held(row: str) -> str:
    return (
        f"CASE WHEN {row}.max_in_flight IS NULL THEN 0 "
        f"WHEN {row}.limit_key = '' THEN (SELECT COALESCE(SUM(h.n), 0) FROM held h) "
        f"ELSE COALESCE((SELECT h.n FROM held h WHERE h.limit_key = {row}.limit_key), 0) END"
    )


def _room_rows(which: str, in_flight: str | None = None) -> str:
    in_flight = in_flight or _in_flight("l", for_room=True)
    return (
        f"SELECT u.limit_key, {ROOM} AS room FROM (SELECT l.limit_key, l.max_in_flight, "
        f"{in_flight} AS in_flight, {tokens('l')} AS tokens "
        f"FROM {{s}}pgqrs_limits l WHERE l.queue_id = :queue_id{which}) u"
    )


_QUEUE_ROW = " AND l.limit_key = ''"


def rooms(keyed: bool, *, grouped: bool = False, finishing: bool = False) -> str:
    """The room of each limit of queue :queue_id (`keyed`: its keys' too, else only its own), as
    a CTE of the claim; `grouped` (keyed): leases counted in one pass for all keys,
    `finishing`: less the messages :ids, archived in the same statement."""
    if keyed and grouped:
        return f"{_held(finishing)}, rooms AS ({_room_rows('', _in_flight_held('l'))})"
    return f"rooms AS ({_room_rows('' if keyed else _QUEUE_ROW)})"


def _queue_room(rooms: str) -> str:
    return (
        "(SELECT CASE WHEN r.room >= :limit THEN :limit WHEN r.room < 1 THEN 0 "
        f"ELSE CAST(r.room * 1000000 AS INTEGER) / 1000000 END FROM {rooms})"
    )


# The queue's own room as a whole number no larger than :limit (a portable floor); NULL when
# the queue has no limit of its own. Written out, not read from `rooms`: Turso resolves no CTE
# in a LIMIT.
QUEUE_ROOM = _queue_room(f"({_room_rows(_QUEUE_ROW)}) r")
# The same read from the claim's `rooms` CTE (not on Turso), which counts the leases once.
QUEUE_ROOM_OF_ROOMS = _queue_room("rooms r WHERE r.limit_key = ''")


def spend(row: str, taken: str) -> str:
    """SET clause of the bucket update after a claim: `row`'s tokens at :now less the number
    of messages `taken` counts (a subquery over what the claim took, `row` in scope)."""
    return f"tokens = {tokens(row)} - ({taken}), refilled_at = :now"


class LimitSql:
    # Set (or replace) one limit row: '' for the queue, else a key. A new rate starts full.
    LIMIT_SET = (
        "INSERT INTO {s}pgqrs_limits (queue_id, limit_key, max_in_flight, rate_per_second, "
        "burst, tokens, refilled_at, updated_at) VALUES (:queue_id, :limit_key, :max_in_flight, "
        ":rate_per_second, :burst, NULL, NULL, :wall_now) ON CONFLICT (queue_id, limit_key) "
        "DO UPDATE SET max_in_flight = excluded.max_in_flight, "
        "rate_per_second = excluded.rate_per_second, burst = excluded.burst, tokens = NULL, "
        "refilled_at = NULL, updated_at = excluded.updated_at RETURNING limit_key"
    )
    LIMIT_DELETE = (
        "DELETE FROM {s}pgqrs_limits WHERE queue_id = :queue_id AND limit_key = :limit_key "
        "RETURNING limit_key"
    )
    # How many limits the queue has, and how many of them are its keys' (a consumer's claims
    # take the limited form if any, and the per-key form if any of its keys has one).
    LIMITS_PRESENT = read(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN limit_key = '' THEN 0 ELSE 1 END), 0) "
        "FROM {s}pgqrs_limits WHERE queue_id = :queue_id"
    )
    # Each limit with its use at :now: leases in flight and the tokens in its bucket.
    LIMITS_USAGE = read(
        f"SELECT l.limit_key, l.max_in_flight, l.rate_per_second, l.burst, {_in_flight('l')}, "
        f"{tokens('l')} FROM {{s}}pgqrs_limits l WHERE l.queue_id = :queue_id "
        "ORDER BY l.limit_key"
    )


# PostgreSQL: the rows this transaction's claim took (the consumer's held rows it wrote).
TAKEN_HERE = (
    "taken AS (SELECT t.limit_key FROM {s}pgqrs_messages t WHERE t.queue_id = :queue_id "
    "AND t.archived_at IS NULL AND t.consumer_worker_id = :worker_id "
    "AND t.xmin = CAST(pg_current_xact_id() AS xid))"
)


# PostgreSQL: the check of a per-key claim that took before it took its turn (run after the
# lock, in a snapshot that sees every claim made before its turn): any limit of what it took that
# is now exceeded raises `pgqrs_limits_overshot()` (migration 17), which undoes the claim; else
# it spends the tokens (only of the buckets it spends from: without anything taken this runs
# without the lock).
_MINE = "(l.limit_key = '' OR t.limit_key = l.limit_key)"
_TAKEN_OF = f"(SELECT COUNT(*) FROM taken t WHERE {_MINE})"
_OVER = (
    "SELECT 1 FROM {s}pgqrs_limits l WHERE l.queue_id = :queue_id AND (("
    f"l.max_in_flight IS NOT NULL AND {_in_flight_held('l')} > l.max_in_flight "
    f"AND {_TAKEN_OF} > 0) OR (l.rate_per_second IS NOT NULL AND {_TAKEN_OF} > {tokens('l')}))"
)
_SPENT = (
    f"UPDATE {{s}}pgqrs_limits AS l SET {spend('l', _TAKEN_OF)} "
    f"WHERE l.queue_id = :queue_id AND l.rate_per_second IS NOT NULL AND {_TAKEN_OF} > 0"
)
OVERSHOT = (
    f"WITH {TAKEN_HERE}, {_held()}, over AS ({_OVER}), spent AS ({_SPENT}) "
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM over) THEN {s}pgqrs_limits_overshot() ELSE 0 END"
)
