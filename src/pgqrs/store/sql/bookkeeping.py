"""Statements of install and verify: migration bookkeeping and catalog lookups."""

from __future__ import annotations

from .spelling import read


class BookkeepingSql:
    MIGRATIONS_APPLIED = read("SELECT version FROM {s}pgqrs_py_migrations ORDER BY version")
    # Whether another installer recorded the version meanwhile (SQLite takes turns per migration).
    MIGRATION_DONE = read("SELECT 1 FROM {s}pgqrs_py_migrations WHERE version = :version")
    MIGRATION_RECORD = (
        "INSERT INTO {s}pgqrs_py_migrations (version, name, applied_at, method, library_version) "
        "VALUES (:version, :name, :now, :method, :library_version)"
    )
    SQLX_MIGRATIONS = read("SELECT version, success FROM {s}_sqlx_migrations ORDER BY version")
    TABLES_PRESENT = read(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND :schema = :schema"
    )
    TYPES_PRESENT = read("SELECT name FROM sqlite_master WHERE 0 AND :schema = :schema")
    FUNCTIONS_PRESENT = read("SELECT name FROM sqlite_master WHERE 0 AND :schema = :schema")
    COLUMNS_PRESENT = read(
        "SELECT m.name || '.' || c.name FROM sqlite_master m, pragma_table_info(m.name) c "
        "WHERE m.type = 'table' AND m.name LIKE 'pgqrs%' AND :schema = :schema"
    )
    VERIFY_DANGLING = read(
        "SELECT (SELECT COUNT(*) FROM {s}pgqrs_messages m WHERE NOT EXISTS "
        "(SELECT 1 FROM {s}pgqrs_queues q WHERE q.id = m.queue_id)), "
        "(SELECT COUNT(*) FROM {s}pgqrs_messages m WHERE m.producer_worker_id IS NOT NULL AND "
        "NOT EXISTS (SELECT 1 FROM {s}pgqrs_workers w WHERE w.id = m.producer_worker_id)), "
        "(SELECT COUNT(*) FROM {s}pgqrs_messages m WHERE m.consumer_worker_id IS NOT NULL AND "
        "NOT EXISTS (SELECT 1 FROM {s}pgqrs_workers w WHERE w.id = m.consumer_worker_id))"
    )


class BookkeepingPostgres(BookkeepingSql):
    # Checked before CREATE SCHEMA: a user without CREATE on the database can still install
    # into a schema that was made for it.
    SCHEMA_PRESENT = read("SELECT 1 FROM pg_namespace WHERE nspname = :schema")
    TABLES_PRESENT = read(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = :schema"
    )
    TYPES_PRESENT = read(
        "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = :schema"
    )
    FUNCTIONS_PRESENT = read(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = :schema"
    )
    COLUMNS_PRESENT = read(
        "SELECT table_name || '.' || column_name FROM information_schema.columns "
        "WHERE table_schema = :schema"
    )


class BookkeepingTurso(BookkeepingSql):
    # pgqrs's own Turso bookkeeping (schema.md §6.2): any row means pgqrs installed the file.
    TURSO_SCHEMA_VERSION_ROWS = read("SELECT COUNT(*) FROM {s}pgqrs_schema_version")
