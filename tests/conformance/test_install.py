"""install(), bootstrap() and verify(): migrations, bookkeeping, the installed catalog and the
adoption of databases pgqrs installed (semantics §3, schema.md §2-6)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import pgqrs
from pgqrs.store.migrate import migrations
from tests.conftest import StoreFactory, Target

from ._db import PGQRS_TABLES, RawDb

MIGRATION_NAMES = [
    (1, "base_types"),
    (2, "queues"),
    (3, "workers"),
    (4, "messages"),
    (5, "workflows"),
    (6, "workflow_cancel_statuses"),
]


def methods_without_bookkeeping(target: Target) -> list[str]:
    """How install records versions 1-6 over tables that exist without any bookkeeping.

    Objects found complete are adopted. SQLite's version 1 and both backends' version 6 create
    nothing that could be found, so they are applied (harmlessly: no DDL, or ADD VALUE IF NOT
    EXISTS).
    """
    if target.backend == "sqlite":
        return ["applied", "adopted", "adopted", "adopted", "adopted", "applied"]
    return ["adopted"] * 5 + ["applied"]


def expected_rows(adopted: int = 0) -> list[tuple[int, str, str, str]]:
    """Bookkeeping after install: versions up to `adopted` adopted, the rest applied."""
    return [
        (v, name, "adopted" if v <= adopted else "applied", pgqrs.__version__)
        for v, name in MIGRATION_NAMES
    ]


async def use_it(store: pgqrs.Store) -> None:
    """The installed schema works: a message goes through, verify passes."""
    await pgqrs.admin(store).verify()
    await store.queue("after-install")
    producer = await store.producer("after-install")
    consumer = await store.consumer("after-install")
    mid = await producer.enqueue({"ok": True})
    assert [m.id for m in await consumer.dequeue()] == [mid]
    assert await consumer.archive(mid)


# -- idempotence and bookkeeping ----------------------------------------------------------------


async def test_install_records_every_migration_once(store: pgqrs.Store, target: Target) -> None:
    raw = RawDb(target)
    assert raw.migrations() == expected_rows()
    applied_at = raw.query("SELECT version, applied_at FROM {s}pgqrs_py_migrations")
    assert all(at is not None for _, at in applied_at)
    await use_it(store)


async def test_install_is_idempotent(store: pgqrs.Store, target: Target) -> None:
    raw = RawDb(target)
    await store.queue("q")
    await (await store.producer("q")).enqueue({"n": 1})
    before = raw.query("SELECT * FROM {s}pgqrs_py_migrations ORDER BY version")
    counts = raw.counts()
    await pgqrs.admin(store).install()
    await pgqrs.admin(store).install()
    await store.bootstrap()
    assert raw.query("SELECT * FROM {s}pgqrs_py_migrations ORDER BY version") == before
    assert raw.counts() == counts  # data kept, nothing added
    await use_it(store)


async def test_bootstrap_installs(make_store: StoreFactory, target: Target) -> None:
    store = await make_store()
    await store.bootstrap()
    assert RawDb(target).migrations() == expected_rows()
    await use_it(store)


async def test_install_from_a_second_store(store: pgqrs.Store, make_store: StoreFactory) -> None:
    other = await make_store()
    await pgqrs.admin(other).install()
    await use_it(other)


# -- verify -------------------------------------------------------------------------------------


async def test_verify_fails_before_install_and_passes_after(
    make_store: StoreFactory, target: Target
) -> None:
    store = await make_store()
    with pytest.raises(pgqrs.ValidationError) as caught:
        await pgqrs.admin(store).verify()
    message = str(caught.value)
    assert message.startswith("Schema validation failed: ")
    assert "pgqrs_queues" in message
    await pgqrs.admin(store).install()
    await pgqrs.admin(store).verify()


async def test_verify_on_a_fresh_database_writes_nothing(
    make_store: StoreFactory, target: Target
) -> None:
    store = await make_store()
    with pytest.raises(pgqrs.ValidationError):
        await pgqrs.admin(store).verify()
    raw = RawDb(target)
    if target.backend == "postgres":
        assert not raw.schema_exists()
    else:
        assert raw.tables() == set()


async def test_verify_writes_nothing(store: pgqrs.Store, target: Target) -> None:
    await store.queue("q")
    await (await store.producer("q")).enqueue({"n": 1})
    raw = RawDb(target)
    before = (raw.counts(), raw.query("SELECT * FROM {s}pgqrs_py_migrations ORDER BY version"))
    for _ in range(3):
        await pgqrs.admin(store).verify()
    after = (raw.counts(), raw.query("SELECT * FROM {s}pgqrs_py_migrations ORDER BY version"))
    assert after == before  # in particular, no worker row was registered


async def test_verify_reports_a_missing_bookkeeping_table(
    store: pgqrs.Store, target: Target
) -> None:
    raw = RawDb(target)
    raw.script("DROP TABLE {s}pgqrs_py_migrations;")
    with pytest.raises(pgqrs.ValidationError) as caught:
        await pgqrs.admin(store).verify()
    assert str(caught.value) == (
        "Schema validation failed: missing table pgqrs_py_migrations (run install())"
    )
    await pgqrs.admin(store).install()  # adopts the tables in place, records them again
    assert [m for _, _, m, _ in raw.migrations()] == methods_without_bookkeeping(target)
    await use_it(store)


async def test_verify_reports_pending_migrations(store: pgqrs.Store, target: Target) -> None:
    RawDb(target).query("DELETE FROM {s}pgqrs_py_migrations WHERE version = 6")
    with pytest.raises(pgqrs.ValidationError) as caught:
        await pgqrs.admin(store).verify()
    assert str(caught.value).startswith("Schema validation failed: pending migrations: 6")
    await pgqrs.admin(store).install()
    await pgqrs.admin(store).verify()
    assert RawDb(target).migrations() == expected_rows()


async def test_verify_reports_dangling_references(store: pgqrs.Store, target: Target) -> None:
    info = await store.queue("q")
    await (await store.producer("q")).enqueue({"n": 1})
    raw = RawDb(target)
    # Another program broke the rows behind the foreign keys' back.
    if target.backend == "sqlite":
        # A plain sqlite3 connection does not enforce foreign keys.
        raw.script(f"UPDATE pgqrs_messages SET queue_id = {info.id + 1000};")
    else:
        raw.script(
            "ALTER TABLE {s}pgqrs_messages DROP CONSTRAINT fk_messages_queue_id;\n"
            f"UPDATE {{s}}pgqrs_messages SET queue_id = {info.id + 1000};"
        )
    with pytest.raises(pgqrs.ValidationError) as caught:
        await pgqrs.admin(store).verify()
    assert str(caught.value) == ("Schema validation failed: 1 message(s) reference a missing queue")


# -- a bookkeeping row newer than this library --------------------------------------------------


async def test_newer_schema_version_refuses_install_and_fails_verify(
    store: pgqrs.Store, target: Target
) -> None:
    raw = RawDb(target)
    raw.query(
        "INSERT INTO {s}pgqrs_py_migrations (version, name, applied_at, method, library_version) "
        "VALUES (99, 'future', '2099-01-01 00:00:00', 'applied', '9.9.9')"
    )
    before = raw.counts()
    with pytest.raises(pgqrs.InternalError) as caught:
        await pgqrs.admin(store).install()
    assert str(caught.value) == (
        "Database migration failed: schema version 99 is newer than this library"
    )
    with pytest.raises(pgqrs.ValidationError) as verified:
        await pgqrs.admin(store).verify()
    assert str(verified.value) == (
        "Schema validation failed: schema version 99 is newer than this library"
    )
    assert raw.counts() == before


# -- concurrent installs from several processes -------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    import pgqrs

    async def main():
        config = pgqrs.Config(os.environ["PGQRS_CHILD_DSN"])
        if os.environ["PGQRS_CHILD_BACKEND"] == "postgres":
            config.schema = os.environ["PGQRS_CHILD_SCHEMA"]
        store = await pgqrs.connect_with(config)
        print("ready", flush=True)
        sys.stdin.readline()  # every child installs at the same moment
        await pgqrs.admin(store).install()
        await pgqrs.admin(store).verify()
        await store.close()
        print("installed", flush=True)

    asyncio.run(main())
    """
)


