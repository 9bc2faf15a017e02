"""The `pgqrs` command: global options, opening the store, and how errors are reported.

Every command is a thin layer over the library: it parses arguments, runs one coroutine with
`asyncio.run` against a store opened from `--dsn`/`--schema`, and prints the answer as a rich
table or, with `--json`, as one JSON document on stdout. Errors are one red line on stderr and
exit status 1 (`--debug` shows the traceback instead).
"""

from __future__ import annotations

import logging
from typing import Any

import click

from .._version import __version__
from ..observability.logs import FORMATS, LogFormat
from . import dashboard, messages, queues, run, schedules, top, workers, workflows
from .context import DEFAULT_DSN, DEFAULT_SCHEMA, Settings, describe, logging_to_stderr
from .output import error_console


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
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    envvar="PGQRS_LOG_FORMAT",
    default="text",
    show_default=True,
    show_envvar=True,
    help="Log lines on stderr: text, or one JSON object per line (docs/guides/observability.md).",
)
@click.version_option(__version__, "--version", "-V", prog_name="pgqrs")
@click.pass_context
def cli(
    ctx: click.Context,
    dsn: str,
    schema: str,
    s3_cache_dir: str | None,
    json_output: bool,
    debug: bool,
    log_format: LogFormat,
) -> None:
    """pgqrs: durable queues and workflows on SQLite, PostgreSQL, Turso and S3.

    Install the schema, create queues, send messages, run workers and watch them.
    """
    ctx.obj = Settings(
        dsn, schema, json=json_output, debug=debug, s3_cache_dir=s3_cache_dir, log_format=log_format
    )
    if debug:
        ctx.with_resource(logging_to_stderr(logging.DEBUG))


for _module in (queues, messages, workers, workflows, run, top, schedules, dashboard):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """The console script `pgqrs` (and `python -m pgqrs`)."""
    cli(prog_name="pgqrs")
