"""What every `pgqrs` command shares: the global settings, opening the store, `--json`, and
the errors a command reports as one line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ..client import Store, connect_with
from ..config import Config, parse_dsn, redact_dsn
from ..errors import PgqrsError
from ..observability.logs import LogFormat, formatter

T = TypeVar("T")

# `sqlite://pgqrs.db` is ./pgqrs.db (semantics.md §2: three slashes would make it absolute).
DEFAULT_DSN = "sqlite://pgqrs.db"
DEFAULT_SCHEMA = "public"


class CliError(PgqrsError):
    """A mistake on the command line that the library never sees (file, JSON, handler)."""


class NotInstalled(CliError):
    not_installed = True


@dataclass
class Settings:
    """The global options, shared by every command through the click context."""

    dsn: str
    schema: str
    json: bool
    debug: bool
    s3_cache_dir: str | None = None
    log_format: LogFormat = "text"  # --log-format: how log records print on stderr

    def config(self) -> Config:
        config = Config(self.dsn, schema=self.schema)
        if self.dsn.lower().startswith("s3://"):
            # An S3 store works on a local copy; a command line has to put it somewhere.
            config.s3_cache_dir = self.s3_cache_dir or os.path.join(
                os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pgqrs"
            )
        return config

    def where(self) -> str:
        """The database, for messages: the SQLite file, or the DSN (redacted) and schema."""
        try:
            dsn = parse_dsn(self.dsn)
        except (PgqrsError, TypeError):
            return redact_dsn(self.dsn)
        if dsn.backend == "postgres":
            return f"{redact_dsn(self.dsn)} (schema {self.schema})"
        if dsn.memory:
            return "an in-memory database"
        return str(dsn.path) if dsn.path else redact_dsn(self.dsn)


def settings() -> Settings:
    return click.get_current_context().find_object(Settings) or Settings(
        DEFAULT_DSN, DEFAULT_SCHEMA, json=False, debug=False
    )


def wants_json() -> bool:
    return settings().json


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--json` on a command: the same as the global `pgqrs --json`."""

    def enable(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        found = ctx.find_object(Settings)
        if value and found is not None:
            found.json = True

    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=enable,
        help="Print one JSON document instead of tables.",
    )(f)


def require_database(config: Settings) -> None:
    """Only `install` may create a SQLite file: any other command on a missing file would leave
    an empty database behind and then fail on its first query."""
    dsn = parse_dsn(config.dsn)
    if dsn.backend in ("sqlite", "turso") and dsn.path is not None and not os.path.exists(dsn.path):
        raise NotInstalled(f"no pgqrs database at {dsn.path}")


def with_store(work: Callable[[Store], Awaitable[T]], *, installing: bool = False) -> T:
    """Run `work(store)` on a fresh event loop with the store of the global options."""
    config = settings()
    if not installing:
        require_database(config)

    async def main() -> T:
        store = await connect_with(config.config())
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(main())


@contextlib.contextmanager
def logging_to_stderr(level: int, log_format: LogFormat | None = None) -> Iterator[None]:
    """Log records of every logger at `level` and above to stderr, for the command's duration
    (and no longer: tests run many commands in one process), in `log_format` (default: the
    global `--log-format`)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    ctx = click.get_current_context(silent=True)
    found = None if ctx is None else ctx.find_object(Settings)
    handler.setFormatter(formatter(log_format or (found.log_format if found else "text")))
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def describe(err: BaseException, config: Settings | None) -> str:
    """The one line an error is reported with."""
    if getattr(err, "not_installed", False):
        where = config.where() if config is not None else "this database"
        return f"pgqrs is not installed in {where}: run `pgqrs install` first"
    text = " ".join(str(err).split())  # driver messages span lines; the report is one line
    if isinstance(err, PgqrsError | ValueError | TypeError | OSError) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
