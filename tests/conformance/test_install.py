"""install(), bootstrap() and verify(): migrations, bookkeeping, concurrent installers and
failing migrations (semantics.md §3, schema.md §5-6). The catalog is checked in
test_install_catalog.py, adoption of pgqrs installs in test_install_adoption.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import pgqrs
from tests.support.install import expected_rows, methods_without_bookkeeping, use_it
from tests.support.raw_db import RawDb
from tests.support.target import StoreFactory, Target

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
    assert [m for _, _, m, _ in raw.migrations()] == methods_without_bookkeeping(target, ours=True)
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
    if target.backend != "postgres":
        # A plain SQLite (or Turso) connection does not enforce foreign keys.
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
        if "PGQRS_CHILD_S3_CACHE_DIR" in os.environ:
            config.s3_cache_dir = os.environ["PGQRS_CHILD_S3_CACHE_DIR"]
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
    expected = {"pgqrs_queues", "pgqrs_workers", "pgqrs_py_migrations"}
    if target.backend == "turso":  # Turso's migration 1 creates pgqrs's bookkeeping table
        expected.add("pgqrs_schema_version")
    assert raw.tables() == expected
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
