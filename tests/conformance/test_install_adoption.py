"""Adopting databases that pgqrs (the Rust library) installed, and refusing half-installed
ones (schema.md §5.2, §6.2)."""

from __future__ import annotations

import pytest

import pgqrs
from pgqrs.store.migrate import migrations
from tests.support.install import expected_rows, methods_without_bookkeeping, use_it
from tests.support.raw_db import RawDb
from tests.support.target import StoreFactory, Target


def pgqrs_ddl(target: Target, up_to: int = 5) -> str:
    """The DDL pgqrs 0.15.3 ran: our migrations 1-5 reproduce it exactly (schema.md §5.1)."""
    kind = "sqlite" if target.backend == "s3" else target.backend  # an S3 object is SQLite
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
PGQRS_VERSIONS = {"postgres": [1, 2, 3, 4, 5, 6], "sqlite": [1, 2, 3, 4, 5], "s3": [1, 2, 3, 4, 5]}
# pgqrs records a Turso install in `pgqrs_schema_version`, not `_sqlx_migrations`: the tests of
# `_sqlx_migrations` adoption do not apply there (tests/conformance/test_turso.py covers it).
SQLX_BACKENDS = pytest.mark.backends("sqlite", "postgres", "s3")


@SQLX_BACKENDS
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


@SQLX_BACKENDS
async def test_adoption_ignores_unknown_pgqrs_versions(
    make_store: StoreFactory, target: Target
) -> None:
    # Only pgqrs's first migrations are recorded: the rest of ours run normally. The tables of
    # the later ones are already there, created idempotently (IF NOT EXISTS).
    first = PGQRS_VERSIONS[target.backend][:1]
    install_like_pgqrs(target, dict.fromkeys(first, True))
    store = await make_store()
    await pgqrs.admin(store).install()
    adopted = (
        2 if target.backend in ("sqlite", "s3") else 1
    )  # SQLite's version 1 goes with pgqrs's 1
    assert RawDb(target).migrations() == expected_rows(adopted=adopted)
    await use_it(store)


@SQLX_BACKENDS
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
    assert [m for _, _, m, _ in raw.migrations()] == methods_without_bookkeeping(target, ours=False)
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
    if target.backend == "turso":  # Turso's migration 1 is pgqrs's bookkeeping: none here
        raw.query("DELETE FROM pgqrs_schema_version")
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
