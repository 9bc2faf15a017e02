CREATE TABLE IF NOT EXISTS pgqrs_py_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('applied', 'adopted')),
    library_version TEXT NOT NULL
);
