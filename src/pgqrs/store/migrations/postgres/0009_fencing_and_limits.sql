-- pgqrs-py additions; nullable columns that pgqrs itself neither reads nor writes.
-- Each registration of a worker draws a new fence: handles of an earlier registration of the
-- same worker pass no check (docs/guarantees.md, "Leases and fencing").
ALTER TABLE {schema}.pgqrs_workers ADD COLUMN IF NOT EXISTS fence BIGINT;
-- The heartbeat interval a worker's poll loop keeps: sweeps judge each worker by its own.
ALTER TABLE {schema}.pgqrs_workers ADD COLUMN IF NOT EXISTS heartbeat_interval_seconds DOUBLE PRECISION;
-- A queue's own poison threshold, shared by every process (NULL: each one's Config.max_read_ct).
ALTER TABLE {schema}.pgqrs_queues ADD COLUMN IF NOT EXISTS max_read_ct INTEGER;
-- Lease and delay arithmetic in SQL, on the server's clock; SQLite registers a Python function
-- of the same name, so statements read the same on every backend.
CREATE OR REPLACE FUNCTION {schema}.pgqrs_add_seconds(ts TIMESTAMPTZ, secs DOUBLE PRECISION)
    RETURNS TIMESTAMPTZ LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT ts + make_interval(secs => secs) $$;
