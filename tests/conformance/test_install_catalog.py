"""The catalog an install leaves, checked against schema.md §2-3 and §6.1: on PostgreSQL
through pg_catalog and information_schema, on SQLite through sqlite_master and PRAGMAs."""

from __future__ import annotations

import pytest

import pgqrs
from tests.support.raw_db import PGQRS_TABLES, PY_TABLES, RawDb
from tests.support.target import Target

PG_COLUMNS = {
    "pgqrs_queues": [
        ("id", "int8", "NO"),
        ("queue_name", "varchar", "NO"),
        ("created_at", "timestamptz", "NO"),
        ("max_read_ct", "int4", "YES"),  # migration 9 (ours): the queue's poison threshold
        # migration 12 (ours): the queue's own payload limits
        ("max_payload_size_bytes", "int4", "YES"),
        ("max_string_length", "int4", "YES"),
        ("max_object_depth", "int4", "YES"),
    ],
    "pgqrs_workers": [
        ("id", "int8", "NO"),
        ("name", "text", "NO"),
        ("queue_id", "int8", "YES"),
        ("started_at", "timestamptz", "YES"),
        ("heartbeat_at", "timestamptz", "YES"),
        ("shutdown_at", "timestamptz", "YES"),
        ("status", "worker_status", "NO"),
        # migration 9 (ours): the registration's fence, the interval its loop beats at
        ("fence", "int8", "YES"),
        ("heartbeat_interval_seconds", "float8", "YES"),
    ],
    "pgqrs_messages": [
        ("id", "int8", "NO"),
        ("queue_id", "int8", "NO"),
        ("payload", "jsonb", "NO"),
        ("vt", "timestamptz", "YES"),
        ("enqueued_at", "timestamptz", "YES"),
        ("read_ct", "int4", "YES"),
        ("dequeued_at", "timestamptz", "YES"),
        ("producer_worker_id", "int8", "YES"),
        ("consumer_worker_id", "int8", "YES"),
        ("archived_at", "timestamptz", "YES"),
        # migration 11 (ours): priority (default 0), deduplication key, cancellation mark
        ("priority", "int4", "NO"),
        ("dedup_key", "text", "YES"),
        ("cancelled_at", "timestamptz", "YES"),
        # migration 13 (ours): the key whose limits the message counts against
        ("limit_key", "text", "YES"),
        # migration 16 (ours): the trace context the message carries
        ("trace_context", "text", "YES"),
    ],
    "pgqrs_workflows": [
        ("id", "int8", "NO"),
        ("name", "varchar", "NO"),
        ("queue_id", "int8", "NO"),
        ("created_at", "timestamptz", "NO"),
    ],
    "pgqrs_workflow_runs": [
        ("id", "int8", "NO"),
        ("workflow_id", "int8", "NO"),
        ("message_id", "int8", "NO"),
        ("status", "pgqrs_workflow_status", "NO"),
        ("input", "jsonb", "YES"),
        ("output", "jsonb", "YES"),
        ("error", "jsonb", "YES"),
        ("created_at", "timestamptz", "NO"),
        ("updated_at", "timestamptz", "NO"),
        ("started_at", "timestamptz", "YES"),
        ("paused_at", "timestamptz", "YES"),
        ("completed_at", "timestamptz", "YES"),
        ("worker_id", "int8", "YES"),
        # migration 15 (ours): the parent of a child run, the run's deadline
        ("parent_run_id", "int8", "YES"),
        ("deadline_at", "timestamptz", "YES"),
    ],
    "pgqrs_workflow_steps": [
        ("id", "int8", "NO"),
        ("run_id", "int8", "NO"),
        ("step_name", "varchar", "NO"),
        ("status", "pgqrs_workflow_status", "NO"),
        ("input", "jsonb", "YES"),
        ("output", "jsonb", "YES"),
        ("error", "jsonb", "YES"),
        ("created_at", "timestamptz", "NO"),
        ("updated_at", "timestamptz", "NO"),
        ("started_at", "timestamptz", "YES"),
        ("completed_at", "timestamptz", "YES"),
        ("retry_count", "int4", "NO"),
        ("retry_at", "timestamptz", "YES"),
        ("last_retry_at", "timestamptz", "YES"),
    ],
    # migration 10 (ours): the last error of each failed message
    "pgqrs_py_message_errors": [
        ("message_id", "int8", "NO"),
        ("attempt", "int4", "NO"),
        ("error_type", "text", "NO"),
        ("error_message", "text", "NO"),
        ("traceback", "text", "YES"),
        ("failed_at", "timestamptz", "NO"),
    ],
    # migration 13 (ours): queue and key limits
    "pgqrs_limits": [
        ("queue_id", "int8", "NO"),
        ("limit_key", "text", "NO"),
        ("max_in_flight", "int4", "YES"),
        ("rate_per_second", "float8", "YES"),
        ("burst", "int4", "YES"),
        ("tokens", "float8", "YES"),
        ("refilled_at", "timestamptz", "YES"),
        ("updated_at", "timestamptz", "NO"),
    ],
    # migration 14 (ours): cron schedules
    "pgqrs_schedules": [
        ("name", "text", "NO"),
        ("cron", "text", "NO"),
        ("timezone", "text", "NO"),
        ("queue_name", "text", "YES"),
        ("payload", "text", "YES"),
        ("workflow_name", "text", "YES"),
        ("input", "text", "YES"),
        ("catch_up", "int4", "NO"),
        ("paused", "bool", "NO"),
        ("next_fire_at", "timestamptz", "NO"),
        ("last_fire_at", "timestamptz", "YES"),
        ("created_at", "timestamptz", "NO"),
    ],
    # migration 15 (ours): signals sent to a run, events a run publishes
    "pgqrs_workflow_signals": [
        ("id", "int8", "NO"),
        ("run_id", "int8", "NO"),
        ("topic", "text", "NO"),
        ("payload", "jsonb", "YES"),
        ("created_at", "timestamptz", "NO"),
        ("consumed_at", "timestamptz", "YES"),
        ("consumed_by", "text", "YES"),
    ],
    "pgqrs_workflow_events": [
        ("run_id", "int8", "NO"),
        ("key", "text", "NO"),
        ("value", "jsonb", "YES"),
        ("created_at", "timestamptz", "NO"),
        ("updated_at", "timestamptz", "NO"),
    ],
}

