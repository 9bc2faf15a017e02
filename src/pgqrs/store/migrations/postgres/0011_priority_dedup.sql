-- Message priorities, deduplication keys and cancellation (semantics.md §7.3, §7.8, §7.9).
-- A pgqrs 0.15.3 worker inserts without these columns: its rows get priority 0, no key and no
-- cancellation mark. NOT NULL keeps NULL out of the claim order, so claims walk one index.
ALTER TABLE {schema}.pgqrs_messages ADD COLUMN IF NOT EXISTS priority INTEGER NOT NULL DEFAULT 0;
-- A key unique per queue among unarchived messages (and, when asked, for a window after).
ALTER TABLE {schema}.pgqrs_messages ADD COLUMN IF NOT EXISTS dedup_key TEXT;
-- Set (with archived_at) when a queued message was cancelled instead of handled.
ALTER TABLE {schema}.pgqrs_messages ADD COLUMN IF NOT EXISTS cancelled_at TIMESTAMPTZ;
-- The claim order is now (priority DESC, enqueued_at, id): this index replaces migration 8's,
-- so a claim still walks an index in claim order and stops after its batch.
DROP INDEX IF EXISTS {schema}.idx_pgqrs_messages_claim_order;
CREATE INDEX IF NOT EXISTS idx_pgqrs_messages_claim_priority ON {schema}.pgqrs_messages (queue_id, priority DESC, enqueued_at, id) WHERE archived_at IS NULL;
-- One unarchived message per key and queue: concurrent enqueues of a key are resolved here.
CREATE UNIQUE INDEX IF NOT EXISTS idx_pgqrs_messages_dedup_key ON {schema}.pgqrs_messages (queue_id, dedup_key) WHERE archived_at IS NULL AND dedup_key IS NOT NULL;
-- Archived messages with a key: what a deduplication window looks up.
CREATE INDEX IF NOT EXISTS idx_pgqrs_messages_dedup_archived ON {schema}.pgqrs_messages (queue_id, dedup_key, archived_at) WHERE archived_at IS NOT NULL AND dedup_key IS NOT NULL;
