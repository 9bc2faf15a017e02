"""Where a test's data lives (`Target`), and the shared PostgreSQL server the suite uses.

The root conftest.py builds a `Target` per test and backend; tests and helpers that need to
reach the same data another way (a raw connection, a child process, a second store) take it.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

import pgqrs

PG_DSN = os.environ.get("PGQRS_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/test")

# The `make_store` fixture: opens another store on the test's database.
StoreFactory = Callable[..., Awaitable[pgqrs.Store]]


@dataclass
class Target:
    """Where a test's data lives: a SQLite file, or a PostgreSQL schema of its own."""

    backend: str
    dsn: str
    schema: str = "public"
    extra: dict[str, Any] = field(default_factory=dict)

    def config(self, **fields: Any) -> pgqrs.Config:
        config = pgqrs.Config(self.dsn, **{**self.extra, **fields})
        if self.backend == "postgres" and "schema" not in fields:
            config.schema = self.schema
        return config

    async def connect(self, **fields: Any) -> pgqrs.Store:
        return await pgqrs.connect_with(self.config(**fields))

    def env(self) -> dict[str, str]:
        """How a subprocess reaches the same data (see tests/support/process.py)."""
        env = {"PGQRS_CHILD_DSN": self.dsn, "PGQRS_CHILD_SCHEMA": self.schema}
        if self.backend == "s3":  # the AWS_* variables are in os.environ already
            env["PGQRS_CHILD_S3_CACHE_DIR"] = self.extra["s3_cache_dir"]
        return env


def pg_admin() -> psycopg.Connection[Any]:
    """An autocommit connection to the shared server, as its superuser."""
    try:
        return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:  # never a skip: CI must exercise PostgreSQL
        pytest.fail(f"PostgreSQL is not reachable at {PG_DSN}: {err}", pytrace=False)
