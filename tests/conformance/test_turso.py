"""What is special about Turso: its DDL variant, adoption through `pgqrs_schema_version`
(schema.md §4, §6.2), file modes without URIs, and one process at a time on a file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import turso

import pgqrs
from pgqrs.store.migrate import migrations
from pgqrs.store.sql.turso import inline_add_seconds
from tests.support.target import Target

pytestmark = pytest.mark.backends("turso")


def raw(target: Target) -> Any:
    """A plain pyturso connection on the test's file (the same process may share it)."""
    return turso.connect(target.dsn.removeprefix("turso://"), isolation_level=None)


def rows(target: Target, sql: str) -> list[tuple[Any, ...]]:
    conn = raw(target)
    try:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


async def test_install_creates_pgqrs_turso_bookkeeping(store: pgqrs.Store, target: Target) -> None:
    assert rows(target, "SELECT version, description FROM pgqrs_schema_version") == [
        ("0.5.0", "Initial schema")
    ]
    assert rows(target, "SELECT version, method FROM pgqrs_py_migrations ORDER BY version") == [
        (m.version, "applied") for m in migrations("turso")
    ]
    await pgqrs.admin(store).install()  # idempotent: the row is not duplicated
    assert rows(target, "SELECT COUNT(*) FROM pgqrs_schema_version") == [(1,)]
    await pgqrs.admin(store).verify()


async def test_turso_ddl_has_plain_message_indexes_and_no_status_check(
    store: pgqrs.Store, target: Target
) -> None:
    indexes = dict(
        rows(
            target,
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'pgqrs_messages' AND sql IS NOT NULL",
        )
    )
    # pgqrs's four, plain; then this library's own migrations 7, 11 and 13 (partial, as on
    # SQLite; 11 replaced the claim-order index of 8).
    own = {
        "idx_messages_archived_enqueued",
        "idx_messages_claim_priority",
        "idx_messages_dedup_key",
        "idx_messages_dedup_archived",
        "idx_messages_held",
    }
    assert set(indexes) == {
        "idx_messages_queue_vt",
        "idx_messages_consumer",
        "idx_messages_queue_enqueued_at",
        "idx_messages_archived_at",
        *own,
    }
    assert {name for name, sql in indexes.items() if " WHERE " in str(sql).upper()} == own
    [(workers_sql,)] = rows(target, "SELECT sql FROM sqlite_master WHERE name = 'pgqrs_workers'")
    assert "CHECK" not in str(workers_sql).upper()


def _pgqrs_install(target: Target) -> None:
    """Lay out the file the way pgqrs's Turso installer does: its tables, its version row."""
    ddl = {m.version: m.sql for m in migrations("turso")}
    conn = raw(target)
    try:
        for version in (2, 3, 4, 5):
            conn.executescript(ddl[version])
        conn.execute(
            "CREATE TABLE pgqrs_schema_version (version TEXT PRIMARY KEY, "
            "applied_at TEXT NOT NULL, description TEXT)"
        )
        conn.execute(
            "INSERT INTO pgqrs_schema_version VALUES ('0.5.0', datetime('now'), 'Initial schema')"
        )
        conn.execute("INSERT INTO pgqrs_queues (queue_name) VALUES ('legacy')")
    finally:
        conn.close()


async def test_a_file_installed_by_pgqrs_is_adopted(target: Target) -> None:
    _pgqrs_install(target)
    store = await target.connect()
    try:
        await pgqrs.admin(store).install()
        await pgqrs.admin(store).verify()
        assert (await store.get_queue("legacy")).queue_name == "legacy"
    finally:
        await store.close()
    assert rows(target, "SELECT version, method FROM pgqrs_py_migrations ORDER BY version") == [
        (1, "adopted"),
        (2, "adopted"),
        (3, "adopted"),
        (4, "adopted"),
        (5, "adopted"),
        *((m.version, "applied") for m in migrations("turso") if m.version > 5),
    ]
    # pgqrs's own bookkeeping is left exactly as it was.
    assert rows(target, "SELECT version FROM pgqrs_schema_version") == [("0.5.0",)]


async def test_file_modes_without_uris(target: Target, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(pgqrs.PgqrsConnectionError, match="Database connection failed"):
        await pgqrs.connect(f"turso://{missing}?mode=rw")
    assert not missing.exists()

    writer = await target.connect()
    await pgqrs.admin(writer).install()
    await writer.queue("jobs")
    await writer.close()
    reader = await pgqrs.connect(f"{target.dsn}?mode=ro")
    try:
        assert (await reader.get_queue("jobs")).queue_name == "jobs"
        with pytest.raises(pgqrs.PgqrsConnectionError):
            await reader.queue("other")
    finally:
        await reader.close()


@pytest.mark.slow
async def test_a_process_that_never_lets_go_makes_others_time_out(target: Target) -> None:
    """pyturso opens a file for one process at a time; stores hand it over between calls, but a
    program that keeps a transaction open holds it: others fail after the busy timeout."""
    path = target.dsn.removeprefix("turso://")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, turso\n"
            f"c = turso.connect({path!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('holding', flush=True)\n"
            "sys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert (await asyncio.to_thread(holder.stdout.readline)).strip() == "holding"
        started = time.monotonic()
        with pytest.raises(pgqrs.PgqrsConnectionError, match="in use by another process"):
            await asyncio.wait_for(target.connect(), 15)
        assert 4.5 <= time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
        for pipe in (holder.stdin, holder.stdout):
            if pipe is not None:
                pipe.close()
    store = await target.connect()  # once it has gone, the file opens at once
    await store.close()


async def test_missing_driver_is_a_config_error(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "turso", None)  # makes `import turso` fail
    monkeypatch.delitem(sys.modules, "pgqrs.store.turso", raising=False)
    with pytest.raises(pgqrs.ConfigError) as err:
        await target.connect()
    assert str(err.value) == (
        "Invalid configuration value for dsn: turso backend needs the 'pyturso' package"
    )


def test_lease_arithmetic_is_inlined_for_turso() -> None:
    sql = "SET vt = pgqrs_add_seconds(CASE WHEN vt < :now THEN :now ELSE vt END, :s) WHERE x"
    out = inline_add_seconds(sql)
    assert "pgqrs_add_seconds" not in out
    assert out.startswith("SET vt = (SELECT strftime(")
    assert "(SELECT (CASE WHEN vt < :now THEN :now ELSE vt END) AS b, (:s) AS s)" in out
    assert out.endswith(" WHERE x")
    assert inline_add_seconds("f(pgqrs_add_seconds('a,)', 2))").count("'a,)'") == 1
