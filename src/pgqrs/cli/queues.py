"""`pgqrs install`, `pgqrs verify` and
`pgqrs queue create|update|show|list|delete|purge|metrics` (and `limit`, from cli/limits.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click

from ..admin import Admin
from ..client import Store
from ..config import Config
from ..errors import ValidationError
from ..records import LimitInfo, QueueSettings
from ..types import QueueInfo, QueueMetrics
from ..validation import PayloadRules
from .context import NotInstalled, json_option, settings, wants_json, with_store
from .limits import limit, limits_json, limits_table
from .output import (
    QUEUE_NUMBERS,
    add_row,
    age_seconds,
    console,
    duration,
    emit_json,
    fields_table,
    note,
    plain,
    print_table,
    queue_cells,
    table,
)


@click.command()
@json_option
def install() -> None:
    """Create or upgrade the pgqrs schema (idempotent)."""

    async def work(store: Store) -> str:
        admin = Admin(store)
        await admin.install()
        return (await admin.system_stats()).schema_version

    version = with_store(work, installing=True)
    where = settings().where()
    if wants_json():
        emit_json({"installed": True, "schema_version": version, "database": where})
    else:
        note(f"[green]✓[/] pgqrs schema version {version} installed in {where}")


@click.command()
@json_option
def verify() -> None:
    """Check that the schema is installed, up to date and consistent."""

    async def work(store: Store) -> str:
        admin = Admin(store)
        try:
            await admin.verify()
        except ValidationError as err:
            if "missing tables" in str(err):
                raise NotInstalled(str(err)) from err
            raise ValidationError(str(err).replace("run install()", "run `pgqrs install`")) from err
        return (await admin.system_stats()).schema_version

    version = with_store(work)
    if wants_json():
        emit_json({"ok": True, "schema_version": version, "database": settings().where()})
    else:
        note(f"[green]✓[/] schema version {version} verified in {settings().where()}")


F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def queue() -> None:
    """Create, list, inspect, purge and delete queues."""


_MAX_READ_CT_HELP = (
    "Deliveries after which an unfinished message is a dead letter; stored with the queue, "
    "so every worker agrees (default: the max_read_ct of this command's config)."
)
# Payload limits stored with the queue (semantics.md §7.6): option -> (argument, help).
_LIMITS = {
    "--max-payload-bytes": (
        "max_payload_size_bytes",
        "Largest stored payload, in bytes (pgqrs's default 1048576).",
    ),
    "--max-string-length": (
        "max_string_length",
        "Longest string or object key in a payload, in UTF-8 bytes (pgqrs's default 1024).",
    ),
    "--max-depth": (
        "max_object_depth",
        "Deepest nesting of a payload; the top-level value is depth 0 (pgqrs's default 5).",
    ),
}
_LIMITS_NOTE = "Stored with the queue: every producer of the queue applies it."
_UPDATE_NOTE = "`config` removes the queue's own value: each producer's Config applies again."


class _LimitValue(click.ParamType[Any, Any]):
    """`queue update`'s payload limits: a number, or `config` (None: back to Config). The
    library checks the range (semantics.md §7.6)."""

    name = "N|config"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, int):
            return value
        if str(value).strip().lower() == "config":
            return None
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a whole number nor 'config'", param, ctx)


def _limit_options(kind: click.ParamType[Any, Any], extra: str) -> Callable[[F], F]:
    def decorate(command: F) -> F:
        for option, (argument, text) in reversed(_LIMITS.items()):
            command = click.option(
                option, argument, type=kind, default=None, help=f"{text} {extra}"
            )(command)
        return command

    return decorate


@queue.command("create")
@click.argument("name")
@click.option("--exist-ok", is_flag=True, help="Succeed if the queue exists already.")
@click.option("--max-read-ct", type=click.IntRange(min=1), help=_MAX_READ_CT_HELP)
@_limit_options(click.INT, _LIMITS_NOTE + " Default: each producer's Config.")
@json_option
def create(name: str, exist_ok: bool, max_read_ct: int | None, **limits: int | None) -> None:
    """Create the queue NAME."""
    info = with_store(
        lambda store: Admin(store).create_queue(
            name, exist_ok=exist_ok, max_read_ct=max_read_ct, **limits
        )
    )
    if wants_json():
        emit_json(info)
    else:
        note(f"Queue '{info.queue_name}' ready (id {info.id})")


@queue.command("update")
@click.argument("name")
@click.option("--max-read-ct", type=click.IntRange(min=1), help=_MAX_READ_CT_HELP)
@_limit_options(_LimitValue(), f"{_LIMITS_NOTE} {_UPDATE_NOTE}")
@json_option
def update(name: str, max_read_ct: int | None, **limits: int | None) -> None:
    """Change the settings of the queue NAME for every process that uses it; the settings
    not given stay as they are."""
    given: dict[str, Any] = {k: v for k, v in limits.items() if _given(k)}
    if max_read_ct is not None:
        given["max_read_ct"] = max_read_ct
    if not given:
        raise click.UsageError(f"give at least one of --max-read-ct, {', '.join(_LIMITS)}")
    found = with_store(lambda store: Admin(store).update_queue(name, **given))
    if wants_json():
        emit_json(found)
        return
    if max_read_ct is not None:
        note(f"Queue '{found.queue_name}': dead letters after {found.max_read_ct} deliveries")
    for argument, _ in _LIMITS.values():
        if argument in given:
            value = getattr(found, argument)
            now = "from each producer's Config" if value is None else f"= {value}"
            note(f"Queue '{found.queue_name}': {argument} {now}")


def _given(argument: str) -> bool:
    """Whether the option of `argument` was on the command line (`config` converts to None)."""
    source = click.get_current_context().get_parameter_source(argument)
    return source is click.core.ParameterSource.COMMANDLINE


@queue.command("show")
@click.argument("name")
@json_option
def show(name: str) -> None:
    """The settings of the queue NAME and the limits in force: the queue's own, else this
    command's Config (each producer applies its own Config where the queue sets nothing)."""

    async def work(store: Store) -> tuple[QueueInfo, QueueSettings, Config, list[LimitInfo]]:
        admin = Admin(store)
        info = await admin.get_queue(name)
        limits = await admin.queue_limits(name)
        return info, await admin.queue_settings(name), store.config, limits

    info, stored, config, limits = with_store(work)
    effective = _effective(stored, config)
    if wants_json():
        data: dict[str, Any] = {"id": info.id, **plain(stored), "created_at": info.created_at}
        data["effective"] = {k: {"value": v, "source": s} for k, (v, s) in effective.items()}
        data["limits"] = limits_json(limits)
        emit_json(data)
        return
    rows: list[tuple[str, Any]] = [("id", info.id), ("created", info.created_at)]
    for setting, (value, source) in effective.items():
        where = "set on the queue" if source == "queue" else "Config"
        # Config's defaults are pgqrs's for these settings (api.md §2.1).
        if source == "config" and value == getattr(Config, setting).default:
            where += ", pgqrs's default"
        rows.append((setting, f"{value} ({where})"))
    console().print(fields_table(rows, title=f"Queue '{info.queue_name}'"))
    if limits:
        limits_table(limits, "Limits (every worker of this library keeps them)")


