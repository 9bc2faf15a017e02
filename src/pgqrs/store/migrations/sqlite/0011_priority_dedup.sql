-- Message priorities, deduplication keys and cancellation (semantics.md §7.3, §7.8, §7.9).
-- A pgqrs 0.15.3 worker inserts without these columns: its rows get priority 0, no key and no
-- cancellation mark. NOT NULL keeps NULL out of the claim order, so claims walk one index.
ALTER TABLE pgqrs_messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
-- A key unique per queue among unarchived messages (and, when asked, for a window after).
ALTER TABLE pgqrs_messages ADD COLUMN dedup_key TEXT;
-- Set (with archived_at) when a queued message was cancelled instead of handled.
ALTER TABLE pgqrs_messages ADD COLUMN cancelled_at TEXT;
-- The claim order is now (priority DESC, enqueued_at, id): this index replaces migration 8's.
DROP INDEX IF EXISTS idx_messages_claim_order;
CREATE INDEX IF NOT EXISTS idx_messages_claim_priority ON pgqrs_messages (queue_id, priority DESC, enqueued_at, id) WHERE archived_at IS NULL;
-- One unarchived message per key and queue.
CREATE UNIQUE INDEX IF NOT EXISTS idx_messages_dedup_key ON pgqrs_messages (queue_id, dedup_key) WHERE archived_at IS NULL AND dedup_key IS NOT NULL;
-- Archived messages with a key: what a deduplication window looks up.
CREATE INDEX IF NOT EXISTS idx_messages_dedup_archived ON pgqrs_messages (queue_id, dedup_key, archived_at) WHERE archived_at IS NOT NULL AND dedup_key IS NOT NULL;
