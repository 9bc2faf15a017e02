-- Archived rows by queue and enqueue time: queue metrics count a queue's history and find its
-- newest message from this index alone, instead of reading every archived row.
CREATE INDEX IF NOT EXISTS idx_messages_archived_enqueued ON pgqrs_messages (queue_id, enqueued_at) WHERE archived_at IS NOT NULL;
