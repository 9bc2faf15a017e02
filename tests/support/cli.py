"""`Cli`: the command line driven by click's test runner in this process.

`Cli` names the database to the commands by PGQRS_DSN / PGQRS_SCHEMA, as a user would; `Cli.lib`
runs library code against the same database, for setting up state and checking what a command
did. Each command runs its own event loop, as it does from a shell.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from click.testing import CliRunner, Result

import pgqrs
from pgqrs.cli.main import cli as pgqrs_cli
from tests.support.target import Target

T = TypeVar("T")


class Cli:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.env = {"PGQRS_DSN": target.dsn, "PGQRS_SCHEMA": target.schema, "COLUMNS": "200"}
        if "s3_cache_dir" in target.extra:
            self.env["PGQRS_S3_CACHE_DIR"] = str(target.extra["s3_cache_dir"])

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(pgqrs_cli, list(args), input=input, env=self.env)

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, f"exit {result.exit_code}:\n{result.output}"
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        """The JSON document a command prints with `--json` (given after the command)."""
        return json.loads(self.ok(*args, "--json", input=input).stdout)

    def fails(self, *args: str, input: str | None = None) -> str:
        """The error a command reports: exit status 1 and one `Error: ...` line on stderr."""
        result = self(*args, input=input)
        assert result.exit_code == 1, f"exit {result.exit_code}:\n{result.output}"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("Error: "), lines[0]
        assert "Traceback" not in result.output
        return lines[0][len("Error: ") :]

    def lib(self, work: Callable[[pgqrs.Store], Awaitable[T]]) -> T:
        """`work(store)` with the library, on the same database, on an event loop of its own."""

        async def main() -> T:
            store = await self.target.connect()
            try:
                return await work(store)
            finally:
                await store.close()

        return asyncio.run(main())
