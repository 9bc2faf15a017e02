"""Driving the command line: click's test runner in this process, on every backend.

`cli` is a `Cli` on a freshly installed database (a SQLite file or a PostgreSQL schema of its
own, named to the commands by PGQRS_DSN / PGQRS_SCHEMA, as a user would); `bare_cli` is the
same before `pgqrs install`. `Cli.lib` runs library code against the same database, for setting
up state and checking what a command did. Tests here are plain functions: each command runs its
own event loop, as it does from a shell.
"""

from __future__ import annotations

import pytest

from tests.support.cli import Cli
from tests.support.target import Target


@pytest.fixture
def bare_cli(target: Target) -> Cli:
    return Cli(target)


@pytest.fixture
def cli(bare_cli: Cli) -> Cli:
    bare_cli.ok("install")
    return bare_cli
