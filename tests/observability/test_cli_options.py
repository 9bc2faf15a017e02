"""The command-line options of this feature, in-process: a metrics port that is taken is one
error line and registers no worker; `--log-format json` applies to every command that logs."""

from __future__ import annotations

import json
import socket

import pytest

from tests.support.cli import Cli
from tests.support.target import Target


@pytest.fixture
def cli(target: Target) -> Cli:
    made = Cli(target)
    made.ok("install")
    made.ok("queue", "create", "jobs")
    return made


@pytest.mark.backends("sqlite", "postgres")
def test_a_taken_metrics_port_is_one_error_line(cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        error = cli.fails(
            "run", "tests.support.cli_handlers:record", "-q", "jobs", "--metrics-port", str(port)
        )
    assert error.startswith(f"cannot serve metrics on 127.0.0.1:{port}: ")
    assert cli.json("worker", "list", "--all") == []


@pytest.mark.backends("sqlite")
def test_log_format_json_with_debug(cli: Cli) -> None:
    result = cli.ok("--log-format", "json", "--debug", "queue", "list")
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines, "--debug logs something"
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
    assert {line["level"] for line in lines} <= {"DEBUG", "INFO", "WARNING"}
    refused = cli("--log-format", "xml", "queue", "list")
    assert refused.exit_code == 2
    assert "'xml' is not one of 'text', 'json'" in refused.stderr
