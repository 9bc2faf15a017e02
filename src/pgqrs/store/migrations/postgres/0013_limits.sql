-- pgqrs-py additions: fleet-wide concurrency and rate limits (semantics.md §7.10). pgqrs
-- 0.15.3 neither reads nor writes these; its claims ignore limits.
-- The key whose limits the message counts against; NULL: only the queue's limits apply.
ALTER TABLE {schema}.pgqrs_messages ADD COLUMN IF NOT EXISTS limit_key TEXT;
-- A queue's limits (limit_key '') and its keys' limits; NULL: no limit of that kind. A rate
-- limit is a token bucket: `tokens` left at `refilled_at` (NULL: full), refilled at
-- `rate_per_second` up to `burst`.
CREATE TABLE IF NOT EXISTS {schema}.pgqrs_limits (
    queue_id BIGINT NOT NULL REFERENCES {schema}.pgqrs_queues(id) ON DELETE CASCADE,
    limit_key TEXT NOT NULL,
    max_in_flight INTEGER,
    rate_per_second DOUBLE PRECISION,
    burst INTEGER,
    tokens DOUBLE PRECISION,
    refilled_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (queue_id, limit_key)
);
-- In flight per queue and per key: the messages held by a consumer (only those, so it stays
-- small however long the backlog).
CREATE INDEX IF NOT EXISTS idx_pgqrs_messages_held ON {schema}.pgqrs_messages (queue_id, limit_key) WHERE archived_at IS NULL AND consumer_worker_id IS NOT NULL;
-- Token bucket arithmetic in SQL; SQLite registers a Python function of the same name.
CREATE OR REPLACE FUNCTION {schema}.pgqrs_seconds_between(later TIMESTAMPTZ, earlier TIMESTAMPTZ)
    RETURNS DOUBLE PRECISION LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CAST(EXTRACT(EPOCH FROM (later - earlier)) AS DOUBLE PRECISION) $$;
