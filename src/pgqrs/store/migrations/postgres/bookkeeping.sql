CREATE TABLE IF NOT EXISTS {schema}.pgqrs_py_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    method TEXT NOT NULL CHECK (method IN ('applied', 'adopted')),
    library_version TEXT NOT NULL
);
