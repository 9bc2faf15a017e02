"""The `pgqrs` command: global options, opening the store, and how errors are reported.

Every command is a thin layer over the library: it parses arguments, runs one coroutine with
`asyncio.run` against a store opened from `--dsn`/`--schema`, and prints the answer as a rich
table or, with `--json`, as one JSON document on stdout. Errors are one red line on stderr and
exit status 1 (`--debug` shows the traceback instead).
"""

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

from .._version import __version__
from ..config import Config, parse_dsn, redact_dsn
from ..errors import PgqrsError
from ..store.connect import connect_with
from ..store.facade import Store
from .output import error_console

T = TypeVar("T")

# `sqlite://pgqrs.db` is ./pgqrs.db (semantics §2: three slashes would make it absolute).
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
def logging_to_stderr(level: int) -> Iterator[None]:
    """Log records of every logger at `level` and above to stderr, for the command's duration
    (and no longer: tests run many commands in one process)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
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


class PgqrsGroup(click.Group):
    """The top-level group: turns any exception a command raises into one red line, exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as err:
            config = ctx.find_object(Settings)
            if config is not None and config.debug:
                raise
            error_console().print(f"Error: {describe(err, config)}", markup=False)
            ctx.exit(1)


@click.group(cls=PgqrsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--dsn",
    envvar="PGQRS_DSN",
    default=DEFAULT_DSN,
    show_default=True,
    show_envvar=True,
    help="Database to use: sqlite://FILE, postgresql://…, or any DSN pgqrs.connect accepts.",
)
@click.option(
    "--schema",
    envvar="PGQRS_SCHEMA",
    default=DEFAULT_SCHEMA,
    show_default=True,
    show_envvar=True,
    help="PostgreSQL schema holding the pgqrs tables (ignored by SQLite).",
)
@click.option(
    "--s3-cache-dir",
    envvar="PGQRS_S3_CACHE_DIR",
    show_envvar=True,
    help="Local copy of an s3:// database (default: ~/.cache/pgqrs).",
)
@click.option("--json", "json_output", is_flag=True, help="Print one JSON document, not tables.")
@click.option("--debug", is_flag=True, help="Log at DEBUG and show tracebacks on errors.")
@click.version_option(__version__, "--version", "-V", prog_name="pgqrs")
@click.pass_context
def cli(
    ctx: click.Context,
    dsn: str,
    schema: str,
    s3_cache_dir: str | None,
    json_output: bool,
    debug: bool,
) -> None:
    """pgqrs: durable queues and workflows on SQLite, PostgreSQL, Turso and S3.

    Install the schema, create queues, send messages, run workers and watch them.
    """
    ctx.obj = Settings(dsn, schema, json=json_output, debug=debug, s3_cache_dir=s3_cache_dir)
    if debug:
        ctx.with_resource(logging_to_stderr(logging.DEBUG))


def _register() -> None:
    from . import messages, queues, run, top, workers, workflows

    for module in (queues, messages, workers, workflows, run, top):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """The console script `pgqrs` (and `python -m pgqrs`)."""
    cli(prog_name="pgqrs")
