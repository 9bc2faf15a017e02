-- Turso has no enum types either; instead this migration creates pgqrs's own Turso bookkeeping
-- table and its initial row, so pgqrs recognises a Turso file created by this library.
CREATE TABLE IF NOT EXISTS pgqrs_schema_version (
    version TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL,
    description TEXT
);
INSERT OR IGNORE INTO pgqrs_schema_version (version, applied_at, description) VALUES ('0.5.0', datetime('now'), 'Initial schema');
