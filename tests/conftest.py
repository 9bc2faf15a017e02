"""Fixtures shared by every test: one conformance suite, run on every backend.

`store` is a freshly installed store on a new SQLite or Turso file, a new PostgreSQL schema, or
a new bucket of the S3 server the tests start on loopback (moto). A test that does not apply to
every backend says so with `@pytest.mark.backends("sqlite", ...)`. PostgreSQL tests never
skip: an unreachable server is a failure (CI starts it first).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pgqrs
from tests.support.target import PG_DSN, StoreFactory, Target, pg_admin

if TYPE_CHECKING:  # imported where used: moto loads only when a test needs S3
    from tests.support.s3server import S3Server

ALL_BACKENDS = ("sqlite", "postgres", "turso", "s3")
BACKENDS = tuple(
    b for b in os.environ.get("PGQRS_TEST_BACKENDS", ",".join(ALL_BACKENDS)).split(",") if b
)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures the fault scenarios measured (tests/support/fault_report.py)."""
    from tests.support.fault_report import lines

    found = lines()
    if found:
        terminalreporter.section("fault scenario figures")
        for line in found:
            terminalreporter.write_line(line)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `backend` with every backend the test applies to."""
    if "backend" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        listed = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
        if "backend" in listed:
            return  # the test parametrizes `backend` itself
    marker = metafunc.definition.get_closest_marker("backends")
    chosen = [b for b in BACKENDS if marker is None or b in marker.args]
    metafunc.parametrize("backend", chosen)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1, started on first use; AWS_* point at it meanwhile."""
    from tests.support.s3server import S3Server

    server = S3Server()
    server.start()
    with pytest.MonkeyPatch.context() as env:
        for name, value in server.env().items():
            env.setenv(name, value)
        yield server
    server.stop()


@pytest.fixture
def target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Target]:
    if backend == "sqlite":
        yield Target("sqlite", f"sqlite://{tmp_path / 'pgqrs.db'}")
        return
    if backend == "turso":
        yield Target("turso", f"turso://{tmp_path / 'pgqrs.db'}")
        return
    if backend == "s3":  # a fresh bucket per test; the cache directory in tmp_path
        bucket = f"pgqrs-{uuid.uuid4().hex[:16]}"
        server: S3Server = request.getfixturevalue("s3_server")
        server.client().create_bucket(Bucket=bucket)
        cache = {"s3_cache_dir": str(tmp_path / "s3-cache")}
        yield Target("s3", f"s3://{bucket}/queues/pgqrs.sqlite", extra=cache)
        return
    if backend == "postgres":
        schema = f"t_{uuid.uuid4().hex[:16]}"
        yield Target("postgres", PG_DSN, schema)
        with pg_admin() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        return
    raise AssertionError(f"unknown backend {backend}")


@pytest.fixture
async def make_store(target: Target) -> AsyncIterator[StoreFactory]:
    """Open more stores on the test's database; all are closed at the end of the test."""
    opened: list[pgqrs.Store] = []

    async def factory(**fields: Any) -> pgqrs.Store:
        store = await target.connect(**fields)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> pgqrs.Store:
    """A connected store with the schema installed."""
    store = await make_store()
    await pgqrs.admin(store).install()
    return store


@pytest.fixture
async def queue(store: pgqrs.Store) -> str:
    """A queue named "jobs" on `store`."""
    await store.queue("jobs")
    return "jobs"