# name -> (table, type, delete action for foreign keys) per schema.md §2.
PG_CONSTRAINTS = {
    "pgqrs_queues_pkey": ("pgqrs_queues", "p", None),
    "pgqrs_queues_queue_name_key": ("pgqrs_queues", "u", None),
    "pgqrs_workers_pkey": ("pgqrs_workers", "p", None),
    "pgqrs_workers_name_key": ("pgqrs_workers", "u", None),
    "fk_workers_queue_id": ("pgqrs_workers", "f", "a"),
    "pgqrs_messages_pkey": ("pgqrs_messages", "p", None),
    "fk_messages_queue_id": ("pgqrs_messages", "f", "a"),
    "fk_messages_producer_worker_id": ("pgqrs_messages", "f", "a"),
    "fk_messages_consumer_worker_id": ("pgqrs_messages", "f", "a"),
    "pgqrs_workflows_pkey": ("pgqrs_workflows", "p", None),
    "pgqrs_workflows_name_key": ("pgqrs_workflows", "u", None),
    "pgqrs_workflows_queue_id_fkey": ("pgqrs_workflows", "f", "a"),
    "pgqrs_workflow_runs_pkey": ("pgqrs_workflow_runs", "p", None),
    "pgqrs_workflow_runs_workflow_id_fkey": ("pgqrs_workflow_runs", "f", "c"),
    "pgqrs_workflow_runs_message_id_key": ("pgqrs_workflow_runs", "u", None),
    "pgqrs_workflow_runs_message_id_fkey": ("pgqrs_workflow_runs", "f", "a"),
    "pgqrs_workflow_runs_worker_id_fkey": ("pgqrs_workflow_runs", "f", "a"),
    "pgqrs_workflow_steps_pkey": ("pgqrs_workflow_steps", "p", None),
    "pgqrs_workflow_steps_run_id_fkey": ("pgqrs_workflow_steps", "f", "c"),
    "pgqrs_workflow_steps_run_id_step_name_key": ("pgqrs_workflow_steps", "u", None),
    "pgqrs_py_message_errors_pkey": ("pgqrs_py_message_errors", "p", None),
    "pgqrs_py_message_errors_message_id_fkey": ("pgqrs_py_message_errors", "f", "c"),
    "pgqrs_limits_pkey": ("pgqrs_limits", "p", None),
    "pgqrs_limits_queue_id_fkey": ("pgqrs_limits", "f", "c"),
    "pgqrs_schedules_pkey": ("pgqrs_schedules", "p", None),
    "pgqrs_schedules_catch_up_check": ("pgqrs_schedules", "c", None),
    "pgqrs_schedules_one_target": ("pgqrs_schedules", "c", None),
    # migration 15 (ours)
    "pgqrs_workflow_runs_parent_run_id_fkey": ("pgqrs_workflow_runs", "f", "n"),
    "pgqrs_workflow_signals_pkey": ("pgqrs_workflow_signals", "p", None),
    "pgqrs_workflow_signals_run_id_fkey": ("pgqrs_workflow_signals", "f", "c"),
    "pgqrs_workflow_events_pkey": ("pgqrs_workflow_events", "p", None),
    "pgqrs_workflow_events_run_id_fkey": ("pgqrs_workflow_events", "f", "c"),
}