def install_from_processes(target: Target, count: int) -> list[tuple[int, str, str]]:
    """Start `count` processes, let them connect, then release them to install at once;
    their exit codes and output."""
    env = {**os.environ, **target.env(), "PGQRS_CHILD_BACKEND": target.backend}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", child.communicate(timeout=10)
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outcomes = [child.communicate(timeout=30) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return [(c.returncode, out, err) for c, (out, err) in zip(children, outcomes, strict=True)]


@pytest.mark.slow
async def test_concurrent_installs_from_several_processes(
    target: Target, make_store: StoreFactory
) -> None:
    for returncode, out, err in install_from_processes(target, 4):
        assert returncode == 0, err
        assert out.strip() == "installed"
    assert RawDb(target).migrations() == expected_rows()
    store = await make_store()
    await use_it(store)


# -- the installed catalog ----------------------------------------------------------------------

PG_COLUMNS = {
    "pgqrs_queues": [
        ("id", "int8", "NO"),
        ("queue_name", "varchar", "NO"),
        ("created_at", "timestamptz", "NO"),
    ],
    "pgqrs_workers": [
        ("id", "int8", "NO"),
        ("name", "text", "NO"),
        ("queue_id", "int8", "YES"),
        ("started_at", "timestamptz", "YES"),
        ("heartbeat_at", "timestamptz", "YES"),
        ("shutdown_at", "timestamptz", "YES"),
        ("status", "worker_status", "NO"),
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
    "idx_pgqrs_workflows_name": ("pgqrs_workflows", "name", None),
    "idx_pgqrs_workflow_runs_message_id": ("pgqrs_workflow_runs", "message_id", None),
    "idx_pgqrs_workflow_runs_status": ("pgqrs_workflow_runs", "status", None),
    "idx_pgqrs_workflow_steps_status": ("pgqrs_workflow_steps", "status", None),
    "idx_pgqrs_workflow_steps_retry_at": (
        "pgqrs_workflow_steps",
        "retry_at",
        "(retry_at IS NOT NULL)",
    ),
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
    assert sequences == sorted((f"{t}_id_seq", t, "id") for t in PGQRS_TABLES)
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
    assert defaults[("pgqrs_workflow_steps", "retry_count")] == "0"
    for key in [
        ("pgqrs_queues", "created_at"),
        ("pgqrs_workers", "started_at"),
        ("pgqrs_workers", "heartbeat_at"),
        ("pgqrs_messages", "vt"),
        ("pgqrs_messages", "enqueued_at"),
        ("pgqrs_workflow_runs", "updated_at"),
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
        "pgqrs_workflow_runs_worker_id_fkey": "pgqrs_workers",
        "pgqrs_workflow_steps_run_id_fkey": "pgqrs_workflow_runs",
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
    "idx_workflow_runs_message_id": ("pgqrs_workflow_runs", ["message_id"], False),
    "idx_workflow_runs_status": ("pgqrs_workflow_runs", ["status"], False),
    "idx_workflow_steps_status": ("pgqrs_workflow_steps", ["status"], False),
}

SQLITE_COLUMNS = {
    "pgqrs_queues": ["id", "queue_name", "created_at"],
    "pgqrs_workers": [
        "id",
        "queue_id",
        "name",
        "started_at",
        "heartbeat_at",
        "shutdown_at",
        "status",
    ],
    "pgqrs_messages": [c for c, _, _ in PG_COLUMNS["pgqrs_messages"]],
    "pgqrs_workflows": ["id", "name", "queue_id", "created_at"],
    "pgqrs_workflow_runs": [c for c, _, _ in PG_COLUMNS["pgqrs_workflow_runs"]],
    "pgqrs_workflow_steps": [c for c, _, _ in PG_COLUMNS["pgqrs_workflow_steps"]],
}


@pytest.mark.backends("sqlite")
async def test_sqlite_tables_and_indexes_match_the_schema(
    store: pgqrs.Store, target: Target
) -> None:
    raw = RawDb(target)
    assert raw.tables() == {*PGQRS_TABLES, "pgqrs_py_migrations"}
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
    # Foreign keys: runs and steps do not cascade on SQLite (schema.md §3).
    for table in ("pgqrs_workflow_runs", "pgqrs_workflow_steps"):
        actions = {r[6] for r in raw.query(f"PRAGMA foreign_key_list({table})")}
        assert actions == {"NO ACTION"}
    # The status CHECK of pgqrs_workers is in place.
    with pytest.raises(Exception, match="CHECK"):
        raw.query("INSERT INTO pgqrs_workers (name, status) VALUES ('w', 'sleeping')")


# -- adopting a database pgqrs installed --------------------------------------------------------


def pgqrs_ddl(target: Target, up_to: int = 5) -> str:
    """The DDL pgqrs 0.15.3 ran: our migrations 1-5 reproduce it exactly (schema.md §5.1)."""
    kind = target.backend
    return "\n".join(m.sql for m in migrations(kind) if m.version <= up_to)


def sqlx_table(target: Target, versions: dict[int, bool]) -> str:
    """pgqrs's `_sqlx_migrations` with rows for `versions` (version -> success)."""
    if target.backend == "postgres":
        ddl = (
            "CREATE TABLE {s}_sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT "
            "NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, "
            "checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);"
        )
        checksum = "'\\x00'::bytea"
    else:
        ddl = (
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT "
            "NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN "
            "NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);"
        )
        checksum = "x'00'"
    rows = [
        f"INSERT INTO {{s}}_sqlx_migrations (version, description, success, checksum, "
        f"execution_time) VALUES ({v}, 'pgqrs {v}', {'TRUE' if ok else 'FALSE'}, {checksum}, 1);"
        for v, ok in versions.items()
    ]
    return "\n".join([ddl, *rows])


def install_like_pgqrs(target: Target, versions: dict[int, bool]) -> None:
    raw = RawDb(target)
    schema = f'CREATE SCHEMA "{target.schema}";\n' if target.backend == "postgres" else ""
    ddl = pgqrs_ddl(target).replace("{schema}", '"' + target.schema + '"')
    raw.script(schema + ddl + "\n" + sqlx_table(target, versions))
    # pgqrs's processes had already written some rows.
    raw.query("INSERT INTO {s}pgqrs_queues (queue_name) VALUES ('legacy')")
    raw.query('INSERT INTO {s}pgqrs_messages (queue_id, payload) VALUES (1, \'{"from": "pgqrs"}\')')


# pgqrs 0.15.3's own migration numbers: Postgres 1-6 (5 left nothing behind), SQLite 1-5.
PGQRS_VERSIONS = {"postgres": [1, 2, 3, 4, 5, 6], "sqlite": [1, 2, 3, 4, 5]}


async def test_adopts_a_database_installed_by_pgqrs(
    make_store: StoreFactory, target: Target
) -> None:
    install_like_pgqrs(target, dict.fromkeys(PGQRS_VERSIONS[target.backend], True))
    raw = RawDb(target)
    sqlx_before = raw.query("SELECT * FROM {s}_sqlx_migrations ORDER BY version")
    store = await make_store()
    await pgqrs.admin(store).install()
    assert raw.migrations() == expected_rows(adopted=5)
    # pgqrs's bookkeeping is left exactly as it was, so pgqrs still recognises its install.
    assert raw.query("SELECT * FROM {s}_sqlx_migrations ORDER BY version") == sqlx_before
    # Its data is still there and usable.
    info = await store.get_queue("legacy")
    consumer = await store.consumer("legacy")
    [message] = await consumer.dequeue()
    assert (message.queue_id, message.payload) == (info.id, {"from": "pgqrs"})
    if target.backend == "postgres":
        labels = raw.query(
            "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
            "JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = ? AND t.typname = 'pgqrs_workflow_status' "
            "ORDER BY e.enumsortorder",
            [target.schema],
        )
        assert [r[0] for r in labels][-2:] == ["CANCELLING", "CANCELLED"]
    await pgqrs.admin(store).install()  # and a second run changes nothing
    assert raw.migrations() == expected_rows(adopted=5)
    await use_it(store)


async def test_adoption_ignores_unknown_pgqrs_versions(
    make_store: StoreFactory, target: Target
) -> None:
    # Only pgqrs's first migrations are recorded: the rest of ours run normally. The tables of
    # the later ones are already there, created idempotently (IF NOT EXISTS).
    first = PGQRS_VERSIONS[target.backend][:1]
    install_like_pgqrs(target, dict.fromkeys(first, True))
    store = await make_store()
    await pgqrs.admin(store).install()
    adopted = 2 if target.backend == "sqlite" else 1  # SQLite's version 1 goes with pgqrs's 1
    assert RawDb(target).migrations() == expected_rows(adopted=adopted)
    await use_it(store)


async def test_failed_pgqrs_migration_refuses_install(
    make_store: StoreFactory, target: Target
) -> None:
    versions = dict.fromkeys(PGQRS_VERSIONS[target.backend], True)
    versions[3] = False
    install_like_pgqrs(target, versions)
    raw = RawDb(target)
    before = raw.counts()
    store = await make_store()
    with pytest.raises(pgqrs.InternalError) as caught:
        await pgqrs.admin(store).install()
    assert str(caught.value) == "Database migration failed: pgqrs migration 3 is marked as failed"
    after = raw.counts()
    assert after.pop("pgqrs_py_migrations", 0) == 0  # nothing recorded
    assert after == before
    with pytest.raises(pgqrs.ValidationError):
        await pgqrs.admin(store).verify()


async def test_objects_without_bookkeeping_are_adopted(
    make_store: StoreFactory, target: Target
) -> None:
    # Tables in place but no bookkeeping of any kind (e.g. a hand-made copy): adopted, not
    # re-created.
    raw = RawDb(target)
    schema = f'CREATE SCHEMA "{target.schema}";\n' if target.backend == "postgres" else ""
    raw.script(schema + pgqrs_ddl(target).replace("{schema}", f'"{target.schema}"'))
    raw.query("INSERT INTO {s}pgqrs_queues (queue_name) VALUES ('kept')")
    store = await make_store()
    await pgqrs.admin(store).install()
    # SQLite's migration 1 creates nothing, so there is nothing to adopt: it is applied.
    assert [m for _, _, m, _ in raw.migrations()] == methods_without_bookkeeping(target)
    assert (await store.get_queue("kept")).queue_name == "kept"
    await use_it(store)


async def test_partial_objects_without_bookkeeping_are_refused(
    make_store: StoreFactory, target: Target
) -> None:
    raw = RawDb(target)
    schema = f'CREATE SCHEMA "{target.schema}";\n' if target.backend == "postgres" else ""
    ddl = pgqrs_ddl(target, up_to=4).replace("{schema}", f'"{target.schema}"')
    # Migration 5 half done: its first table exists, the runs and steps tables do not.
    workflows = (
        "CREATE TABLE {s}pgqrs_workflows (id BIGSERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL "
        "UNIQUE, queue_id BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());"
        if target.backend == "postgres"
        else "CREATE TABLE pgqrs_workflows (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT "
        "NOT NULL UNIQUE, queue_id INTEGER NOT NULL, created_at TEXT NOT NULL);"
    )
    raw.script(schema + ddl + "\n" + workflows)
    tables_before = raw.tables()
    store = await make_store()
    with pytest.raises(pgqrs.InternalError) as caught:
        await pgqrs.admin(store).install()
    message = str(caught.value)
    assert message.startswith("Database migration failed: migration 5 (workflows)")
    assert "pgqrs_workflow_runs" in message
    assert "pgqrs_workflow_steps" in message
    assert "pgqrs_workflows," not in message  # only what is missing is named
    assert raw.tables() - {"pgqrs_py_migrations"} == tables_before
    if "pgqrs_py_migrations" in raw.tables():
        assert raw.migrations() == []


@pytest.mark.backends("postgres")
async def test_migration_6_over_a_type_that_already_has_the_cancel_labels(
    make_store: StoreFactory, target: Target
) -> None:
    # A later pgqrs put CANCELLING and CANCELLED into its workflow migration itself.
    install_like_pgqrs(target, dict.fromkeys(PGQRS_VERSIONS["postgres"], True))
    raw = RawDb(target)
    raw.script(
        "ALTER TYPE {s}pgqrs_workflow_status ADD VALUE 'CANCELLING';\n"
        "ALTER TYPE {s}pgqrs_workflow_status ADD VALUE 'CANCELLED';"
    )
    store = await make_store()
    await pgqrs.admin(store).install()
    assert raw.migrations() == expected_rows(adopted=5)
    labels = raw.query(
        "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = ? AND t.typname = 'pgqrs_workflow_status' ORDER BY e.enumsortorder",
        [target.schema],
    )
    assert [r[0] for r in labels] == [
        "QUEUED",
        "RUNNING",
        "SUCCESS",
        "ERROR",
        "PAUSED",
        "CANCELLING",
        "CANCELLED",
    ]


# -- a migration that fails ---------------------------------------------------------------------


def block_migration_4(target: Target) -> None:
    """Put an object in the way of migration 4's DDL, the way a stray object of another program
    would: a composite type named like the table on Postgres, a view on SQLite (which `CREATE
    TABLE IF NOT EXISTS` silently keeps, so the migration fails at its first index)."""
    raw = RawDb(target)
    if target.backend == "postgres":
        raw.script(
            f'CREATE SCHEMA "{target.schema}";\nCREATE TYPE {{s}}pgqrs_messages AS (x integer);'
        )
    else:
        raw.script("CREATE VIEW pgqrs_messages AS SELECT 1 AS x;")


def unblock_migration_4(target: Target) -> None:
    if target.backend == "postgres":
        RawDb(target).script("DROP TYPE {s}pgqrs_messages;")
    else:
        RawDb(target).script("DROP VIEW pgqrs_messages;")


async def test_a_failing_migration_leaves_no_partial_changes(
    make_store: StoreFactory, target: Target
) -> None:
    block_migration_4(target)
    raw = RawDb(target)
    store = await make_store()
    with pytest.raises(pgqrs.InternalError) as caught:
        await pgqrs.admin(store).install()
    assert str(caught.value).startswith("Database migration failed: ")
    # Migrations 1-3 are done and recorded; 4 left nothing behind, and nothing after it ran.
    assert raw.migrations() == expected_rows()[:3]
    assert raw.tables() == {"pgqrs_queues", "pgqrs_workers", "pgqrs_py_migrations"}
    if target.backend == "postgres":
        indexes = raw.query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = ?", [target.schema]
        )
    else:
        indexes = raw.query("SELECT name FROM sqlite_master WHERE type = 'index'")
    assert not [name for (name,) in indexes if "messages" in name]
    with pytest.raises(pgqrs.ValidationError, match=r"missing tables: pgqrs_messages"):
        await pgqrs.admin(store).verify()
    # Once the obstacle is gone, install picks up where it stopped.
    unblock_migration_4(target)
    await pgqrs.admin(store).install()
    assert raw.migrations() == expected_rows()
    await use_it(store)
