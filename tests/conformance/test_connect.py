"""Connecting: DSN forms, the config copy, closing, and connection failures (semantics.md §2,
api.md §2-3)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import pgqrs
from pgqrs.store.sqlite import SqliteExecutor
from tests.support.raw_db import PGQRS_TABLES, PY_TABLES, RawDb
from tests.support.target import PG_DSN, StoreFactory, Target, pg_admin


def files_in(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def is_file(path: Path) -> bool:
    return path.is_file()


async def round_trip(store: pgqrs.Store) -> None:
    """Install, enqueue, claim and archive one message: the store works end to end."""
    await pgqrs.admin(store).install()
    await pgqrs.admin(store).verify()
    await store.queue("q")
    producer = await store.producer("q")
    consumer = await store.consumer("q")
    mid = await producer.enqueue({"n": 1})
    [message] = await consumer.dequeue()
    assert (message.id, message.payload) == (mid, {"n": 1})
    assert await consumer.archive(mid) is True


# -- SQLite DSN forms ---------------------------------------------------------------------------


@pytest.mark.backends("sqlite")
async def test_sqlite_absolute_path(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "abs.db"
    async with await pgqrs.connect(f"sqlite://{path}") as store:
        assert is_file(path)  # created by connect, before install
        await round_trip(store)
    assert {"pgqrs_queues", "pgqrs_py_migrations"} <= RawDb(
        Target("sqlite", f"sqlite://{path}")
    ).tables()


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("prefix", ["sqlite://", "sqlite:", "SQLite://"])
async def test_sqlite_relative_path(
    target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    async with await pgqrs.connect(f"{prefix}sub/relative.db") as store:
        await round_trip(store)
    assert is_file(tmp_path / "sub" / "relative.db")


@pytest.mark.backends("sqlite")
async def test_sqlite_memory_works_end_to_end(target: Target, tmp_path: Path) -> None:
    async with await pgqrs.connect("sqlite::memory:") as store:
        assert store.backend == "sqlite"
        await round_trip(store)
        # Concurrent calls share the one private database (no "no such table" on a second
        # connection).
        counts = await asyncio.gather(*(store.get_queue("q") for _ in range(5)))
        assert {c.queue_name for c in counts} == {"q"}
    assert files_in(tmp_path) == []  # nothing written to disk


@pytest.mark.backends("sqlite")
async def test_sqlite_memory_stores_are_private(target: Target) -> None:
    async with (
        await pgqrs.connect("sqlite::memory:") as one,
        await pgqrs.connect("sqlite::memory:") as two,
    ):
        await pgqrs.admin(one).install()
        with pytest.raises(pgqrs.ValidationError):
            await pgqrs.admin(two).verify()


@pytest.mark.backends("sqlite")
async def test_sqlite_existing_empty_file_is_fine(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    async with await pgqrs.connect(f"sqlite://{path}") as store:
        await round_trip(store)


@pytest.mark.backends("sqlite")
async def test_sqlite_missing_file_is_created(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = await pgqrs.connect(f"sqlite://{path}?mode=rwc")
    try:
        assert is_file(path)
        # Connecting never installs.
        assert RawDb(Target("sqlite", f"sqlite://{path}")).tables() == set()
    finally:
        await store.close()


@pytest.mark.backends("sqlite")
async def test_sqlite_mode_rw_needs_an_existing_file(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(pgqrs.PgqrsConnectionError) as caught:
        await pgqrs.connect(f"sqlite://{path}?mode=rw")
    assert str(caught.value) == (
        f"Database connection failed: unable to open database file: {path} "
        "(mode=rw needs an existing file)"
    )
    assert not is_file(path)
    # With the file in place, rw works.
    path.touch()
    async with await pgqrs.connect(f"sqlite://{path}?mode=rw") as store:
        await round_trip(store)


@pytest.mark.backends("sqlite")
async def test_sqlite_missing_directory(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(pgqrs.PgqrsConnectionError) as caught:
        await pgqrs.connect(f"sqlite://{path}")
    assert str(caught.value) == f"Database connection failed: unable to open database file: {path}"
    assert files_in(tmp_path) == []


@pytest.mark.backends("sqlite")
async def test_sqlite_file_that_is_not_a_database(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"certainly not SQLite\n" * 200)
    with pytest.raises(pgqrs.PgqrsConnectionError) as caught:
        await pgqrs.connect(f"sqlite://{path}")
    assert str(caught.value) == f"Database connection failed: file is not a database: {path}"
    assert path.read_bytes() == b"certainly not SQLite\n" * 200  # left as it was


@pytest.mark.backends("sqlite")
async def test_sqlite_mode_ro_reads_but_never_writes(target: Target, store: pgqrs.Store) -> None:
    info = await store.queue("q")
    producer = await store.producer("q")
    await producer.enqueue({"n": 1})
    before = RawDb(target).counts()
    async with await pgqrs.connect(f"{target.dsn}?mode=ro") as ro:
        assert await ro.get_queue("q") == info
        assert await (await ro.get_messages()).count() == 1
        await pgqrs.admin(ro).verify()
        with pytest.raises(pgqrs.PgqrsConnectionError, match=r"readonly"):
            await ro.queue("other")
        with pytest.raises(pgqrs.PgqrsConnectionError):
            await ro.producer("q")
        await pgqrs.admin(ro).install()  # up to date: nothing to write, so it succeeds
    assert RawDb(target).counts() == before


@pytest.mark.backends("sqlite")
async def test_sqlite_mode_ro_cannot_install(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    async with await pgqrs.connect(f"sqlite://{path}?mode=ro") as ro:
        with pytest.raises(pgqrs.InternalError, match=r"^Database migration failed: .*readonly"):
            await pgqrs.admin(ro).install()
    assert RawDb(Target("sqlite", f"sqlite://{path}")).tables() == set()


@pytest.mark.backends("sqlite")
async def test_sqlite_mode_ro_on_missing_file(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(pgqrs.PgqrsConnectionError):
        await pgqrs.connect(f"sqlite://{path}?mode=ro")
    assert not is_file(path)


# -- PostgreSQL DSN forms and schemas -----------------------------------------------------------


@pytest.fixture
def other_schema(backend: str) -> Iterator[str]:
    """A second PostgreSQL schema name, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    yield name
    if backend == "postgres":
        with pg_admin() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.mark.backends("postgres")
