"""`pgqrs install`, `pgqrs verify` and `pgqrs queue create|list|delete|purge|metrics`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..admin import Admin
from ..client import Store
from ..errors import ValidationError
from ..types import QueueMetrics
from .context import NotInstalled, json_option, settings, wants_json, with_store
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


@click.group()
def queue() -> None:
    """Create, list, inspect, purge and delete queues."""


_MAX_READ_CT_HELP = (
    "Deliveries after which an unfinished message is a dead letter; stored with the queue, "
    "so every worker agrees (default: the max_read_ct of this command's config)."
)


@queue.command("create")
@click.argument("name")
@click.option("--exist-ok", is_flag=True, help="Succeed if the queue exists already.")
@click.option("--max-read-ct", type=click.IntRange(min=1), help=_MAX_READ_CT_HELP)
@json_option
def create(name: str, exist_ok: bool, max_read_ct: int | None) -> None:
    """Create the queue NAME."""
    info = with_store(
        lambda store: Admin(store).create_queue(name, exist_ok=exist_ok, max_read_ct=max_read_ct)
    )
    if wants_json():
        emit_json(info)
    else:
        note(f"Queue '{info.queue_name}' ready (id {info.id})")


@queue.command("update")
@click.argument("name")
@click.option("--max-read-ct", type=click.IntRange(min=1), required=True, help=_MAX_READ_CT_HELP)
@json_option
def update(name: str, max_read_ct: int) -> None:
    """Change the settings of the queue NAME for every process that uses it."""
    found = with_store(lambda store: Admin(store).update_queue(name, max_read_ct=max_read_ct))
    if wants_json():
        emit_json(found)
    else:
        note(f"Queue '{found.queue_name}': dead letters after {found.max_read_ct} deliveries")


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


COMMANDS = [install, verify, queue]