# name -> (table, key columns, partial-index predicate or None) per schema.md §2.
PG_INDEXES = {
    "idx_pgqrs_workers_queue_status": ("pgqrs_workers", "queue_id, status", None),
    "idx_pgqrs_workers_heartbeat": ("pgqrs_workers", "heartbeat_at", None),
    "idx_pgqrs_messages_hot_path": (
        "pgqrs_messages",
        "queue_id, vt, enqueued_at, id",
        "(archived_at IS NULL)",
    ),
    "idx_pgqrs_messages_consumer_worker_id_active": (
        "pgqrs_messages",
        "consumer_worker_id",
        "((archived_at IS NULL) AND (consumer_worker_id IS NOT NULL))",
    ),
    "idx_pgqrs_messages_archived_at": (
        "pgqrs_messages",
        "queue_id, archived_at",
        "(archived_at IS NOT NULL)",
    ),
    "idx_pgqrs_messages_producer_worker_id": ("pgqrs_messages", "producer_worker_id", None),
    # migration 7 (ours): archived history by queue, for queue metrics
    "idx_pgqrs_messages_archived_enqueued": (
        "pgqrs_messages",
        "queue_id, enqueued_at",
        "(archived_at IS NOT NULL)",
    ),
    # migration 11 (ours): unarchived messages in claim order (replaces migration 8's index),
    # one unarchived message per deduplication key (UNIQUE), archived messages by key
    "idx_pgqrs_messages_claim_priority": (
        "pgqrs_messages",
        "queue_id, priority DESC, enqueued_at, id",
        "(archived_at IS NULL)",
    ),
    "idx_pgqrs_messages_dedup_key": (
        "pgqrs_messages",
        "queue_id, dedup_key",
        "((archived_at IS NULL) AND (dedup_key IS NOT NULL))",
    ),
    "idx_pgqrs_messages_dedup_archived": (
        "pgqrs_messages",
        "queue_id, dedup_key, archived_at",
        "((archived_at IS NOT NULL) AND (dedup_key IS NOT NULL))",
    ),
    # migration 13 (ours): the messages in flight of a queue and of each key
    "idx_pgqrs_messages_held": (
        "pgqrs_messages",
        "queue_id, limit_key",
        "((archived_at IS NULL) AND (consumer_worker_id IS NOT NULL))",
    ),
    "idx_pgqrs_workflows_name": ("pgqrs_workflows", "name", None),
    # migration 14 (ours): the schedules a scheduler asks for, earliest tick first
    "idx_pgqrs_schedules_next_fire": ("pgqrs_schedules", "next_fire_at", "(NOT paused)"),
    "idx_pgqrs_workflow_runs_message_id": ("pgqrs_workflow_runs", "message_id", None),
    "idx_pgqrs_workflow_runs_status": ("pgqrs_workflow_runs", "status", None),
    "idx_pgqrs_workflow_steps_status": ("pgqrs_workflow_steps", "status", None),
    "idx_pgqrs_workflow_steps_retry_at": (
        "pgqrs_workflow_steps",
        "retry_at",
        "(retry_at IS NOT NULL)",
    ),
    # migration 15 (ours): a run's children, its unconsumed signals by topic, all its signals
    "idx_pgqrs_workflow_runs_parent": (
        "pgqrs_workflow_runs",
        "parent_run_id",
        "(parent_run_id IS NOT NULL)",
    ),
    "idx_pgqrs_workflow_signals_pending": (
        "pgqrs_workflow_signals",
        "run_id, topic, id",
        "(consumed_at IS NULL)",
    ),
    "idx_pgqrs_workflow_signals_run": ("pgqrs_workflow_signals", "run_id, id", None),
    # migration 16 (ours): runs by creation time
    "idx_pgqrs_workflow_runs_created": ("pgqrs_workflow_runs", "created_at, id", None),
}