def _effective(stored: QueueSettings, config: Config) -> dict[str, tuple[int, str]]:
    """Each setting in force for `config`'s processes, and whether it is the queue's or
    Config's (semantics.md §7.6)."""
    found: dict[str, tuple[int, str]] = {}
    own = stored.max_read_ct
    found["max_read_ct"] = (config.max_read_ct, "config") if own is None else (own, "queue")
    rules = PayloadRules.for_queue(config, stored)
    assert rules.origin is not None
    for argument, _ in _LIMITS.values():
        source = "queue" if argument in rules.origin.from_queue else "config"
        found[argument] = (getattr(rules, argument), source)
    return found


def metrics_json(m: QueueMetrics, now: datetime) -> dict[str, Any]:
    data: dict[str, Any] = plain(m)
    data["oldest_pending_age_seconds"] = age_seconds(m.oldest_pending_message, now)
    return data


async def _all_metrics(store: Store) -> tuple[list[QueueMetrics], datetime]:
    return await Admin(store).all_queues_metrics(), store.clock.now()


@queue.command("list")
@json_option
def list_queues() -> None:
    """Every queue with its message counts by state."""
    found, now = with_store(_all_metrics)
    if wants_json():
        emit_json([metrics_json(m, now) for m in found])
        return
    numbers = (*QUEUE_NUMBERS, "Oldest visible")
    out = table("Queue", *numbers, right=numbers, flex=("Queue",))
    for m in found:
        add_row(out, *queue_cells(m, now))
    print_table(out, "No queues yet: create one with `pgqrs queue create NAME`.")


@queue.command("metrics")
@click.argument("name")
@json_option
def metrics(name: str) -> None:
    """Message counts of the queue NAME and the age of its oldest visible message."""

    async def work(store: Store) -> tuple[QueueMetrics, datetime]:
        return await Admin(store).queue_metrics(name), store.clock.now()

    m, now = with_store(work)
    if wants_json():
        emit_json(metrics_json(m, now))
        return
    rows = [
        ("visible", m.pending_messages),
        ("delayed", m.delayed_messages),
        ("leased", m.locked_messages),
        ("poison", m.poison_messages),
        ("archived", m.archived_messages),
        ("total", m.total_messages),
        ("oldest visible", duration(age_seconds(m.oldest_pending_message, now))),
        ("newest message", m.newest_message),
    ]
    console().print(fields_table(rows, title=f"Queue '{m.name}'"))


@queue.command("delete")
@click.argument("name")
@json_option
def delete(name: str) -> None:
    """Delete the queue NAME (it must hold no messages and no running workers)."""
    with_store(lambda store: Admin(store).delete_queue(name))
    if wants_json():
        emit_json({"deleted": name})
    else:
        note(f"Queue '{name}' deleted")


@queue.command("purge")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
def purge(name: str, yes: bool) -> None:
    """Delete every message of the queue NAME (with its workflow runs and stopped workers)."""
    if not yes:
        click.confirm(f"Delete every message of queue '{name}'?", abort=True, err=True)
    count = with_store(lambda store: Admin(store).purge_queue(name))
    if wants_json():
        emit_json({"queue": name, "purged": count})
    else:
        note(f"Purged {count} message(s) from '{name}'")


queue.add_command(limit)

COMMANDS = [install, verify, queue]
