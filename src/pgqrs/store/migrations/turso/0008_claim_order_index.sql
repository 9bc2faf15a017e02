-- As on SQLite (this library's own migration): unarchived messages in claim order, so a claim
-- walks it and stops after `batch` visible rows instead of skipping every archived row.
CREATE INDEX IF NOT EXISTS idx_messages_claim_order ON pgqrs_messages (queue_id, enqueued_at, id) WHERE archived_at IS NULL;
