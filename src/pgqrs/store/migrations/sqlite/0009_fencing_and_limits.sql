-- pgqrs-py additions; nullable columns that pgqrs itself neither reads nor writes.
-- Each registration of a worker draws a new fence: handles of an earlier registration of the
-- same worker pass no check (docs/guarantees.md, "Leases and fencing").
ALTER TABLE pgqrs_workers ADD COLUMN fence INTEGER;
-- The heartbeat interval a worker's poll loop keeps: sweeps judge each worker by its own.
ALTER TABLE pgqrs_workers ADD COLUMN heartbeat_interval_seconds REAL;
-- A queue's own poison threshold, shared by every process (NULL: each one's Config.max_read_ct).
ALTER TABLE pgqrs_queues ADD COLUMN max_read_ct INTEGER;
