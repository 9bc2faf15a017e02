"""Helpers of the blocking API's tests (tests/conformance/test_sync_api.py): a sync store on
the test's database, in the test or in a child process, a blocking wait with a deadline, and
an application's own blocking connection to the test's database."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

import pgqrs
import pgqrs.sync
from tests.support.target import Target

T = TypeVar("T")


def child_config() -> pgqrs.Config:
    """In a child: the config of the database the parent test named in the environment
    (`Target.env()`), as tests.support.process.child_store reads it."""
    config = pgqrs.Config(os.environ["PGQRS_CHILD_DSN"])
    if "PGQRS_CHILD_S3_CACHE_DIR" in os.environ:
        config.s3_cache_dir = os.environ["PGQRS_CHILD_S3_CACHE_DIR"]
    if config.dsn.startswith(("postgres://", "postgresql://")):
        config.schema = os.environ["PGQRS_CHILD_SCHEMA"]
    return config


def wait_for(check: Callable[[], T], *, within: float = 10.0, interval: float = 0.01) -> T:
    """Call `check()` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        time.sleep(interval)


def workers_of(store: pgqrs.sync.Store, queue: str) -> list[pgqrs.WorkerInfo]:
    """Every worker row registered on `queue`."""
    queue_id = store.get_queue(queue).id
    return [w for w in store.admin().list_workers() if w.queue_id == queue_id]


def blocking_connection(target: Target) -> Any:
    """The application's own blocking connection to the test's database (not autocommit), made
    in the calling thread: psycopg for PostgreSQL, sqlite3 on the store's file for SQLite."""
    if target.backend == "postgres":
        return psycopg.connect(target.dsn)
    return sqlite3.connect(target.dsn.removeprefix("sqlite://"))
