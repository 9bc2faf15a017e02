"""`pgqrs schedule add|list|show|pause|resume|remove`: cron schedules (semantics.md §17).

Each command is one `Admin` call; `pgqrs run` fires the schedules (unless `--no-scheduler`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..admin import Admin
from ..client import Store
from ..errors import NotFoundError
from ..records import ScheduleInfo
from .context import json_option, wants_json, with_store
from .messages import parse_json
from .output import (
    add_row,
    compact,
    console,
    emit_json,
    fields_table,
    note,
    print_table,
    table,
    until,
)


@click.group()
def schedule() -> None:
    """Cron schedules: a message (or a workflow run) at every tick, exactly once."""


def _target(info: ScheduleInfo) -> str:
    if info.workflow is not None:
        return f"workflow {info.workflow}"
    return f"queue {info.queue}"


def _what(info: ScheduleInfo) -> Any:
    return info.input if info.workflow is not None else info.payload


@schedule.command("add")
@click.argument("name")
@click.argument("cron")
@click.option("--queue", "-q", help="Queue to enqueue on at every tick.")
@click.option("--payload", metavar="JSON", help="The message's payload with --queue (default {}).")
@click.option("--workflow", "-w", help="Workflow to trigger at every tick (instead of --queue).")
@click.option("--input", "input_json", metavar="JSON", help="The workflow's input (default null).")
@click.option(
    "--timezone",
    "--tz",
    default="UTC",
    show_default=True,
    help="IANA time zone the expression is read in (e.g. Europe/Berlin).",
)
@click.option(
    "--catch-up",
    type=int,
    default=0,
    show_default=True,
    help="After an outage, enqueue the newest K missed ticks (0: skip them).",
)
@json_option
def add(
    name: str,
    cron: str,
    queue: str | None,
    payload: str | None,
    workflow: str | None,
    input_json: str | None,
    timezone: str,
    catch_up: int,
) -> None:
    """Create the schedule NAME firing at every tick of CRON: 5 fields (minute hour
    day-of-month month day-of-week), or 6 with the seconds first. Quote it:
    `pgqrs schedule add report "0 6 * * MON-FRI" --queue reports`."""
    value = None if payload is None else parse_json(payload, "payload")
    given_input = None if input_json is None else parse_json(input_json, "input")

    async def work(store: Store) -> ScheduleInfo:
        return await Admin(store).create_schedule(
            name,
            cron,
            queue=queue,
            payload=value,
            workflow=workflow,
            input=given_input,
            timezone=timezone,
            catch_up=catch_up,
        )

    info = with_store(work)
    if wants_json():
        emit_json(info)
    else:
        note(f"Schedule '{info.name}' created: {_target(info)}, next tick {info.next_fire_at}")


async def _all(store: Store) -> tuple[list[ScheduleInfo], datetime]:
    return await Admin(store).list_schedules(), store.clock.now()


@schedule.command("list")
@json_option
def list_schedules() -> None:
    """Every schedule with its next tick."""
    found, now = with_store(_all)
    if wants_json():
        emit_json(found)
        return
    out = table(
        "Schedule", "Cron", "Time zone", "Target", "Next tick", "In", "Last tick", "State",
        flex=("Schedule", "Target"),
    )  # fmt: skip
    for info in found:
        add_row(
            out,
            info.name,
            info.cron,
            info.timezone,
            _target(info),
            info.next_fire_at,
            "-" if info.paused else until(info.next_fire_at, now),
            info.last_fire_at,
            "paused" if info.paused else "active",
        )
    print_table(out, "No schedules yet: add one with `pgqrs schedule add NAME CRON --queue Q`.")


def _show(info: ScheduleInfo) -> None:
    if wants_json():
        emit_json(info)
        return
    rows: list[tuple[str, Any]] = [
        ("cron", info.cron),
        ("time zone", info.timezone),
        ("target", _target(info)),
        ("input" if info.workflow is not None else "payload", compact(_what(info))),
        ("catch up", info.catch_up),
        ("state", "paused" if info.paused else "active"),
        ("next tick", info.next_fire_at),
        ("last tick", info.last_fire_at),
        ("created", info.created_at),
    ]
    console().print(fields_table(rows, title=f"Schedule '{info.name}'"))


@schedule.command("show")
@click.argument("name")
@json_option
def show(name: str) -> None:
    """Every setting of the schedule NAME and its next tick."""
    _show(with_store(lambda store: Admin(store).get_schedule(name)))


@schedule.command("pause")
@click.argument("name")
@json_option
def pause(name: str) -> None:
    """Stop firing the schedule NAME (every scheduler) until `pgqrs schedule resume`."""
    info = with_store(lambda store: Admin(store).pause_schedule(name))
    if wants_json():
        emit_json(info)
    else:
        note(f"Schedule '{name}' paused")


@schedule.command("resume")
@click.argument("name")
@json_option
def resume(name: str) -> None:
    """Fire the schedule NAME again from its next tick (ticks of the pause are skipped)."""
    info = with_store(lambda store: Admin(store).resume_schedule(name))
    if wants_json():
        emit_json(info)
    else:
        note(f"Schedule '{name}' resumed: next tick {info.next_fire_at}")


@schedule.command("remove")
@click.argument("name")
@json_option
def remove(name: str) -> None:
    """Delete the schedule NAME (messages it enqueued stay)."""
    if not with_store(lambda store: Admin(store).delete_schedule(name)):
        raise NotFoundError(f"Schedule '{name}' not found")
    if wants_json():
        emit_json({"schedule": name, "removed": True})
    else:
        note(f"Schedule '{name}' removed")


COMMANDS = [schedule]
