-- pgqrs-py additions; nullable columns that pgqrs itself neither reads nor writes.
-- A queue's own payload limits, shared by every producer of the queue (NULL: each producer's
-- Config value); semantics.md §7.6.
ALTER TABLE {schema}.pgqrs_queues ADD COLUMN IF NOT EXISTS max_payload_size_bytes INTEGER;
ALTER TABLE {schema}.pgqrs_queues ADD COLUMN IF NOT EXISTS max_string_length INTEGER;
ALTER TABLE {schema}.pgqrs_queues ADD COLUMN IF NOT EXISTS max_object_depth INTEGER;