@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "PostgreSQL"])
async def test_postgres_schemes(target: Target, scheme: str) -> None:
    dsn = scheme + PG_DSN[PG_DSN.index("://") :]
    config = pgqrs.Config(dsn, schema=target.schema)
    async with await pgqrs.connect_with(config) as store:
        assert store.backend == "postgres"
        await round_trip(store)


@pytest.mark.backends("postgres")
async def test_connect_with_default_schema_is_public(target: Target) -> None:
    async with await pgqrs.connect(PG_DSN) as store:
        assert store.config.schema == "public"
        assert store.backend == "postgres"


@pytest.mark.backends("postgres")
async def test_every_table_lives_in_the_configured_schema(target: Target) -> None:
    raw = RawDb(target)
    async with await target.connect() as store:
        assert not raw.schema_exists()  # connecting never installs, nor creates the schema
        await round_trip(store)
    assert raw.tables() == {*PGQRS_TABLES, *PY_TABLES}
    types = raw.query(
        "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = ? AND t.typtype = 'e'",
        [target.schema],
    )
    assert {r[0] for r in types} == {"worker_status", "pgqrs_workflow_status"}


@pytest.mark.backends("postgres")
async def test_two_schemas_in_one_database_are_independent(
    target: Target, other_schema: str
) -> None:
    async with (
        await target.connect() as one,
        await target.connect(schema=other_schema) as two,
    ):
        await pgqrs.admin(one).install()
        await pgqrs.admin(two).install()
        q1 = await one.queue("shared")
        q2 = await two.queue("shared")  # no QueueAlreadyExistsError: separate tables
        assert q1.id == q2.id == 1
        producer = await one.producer("shared")
        await producer.enqueue_batch([1, 2, 3])
        assert await (await one.get_messages()).count() == 3
        assert await (await two.get_messages()).count() == 0
        assert await (await two.get_workers()).count() == 0
        consumer = await two.consumer("shared")
        assert await consumer.dequeue(3) == []
        # Removing one schema leaves the other untouched.
        await pgqrs.admin(one).purge_queue("shared")
        await (await two.producer("shared")).enqueue("x")
        assert await (await two.get_messages()).count() == 1


@pytest.mark.backends("postgres")
async def test_a_schema_sees_only_its_own_tables(target: Target, other_schema: str) -> None:
    # `one` is installed; `two` is not, although the database has pgqrs tables (in `one`'s
    # schema, and perhaps in public): it must neither verify nor fall back to them.
    async with (
        await target.connect() as one,
        await target.connect(schema=other_schema) as two,
    ):
        await pgqrs.admin(one).install()
        await one.queue("q")
        with pytest.raises(pgqrs.ValidationError, match=r"^Schema validation failed: missing"):
            await pgqrs.admin(two).verify()
        with pytest.raises(pgqrs.PgqrsConnectionError, match=r"install\(\)"):
            await two.get_queue("q")


