-- Archived rows by queue and enqueue time: queue metrics count a queue's history and find its
-- newest message from this index alone (index-only), instead of reading every archived row.
-- Only archiving writes to it (the predicate keeps unarchived rows out), never claims.
CREATE INDEX IF NOT EXISTS idx_pgqrs_messages_archived_enqueued ON {schema}.pgqrs_messages (queue_id, enqueued_at) WHERE archived_at IS NOT NULL;
