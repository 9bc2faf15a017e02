"""Global options, install/verify, and how every error is reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import pgqrs
from pgqrs.cli.main import cli as pgqrs_cli
from pgqrs.store.migrate import migrations
from tests.support.cli import Cli
from tests.support.target import Target

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.backends("sqlite")
def test_version_and_python_m(backend: str) -> None:
    result = CliRunner().invoke(pgqrs_cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"pgqrs, version {pgqrs.__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "pgqrs", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    for command in ("install", "queue", "send", "messages", "dlq", "worker", "workflow", "run"):
        assert command in done.stdout


def test_install_is_idempotent_and_verifies(bare_cli: Cli) -> None:
    first = bare_cli.json("install")
    assert first["installed"] is True
    latest = str(migrations("sqlite")[-1].version)  # every backend numbers migrations alike
    assert first["schema_version"] == latest
    assert bare_cli.json("install")["schema_version"] == latest
    assert bare_cli.json("verify")["ok"] is True
    text = bare_cli.ok("verify").stdout
    assert f"schema version {latest} verified" in text


def test_global_json_flag_is_the_same_as_the_command_flag(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    before = cli.ok("--json", "queue", "list").stdout
    assert cli.json("queue", "list")[0]["name"] == "jobs"
    assert before.startswith("[")


@pytest.mark.backends("sqlite")
def test_never_installed_sqlite_file_is_not_created(backend: str, tmp_path: Path) -> None:
    missing = tmp_path / "nothing.db"
    cli = Cli(Target("sqlite", f"sqlite://{missing}"))
    for args in (("queue", "list"), ("verify",), ("worker", "list"), ("top", "--json")):
        error = cli.fails(*args)
        assert error == f"pgqrs is not installed in {missing}: run `pgqrs install` first"
    assert not missing.exists()


def test_never_installed_database(bare_cli: Cli, target: Target) -> None:
    """The tables are missing: an empty SQLite file, or a PostgreSQL schema never installed."""
    bare_cli.lib(_connect_only)  # creates the SQLite file, empty
    where = (
        f"{target.dsn} (schema {target.schema})"
        if target.backend == "postgres"
        else target.dsn.split("://", 1)[1]
        if target.backend in ("sqlite", "turso")  # the file, for file backends
        else target.dsn
    )
    expected = f"pgqrs is not installed in {where}: run `pgqrs install` first"
    assert bare_cli.fails("queue", "list") == expected
    assert bare_cli.fails("send", "jobs", "{}") == expected
    assert bare_cli.fails("verify") == expected


async def _connect_only(store: pgqrs.Store) -> None:
    return None


@pytest.mark.backends("sqlite")
def test_bad_dsn(backend: str) -> None:
    result = CliRunner().invoke(pgqrs_cli, ["--dsn", "mysql://x/y", "queue", "list"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Invalid configuration value for dsn: Unsupported DSN format: mysql://x/y\n"
    )
    result = CliRunner().invoke(pgqrs_cli, ["--dsn", "sqlite:", "queue", "list"])
    assert result.exit_code == 1
    assert "sqlite DSN needs a file path" in result.stderr


@pytest.mark.backends("postgres")
def test_unreachable_server_is_one_line(backend: str) -> None:
    dsn = "postgresql://postgres:secret@127.0.0.1:1/test"
    result = CliRunner().invoke(pgqrs_cli, ["--dsn", dsn, "queue", "list"])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: Database connection failed: ")
    assert "secret" not in result.stderr


def test_bad_schema_name(bare_cli: Cli) -> None:
    error = bare_cli.fails("--schema", "1bad", "install")
    assert error.startswith("Invalid configuration value for schema:")


def test_debug_shows_the_traceback(cli: Cli) -> None:
    result = cli("--debug", "queue", "metrics", "nope")
    assert result.exit_code == 1
    assert isinstance(result.exception, pgqrs.QueueNotFoundError)
    assert "Error:" not in result.stderr


def test_usage_errors_keep_click_status(cli: Cli) -> None:
    result = cli("queue", "create")
    assert result.exit_code == 2
    assert "Missing argument 'NAME'" in result.stderr
