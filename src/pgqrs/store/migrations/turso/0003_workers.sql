-- As on SQLite, but pgqrs's Turso schema has no CHECK on status (the library writes only the
-- five lower-case values anyway).
CREATE TABLE IF NOT EXISTS pgqrs_workers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id INTEGER REFERENCES pgqrs_queues (id),
    name TEXT NOT NULL UNIQUE,
    started_at TEXT NOT NULL DEFAULT (datetime('now')),
    heartbeat_at TEXT NOT NULL DEFAULT (datetime('now')),
    shutdown_at TEXT,
    status TEXT NOT NULL DEFAULT 'ready'
);
CREATE INDEX IF NOT EXISTS idx_workers_queue_id ON pgqrs_workers (queue_id);
CREATE INDEX IF NOT EXISTS idx_workers_status ON pgqrs_workers (status);
