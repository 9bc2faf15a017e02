"""Fixtures of the fault scenarios: a private PostgreSQL server, and a schema of its own per test.

The server (tests/support/pgserver.py) is started on first use and stopped at the end of the
session; tests stop, crash and restart it at will. The shared server on 127.0.0.1:5432 is never
restarted by anything here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support.pgserver import PgServer
from tests.support.target import Target


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PgServer]:
    server = PgServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def private_target(private_pg: PgServer) -> Iterator[Target]:
    """A fresh schema on the private server; dropped afterwards (the server is brought back
    first if the test left it down)."""
    private_pg.ensure_running()
    schema = f"f_{uuid.uuid4().hex[:16]}"
    yield Target("postgres", private_pg.dsn, schema)
    private_pg.ensure_running()
    conn: psycopg.Connection[Any]
    with psycopg.connect(private_pg.dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