@pytest.mark.backends("postgres")
async def test_postgres_columns_match_the_schema(store: pgqrs.Store, target: Target) -> None:
    raw = RawDb(target)
    for table, columns in PG_COLUMNS.items():
        rows = raw.query(
            "SELECT column_name, udt_name, is_nullable FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [target.schema, table],
        )
        assert rows == columns, table
    lengths = raw.query(
        "SELECT table_name, column_name, character_maximum_length "
        "FROM information_schema.columns WHERE table_schema = ? AND udt_name = 'varchar' "
        "ORDER BY table_name, column_name",
        [target.schema],
    )
    assert lengths == [
        ("pgqrs_queues", "queue_name", None),
        ("pgqrs_workflow_steps", "step_name", 255),
        ("pgqrs_workflows", "name", 255),
    ]
    # Types of the enum columns are the schema's own, not another schema's.
    owners = raw.query(
        "SELECT DISTINCT udt_schema FROM information_schema.columns "
        "WHERE table_schema = ? AND udt_name IN ('worker_status', 'pgqrs_workflow_status')",
        [target.schema],
    )
    assert owners == [(target.schema,)]


@pytest.mark.backends("postgres")
async def test_postgres_defaults_identity_and_sequences(store: pgqrs.Store, target: Target) -> None:
    raw = RawDb(target)
    identity = raw.query(
        "SELECT table_name, column_name, is_identity, identity_generation "
        "FROM information_schema.columns WHERE table_schema = ? AND is_identity = 'YES'",
        [target.schema],
    )
    assert identity == [("pgqrs_workers", "id", "YES", "ALWAYS")]
    sequences = raw.query(
        "SELECT s.relname, t.relname, a.attname FROM pg_class s "
        "JOIN pg_namespace n ON n.oid = s.relnamespace "
        "JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i') "
        "JOIN pg_class t ON t.oid = d.refobjid "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
        "WHERE s.relkind = 'S' AND n.nspname = ? ORDER BY s.relname",
        [target.schema],
    )
    with_ids = [*PGQRS_TABLES, "pgqrs_workflow_signals"]  # migration 15's signals (ours)
    assert sequences == sorted((f"{t}_id_seq", t, "id") for t in with_ids)
    defaults = {
        (t, c): d
        for t, c, d in raw.query(
            "SELECT table_name, column_name, column_default FROM information_schema.columns "
            "WHERE table_schema = ? AND column_default IS NOT NULL AND column_name <> 'id'",
            [target.schema],
        )
    }
    status_default = defaults[("pgqrs_workers", "status")]
    assert status_default.startswith("'ready'::")
    assert status_default.endswith("worker_status")
    assert defaults[("pgqrs_messages", "read_ct")] == "0"
    assert defaults[("pgqrs_messages", "priority")] == "0"  # pgqrs's inserts get priority 0
    assert defaults[("pgqrs_workflow_steps", "retry_count")] == "0"
    for key in [
        ("pgqrs_queues", "created_at"),
        ("pgqrs_workers", "started_at"),
        ("pgqrs_workers", "heartbeat_at"),
        ("pgqrs_messages", "vt"),
        ("pgqrs_messages", "enqueued_at"),
        ("pgqrs_workflow_runs", "updated_at"),
        ("pgqrs_workflow_signals", "created_at"),
        ("pgqrs_workflow_events", "created_at"),
        ("pgqrs_workflow_events", "updated_at"),
    ]:
        assert defaults[key] == "now()", key


@pytest.mark.backends("postgres")
async def test_postgres_constraints_match_the_schema(store: pgqrs.Store, target: Target) -> None:
    rows = RawDb(target).query(
        "SELECT c.conname, t.relname, c.contype, c.confdeltype FROM pg_constraint c "
        "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = ? AND t.relname <> 'pgqrs_py_migrations'",
        [target.schema],
    )
    found = {
        name: (table, kind, None if kind != "f" else action) for name, table, kind, action in rows
    }
    assert found == PG_CONSTRAINTS
    targets = dict(
        RawDb(target).query(
            "SELECT c.conname, r.relname FROM pg_constraint c JOIN pg_class r "
            "ON r.oid = c.confrelid JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = ? AND c.contype = 'f'",
            [target.schema],
        )
    )
    assert targets == {
        "fk_workers_queue_id": "pgqrs_queues",
        "fk_messages_queue_id": "pgqrs_queues",
        "fk_messages_producer_worker_id": "pgqrs_workers",
        "fk_messages_consumer_worker_id": "pgqrs_workers",
        "pgqrs_workflows_queue_id_fkey": "pgqrs_queues",
        "pgqrs_workflow_runs_workflow_id_fkey": "pgqrs_workflows",
        "pgqrs_workflow_runs_message_id_fkey": "pgqrs_messages",
        "pgqrs_py_message_errors_message_id_fkey": "pgqrs_messages",
        "pgqrs_workflow_runs_worker_id_fkey": "pgqrs_workers",
        "pgqrs_workflow_steps_run_id_fkey": "pgqrs_workflow_runs",
        "pgqrs_limits_queue_id_fkey": "pgqrs_queues",
        "pgqrs_workflow_runs_parent_run_id_fkey": "pgqrs_workflow_runs",
        "pgqrs_workflow_signals_run_id_fkey": "pgqrs_workflow_runs",
        "pgqrs_workflow_events_run_id_fkey": "pgqrs_workflow_runs",
    }


