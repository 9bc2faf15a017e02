"""`pgqrs dashboard`: the web dashboard (pgqrs.dashboard) served by uvicorn."""

from __future__ import annotations

import click
from click.core import ParameterSource

from .context import require_database, settings
from .output import error_console

MISSING_EXTRA = "the dashboard needs: pip install 'pgqrs-py[dashboard]'"


@click.command(short_help="Serve the web dashboard.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--write",
    is_flag=True,
    help="Enable write actions (replay and archive dead letters); needs a token.",
)
@click.option(
    "--token",
    envvar="PGQRS_DASHBOARD_TOKEN",
    show_envvar=True,
    help="The token that unlocks write actions (at least 16 characters).",
)
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, write: bool, token: str | None) -> None:
    """Serve the dashboard of the database --dsn/--schema name: queues, workers, dead letters,
    workflow runs, schedules and limits, updated live; Prometheus text at /metrics.

    Read-only unless --write is given with a token (--token or $PGQRS_DASHBOARD_TOKEN).
    """
    try:
        import uvicorn

        from ..dashboard import create_app
    except ImportError:
        error_console().print(MISSING_EXTRA, markup=False)
        ctx.exit(1)
    given = ctx.get_parameter_source("token") != ParameterSource.ENVIRONMENT
    if not write and not given:
        token = None  # $PGQRS_DASHBOARD_TOKEN alone does not turn write actions on
    config = settings()
    require_database(config)
    app = create_app(config.config(), write=write, token=token)
    where = config.where()
    click.echo(
        f"pgqrs dashboard of {where} on http://{host}:{port}/ "
        f"({'write actions need the token' if write else 'read-only'}); Ctrl-C stops it",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on", ws="none")


COMMANDS = [dashboard]
