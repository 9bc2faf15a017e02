-- Unarchived messages in claim order. A claim walks this index from the oldest message and stops
-- after `batch` visible rows, instead of gathering every visible row through the hot-path index
-- and sorting them, so its cost does not grow with the backlog.
CREATE INDEX IF NOT EXISTS idx_pgqrs_messages_claim_order ON {schema}.pgqrs_messages (queue_id, enqueued_at, id) WHERE archived_at IS NULL;
