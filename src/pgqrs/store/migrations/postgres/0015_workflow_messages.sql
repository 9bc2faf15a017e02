-- pgqrs-py additions (semantics.md §18): signals sent to a run, events a run publishes, child
-- runs and run deadlines. pgqrs 0.15.3 neither reads nor writes these; its runs leave the new
-- columns NULL.
-- The run that started this one as a child (NULL: a top-level run).
ALTER TABLE {schema}.pgqrs_workflow_runs ADD COLUMN IF NOT EXISTS parent_run_id BIGINT REFERENCES {schema}.pgqrs_workflow_runs (id) ON DELETE SET NULL;
-- When the run is cancelled if it has not finished (NULL: no deadline).
ALTER TABLE {schema}.pgqrs_workflow_runs ADD COLUMN IF NOT EXISTS deadline_at TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflow_runs_parent ON {schema}.pgqrs_workflow_runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
-- Messages to a run, consumed once each, in id order per topic, by the step that received it.
CREATE TABLE IF NOT EXISTS {schema}.pgqrs_workflow_signals (
    id BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES {schema}.pgqrs_workflow_runs (id) ON DELETE CASCADE,
    topic TEXT NOT NULL,
    payload JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    consumed_at TIMESTAMPTZ,
    consumed_by TEXT
);
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflow_signals_pending ON {schema}.pgqrs_workflow_signals (run_id, topic, id) WHERE consumed_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflow_signals_run ON {schema}.pgqrs_workflow_signals (run_id, id);
-- State a run publishes: the latest value per key.
CREATE TABLE IF NOT EXISTS {schema}.pgqrs_workflow_events (
    run_id BIGINT NOT NULL REFERENCES {schema}.pgqrs_workflow_runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, key)
);
