-- As on SQLite (this library's own migration, not pgqrs's): archived rows by queue and enqueue
-- time, so queue metrics read a queue's history from this index alone. Turso supports partial
-- indexes; pgqrs's Turso schema only avoided them in its own tables.
CREATE INDEX IF NOT EXISTS idx_messages_archived_enqueued ON pgqrs_messages (queue_id, enqueued_at) WHERE archived_at IS NOT NULL;
