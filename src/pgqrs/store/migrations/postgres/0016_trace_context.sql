-- pgqrs-py additions (issue 15). pgqrs 0.15.3 neither reads nor writes them: like the columns
-- of migrations 11 and 13, its inserts leave the column NULL.
-- The trace context current when the message was enqueued (pgqrs.tracing): JSON text of W3C
-- headers; NULL when it was enqueued untraced.
ALTER TABLE {schema}.pgqrs_messages ADD COLUMN IF NOT EXISTS trace_context TEXT;
-- Runs by creation time, newest first (Admin.list_runs, the dashboard's time ranges).
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflow_runs_created ON {schema}.pgqrs_workflow_runs (created_at, id);