@pytest.mark.backends("postgres")
async def test_postgres_indexes_match_the_schema(store: pgqrs.Store, target: Target) -> None:
    rows = RawDb(target).query(
        "SELECT i.relname, t.relname, pg_get_indexdef(i.oid), "
        "pg_get_expr(x.indpred, x.indrelid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
        "JOIN pg_namespace n ON n.oid = i.relnamespace "
        "WHERE n.nspname = ? AND t.relname <> 'pgqrs_py_migrations'",
        [target.schema],
    )
    found = {name: (table, definition, predicate) for name, table, definition, predicate in rows}
    # Every constraint-backed index, and the named ones, and nothing else.
    constraint_backed = {n for n, (_, kind, _) in PG_CONSTRAINTS.items() if kind in "pu"}
    assert set(found) == constraint_backed | set(PG_INDEXES)
    for name, (table, columns, predicate) in PG_INDEXES.items():
        found_table, definition, found_predicate = found[name]
        assert found_table == table
        assert f"USING btree ({columns})" in definition, definition
        assert found_predicate == predicate, name
        assert ("UNIQUE" in definition) == (name == "idx_pgqrs_messages_dedup_key"), name


@pytest.mark.backends("postgres")
async def test_postgres_enum_labels_in_order(store: pgqrs.Store, target: Target) -> None:
    rows = RawDb(target).query(
        "SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = ? "
        "ORDER BY t.typname, e.enumsortorder",
        [target.schema],
    )
    labels: dict[str, list[str]] = {}
    for name, label in rows:
        labels.setdefault(name, []).append(label)
    assert labels == {
        "worker_status": ["ready", "polling", "suspended", "interrupted", "stopped"],
        "pgqrs_workflow_status": [
            "QUEUED",
            "RUNNING",
            "SUCCESS",
            "ERROR",
            "PAUSED",
            "CANCELLING",
            "CANCELLED",
        ],
    }


@pytest.mark.backends("postgres")
async def test_postgres_bookkeeping_table(store: pgqrs.Store, target: Target) -> None:
    raw = RawDb(target)
    columns = raw.query(
        "SELECT column_name, udt_name, is_nullable FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = 'pgqrs_py_migrations' ORDER BY ordinal_position",
        [target.schema],
    )
    assert columns == [
        ("version", "int8", "NO"),
        ("name", "text", "NO"),
        ("applied_at", "timestamptz", "NO"),
        ("method", "text", "NO"),
        ("library_version", "text", "NO"),
    ]
    with pytest.raises(Exception, match="check"):
        raw.query(
            "INSERT INTO {s}pgqrs_py_migrations (version, name, method, library_version) "
            "VALUES (50, 'x', 'guessed', 'x')"
        )


