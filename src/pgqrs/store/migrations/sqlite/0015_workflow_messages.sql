-- pgqrs-py additions (semantics.md §18): signals sent to a run, events a run publishes, child
-- runs and run deadlines. pgqrs 0.15.3 neither reads nor writes these; its runs leave the new
-- columns NULL.
-- The run that started this one as a child (NULL: a top-level run).
ALTER TABLE pgqrs_workflow_runs ADD COLUMN parent_run_id INTEGER REFERENCES pgqrs_workflow_runs(id) ON DELETE SET NULL;
-- When the run is cancelled if it has not finished (NULL: no deadline).
ALTER TABLE pgqrs_workflow_runs ADD COLUMN deadline_at TEXT;
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflow_runs_parent ON pgqrs_workflow_runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
-- Messages to a run, consumed once each, in id order per topic, by the step that received it.
CREATE TABLE IF NOT EXISTS pgqrs_workflow_signals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES pgqrs_workflow_runs(id) ON DELETE CASCADE,
    topic TEXT NOT NULL,
    payload TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    consumed_at TEXT,
    consumed_by TEXT
);
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflow_signals_pending ON pgqrs_workflow_signals (run_id, topic, id) WHERE consumed_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_pgqrs_workflow_signals_run ON pgqrs_workflow_signals (run_id, id);
-- State a run publishes: the latest value per key.
CREATE TABLE IF NOT EXISTS pgqrs_workflow_events (
    run_id INTEGER NOT NULL REFERENCES pgqrs_workflow_runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')),
    PRIMARY KEY (run_id, key)
);
