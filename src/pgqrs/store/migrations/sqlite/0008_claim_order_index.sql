-- Unarchived messages in claim order: a claim walks it and stops after `batch` visible rows.
CREATE INDEX IF NOT EXISTS idx_messages_claim_order ON pgqrs_messages (queue_id, enqueued_at, id) WHERE archived_at IS NULL;