@pytest.mark.backends("postgres")
async def test_schema_names_are_quoted(target: Target) -> None:
    # Upper case and `$` survive only inside double quotes.
    schema = f"Mixed$Case_{uuid.uuid4().hex[:8]}"
    try:
        async with await target.connect(schema=schema) as store:
            await round_trip(store)
        found = RawDb(Target("postgres", PG_DSN, schema)).tables()
        assert found == {*PGQRS_TABLES, *PY_TABLES}
        assert not RawDb(Target("postgres", PG_DSN, schema.lower())).tables()
    finally:
        with pg_admin() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- the store object ---------------------------------------------------------------------------


async def test_backend_property(store: pgqrs.Store, target: Target) -> None:
    assert store.backend == target.backend


async def test_store_config_is_a_copy(store: pgqrs.Store) -> None:
    config = store.config
    assert isinstance(config, pgqrs.Config)
    assert config is not store.config
    config.default_max_batch_size = 2
    config.forbidden_keys = ["x"]
    assert store.config.default_max_batch_size == 100
    assert store.config.forbidden_keys == ["__proto__", "constructor"]
    await store.queue("q")
    consumer = await store.consumer("q")
    assert await consumer.dequeue(50) == []  # the store still allows 100


async def test_connect_with_copies_the_config(make_store: StoreFactory, target: Target) -> None:
    config = target.config(default_max_batch_size=10, max_payload_size_bytes=1000)
    store = await pgqrs.connect_with(config)
    try:
        config.default_max_batch_size = 1
        config.max_payload_size_bytes = 5
        config.forbidden_keys = ["ok"]
        assert store.config.default_max_batch_size == 10
        assert store.config == target.config(default_max_batch_size=10, max_payload_size_bytes=1000)
        await pgqrs.admin(store).install()
        await store.queue("q")
        producer = await store.producer("q")
        await producer.enqueue({"ok": "a payload longer than five bytes"})
        consumer = await store.consumer("q")
        assert len(await consumer.dequeue(5)) == 1
    finally:
        await store.close()


async def test_connect_keeps_every_config_field(target: Target) -> None:
    config = target.config(
        max_connections=3,
        connection_timeout_seconds=7,
        default_lock_time_seconds=11,
        default_max_batch_size=13,
        max_read_ct=2,
        heartbeat_interval_seconds=4,
        poll_interval_ms=17,
        max_payload_size_bytes=999,
        max_string_length=99,
        max_object_depth=3,
        forbidden_keys=["bad"],
        required_keys=["id"],
        max_enqueue_per_second=10,
        max_enqueue_burst=20,
    )
    async with await pgqrs.connect_with(config) as store:
        assert store.config == config
        assert repr(store.config) == repr(config)


def test_store_has_no_public_constructor() -> None:
    with pytest.raises(TypeError, match=r"connect"):
        pgqrs.Store()


async def test_close_is_idempotent_and_later_calls_raise(
    make_store: StoreFactory,
) -> None:
    store = await make_store()
    await pgqrs.admin(store).install()
    await store.queue("q")
    producer = await store.producer("q")
    consumer = await store.consumer("q")
    workers = await store.get_workers()
    await store.close()
    await store.close()
    admin = pgqrs.admin(store)
    calls = [
        store.queue("q2"),
        store.get_queue("q"),
        store.producer("q"),
        store.consumer("q"),
        store.bootstrap(),
        workers.count(),
        admin.install(),
        admin.verify(),
        admin.create_queue("q3"),
        admin.list_workers(),
        producer.enqueue({"n": 1}),
        consumer.dequeue(),
        consumer.status(),
    ]
    for call in calls:
        with pytest.raises(pgqrs.PgqrsError) as caught:
            await call
        assert type(caught.value) is pgqrs.PgqrsError
        assert str(caught.value) == "Store is closed"


async def test_async_with_closes_the_store(target: Target) -> None:
    async with await target.connect() as store:
        assert isinstance(store, pgqrs.Store)
        await pgqrs.admin(store).install()
    with pytest.raises(pgqrs.PgqrsError, match=r"^Store is closed$"):
        await store.get_queue("q")


async def test_async_with_closes_on_error_and_never_suppresses(target: Target) -> None:
    with pytest.raises(ZeroDivisionError):
        async with await target.connect() as store:
            raise ZeroDivisionError
    with pytest.raises(pgqrs.PgqrsError, match=r"^Store is closed$"):
        await store.get_queue("q")