SQLITE_INDEXES = {
    "idx_workers_queue_id": ("pgqrs_workers", ["queue_id"], False),
    "idx_workers_status": ("pgqrs_workers", ["status"], False),
    "idx_messages_hot_path": ("pgqrs_messages", ["queue_id", "vt", "enqueued_at", "id"], True),
    "idx_messages_consumer_active": ("pgqrs_messages", ["consumer_worker_id"], True),
    "idx_messages_archived_at": ("pgqrs_messages", ["queue_id", "archived_at"], True),
    "idx_messages_archived_enqueued": ("pgqrs_messages", ["queue_id", "enqueued_at"], True),
    "idx_messages_claim_priority": (
        "pgqrs_messages",
        ["queue_id", "priority", "enqueued_at", "id"],
        True,
    ),
    "idx_messages_dedup_key": ("pgqrs_messages", ["queue_id", "dedup_key"], True),
    "idx_messages_dedup_archived": (
        "pgqrs_messages",
        ["queue_id", "dedup_key", "archived_at"],
        True,
    ),
    "idx_messages_held": ("pgqrs_messages", ["queue_id", "limit_key"], True),
    "idx_workflow_runs_message_id": ("pgqrs_workflow_runs", ["message_id"], False),
    "idx_pgqrs_schedules_next_fire": ("pgqrs_schedules", ["next_fire_at"], True),
    "idx_workflow_runs_status": ("pgqrs_workflow_runs", ["status"], False),
    "idx_workflow_steps_status": ("pgqrs_workflow_steps", ["status"], False),
    # migration 15 (ours)
    "idx_pgqrs_workflow_runs_parent": ("pgqrs_workflow_runs", ["parent_run_id"], True),
    "idx_pgqrs_workflow_signals_pending": (
        "pgqrs_workflow_signals",
        ["run_id", "topic", "id"],
        True,
    ),
    "idx_pgqrs_workflow_signals_run": ("pgqrs_workflow_signals", ["run_id", "id"], False),
    # migration 16 (ours)
    "idx_pgqrs_workflow_runs_created": ("pgqrs_workflow_runs", ["created_at", "id"], False),
}

SQLITE_COLUMNS = {
    "pgqrs_queues": [c for c, _, _ in PG_COLUMNS["pgqrs_queues"]],
    "pgqrs_workers": [
        "id",
        "queue_id",
        "name",
        "started_at",
        "heartbeat_at",
        "shutdown_at",
        "status",
        "fence",
        "heartbeat_interval_seconds",
    ],
    "pgqrs_messages": [c for c, _, _ in PG_COLUMNS["pgqrs_messages"]],
    "pgqrs_workflows": ["id", "name", "queue_id", "created_at"],
    "pgqrs_workflow_runs": [c for c, _, _ in PG_COLUMNS["pgqrs_workflow_runs"]],
    "pgqrs_workflow_steps": [c for c, _, _ in PG_COLUMNS["pgqrs_workflow_steps"]],
    "pgqrs_py_message_errors": [c for c, _, _ in PG_COLUMNS["pgqrs_py_message_errors"]],
    "pgqrs_limits": [c for c, _, _ in PG_COLUMNS["pgqrs_limits"]],
    "pgqrs_schedules": [c for c, _, _ in PG_COLUMNS["pgqrs_schedules"]],
    "pgqrs_workflow_signals": [c for c, _, _ in PG_COLUMNS["pgqrs_workflow_signals"]],
    "pgqrs_workflow_events": [c for c, _, _ in PG_COLUMNS["pgqrs_workflow_events"]],
}


@pytest.mark.backends("sqlite")
async def test_sqlite_tables_and_indexes_match_the_schema(
    store: pgqrs.Store, target: Target
) -> None:
    raw = RawDb(target)
    assert raw.tables() == {*PGQRS_TABLES, *PY_TABLES}
    for table, columns in SQLITE_COLUMNS.items():
        assert [r[1] for r in raw.query(f"PRAGMA table_info({table})")] == columns, table
    rows = raw.query(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    )
    found = {name: (table, sql) for name, table, sql in rows}
    assert set(found) == set(SQLITE_INDEXES)
    for name, (table, columns, partial) in SQLITE_INDEXES.items():
        assert found[name][0] == table
        assert [r[2] for r in raw.query(f"PRAGMA index_info({name})")] == columns
        assert ("WHERE" in found[name][1]) == partial, name

    # Foreign keys: runs and steps do not cascade on SQLite (schema.md §3); migration 15's
    # do: a child run loses its parent, signals and events go with their run.
    def actions(table: str) -> dict[str, str]:
        return {r[3]: r[6] for r in raw.query(f"PRAGMA foreign_key_list({table})")}

    assert actions("pgqrs_workflow_runs") == {
        "workflow_id": "NO ACTION",
        "message_id": "NO ACTION",
        "worker_id": "NO ACTION",
        "parent_run_id": "SET NULL",
    }
    assert actions("pgqrs_workflow_steps") == {"run_id": "NO ACTION"}
    assert actions("pgqrs_workflow_signals") == {"run_id": "CASCADE"}
    assert actions("pgqrs_workflow_events") == {"run_id": "CASCADE"}
    # The status CHECK of pgqrs_workers is in place.
    with pytest.raises(Exception, match="CHECK"):
        raw.query("INSERT INTO pgqrs_workers (name, status) VALUES ('w', 'sleeping')")