# -- configuration errors, before anything happens ----------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    [
        "mysql://user@localhost/db",
        "redis://localhost",
        "sqlite3:///tmp/x.db",
        "/tmp/plain/path.db",
        "",
        "postgres:/missing-slash",
    ],
)
async def test_unknown_scheme_is_config_error(
    dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pgqrs.ConfigError) as caught:
        await pgqrs.connect(dsn)
    assert (
        str(caught.value) == f"Invalid configuration value for dsn: Unsupported DSN format: {dsn}"
    )
    with pytest.raises(pgqrs.ConfigError):
        await pgqrs.connect_with(pgqrs.Config(dsn))
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    ("dsn", "detail"),
    [
        ("sqlite:", "needs a file path"),
        ("sqlite://", "needs a file path"),
        ("sqlite://x.db?mode=rwx", "mode"),
        ("sqlite://x.db?cache=shared", "cache"),
        ("sqlite://x.db?mode=ro&mode=rw", "more than once"),
        ("postgresql://postgres@127.0.0.1:99999/test", "port"),
        ("postgresql://postgres@127.0.0.1:abc/test", "port"),
        ("postgresql://postgres@127.0.0.1/test?nosuchoption=1", "nosuchoption"),
    ],
)
async def test_malformed_dsn_is_config_error(
    dsn: str, detail: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pgqrs.ConfigError) as caught:
        await pgqrs.connect(dsn)
    message = str(caught.value)
    assert message.startswith("Invalid configuration value for dsn: ")
    assert detail in message
    assert files_in(tmp_path) == []  # no file created


@pytest.mark.parametrize(
    "schema",
    ["x; drop schema public", 'a"b', "1abc", "", "a" * 64, "has space", "dash-ed", "naïve"],
)
async def test_bad_schema_name_is_config_error(target: Target, schema: str) -> None:
    with pytest.raises(pgqrs.ConfigError) as caught:
        pgqrs.Config(target.dsn, schema=schema)
    assert str(caught.value).startswith("Invalid configuration value for schema: ")
    config = target.config()
    with pytest.raises(pgqrs.ConfigError):
        config.schema = schema
    assert config.schema == target.config().schema  # the bad value was not kept
    if target.backend == "postgres":
        assert RawDb(target).query("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")


def test_non_str_dsn_is_type_error() -> None:
    with pytest.raises(TypeError):
        pgqrs.Config(42)  # type: ignore[arg-type]


async def test_connect_with_needs_a_config() -> None:
    with pytest.raises(TypeError):
        await pgqrs.connect_with("sqlite::memory:")  # type: ignore[arg-type]


# -- unreachable servers ------------------------------------------------------------------------


def free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.backends("postgres")
async def test_refused_connection_fails_at_once(target: Target) -> None:
    config = pgqrs.Config(f"postgresql://postgres@127.0.0.1:{free_port()}/test", schema="s")
    config.connection_timeout_seconds = 30
    started = time.monotonic()
    with pytest.raises(pgqrs.PgqrsConnectionError) as caught:
        await pgqrs.connect_with(config)
    assert time.monotonic() - started < 3
    assert str(caught.value).startswith("Database connection failed: ")
    assert "refused" in str(caught.value).lower()


@pytest.mark.backends("postgres")
async def test_unresolvable_host_fails_at_once(target: Target) -> None:
    config = pgqrs.Config("postgresql://postgres@nonexistent-host.invalid:5432/test")
    config.connection_timeout_seconds = 30
    started = time.monotonic()
    with pytest.raises(pgqrs.PgqrsConnectionError, match=r"^Database connection failed: "):
        await pgqrs.connect_with(config)
    assert time.monotonic() - started < 10


@pytest.mark.backends("postgres")
async def test_unknown_database_fails_at_once(target: Target) -> None:
    base = PG_DSN.rsplit("/", 1)[0]
    with pytest.raises(pgqrs.PgqrsConnectionError, match=r"^Database connection failed: "):
        await pgqrs.connect(f"{base}/no_such_db_{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A local socket that accepts TCP connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.mark.backends("postgres")
async def test_silent_server_times_out_within_connection_timeout(target: Target) -> None:
    with silent_server() as port:
        config = pgqrs.Config(f"postgresql://postgres@127.0.0.1:{port}/test")
        config.connection_timeout_seconds = 1
        started = time.monotonic()
        with pytest.raises(pgqrs.PgqrsConnectionError) as caught:
            await pgqrs.connect_with(config)
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 4
    message = str(caught.value)
    assert message.startswith("Database connection failed: ")
    assert "1s" in message  # says how long it waited


@pytest.mark.backends("sqlite", "turso", "s3")
async def test_sqlite_family_connections_keep_transient_tables_in_memory(
    make_store: StoreFactory,
) -> None:
    """The b-tree behind every claim's and archive's `IN (SELECT value FROM json_each(:ids))`
    lives in memory, not in a temporary file opened per statement (store/sql/session.py,
    TEMP_STORE: a sixth of a drain's SQL), on the writer and the reader alike."""
    store = await make_store()
    db = store.db
    assert isinstance(db, SqliteExecutor)
    on_writer = await db.write(lambda c: c.execute("PRAGMA temp_store").fetchone()[0])
    on_reader = await db.read(lambda c: c.execute("PRAGMA temp_store").fetchone()[0])
    assert (on_writer, on_reader) == (2, 2)  # 2: MEMORY
