"""`pgqrs worker list|health|reclaim|purge-stopped`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..admin import Admin
from ..client import Store
from ..tables import queues as queue_rows
from ..types import WorkerHealthStats, WorkerInfo, WorkerStatus
from .context import json_option, wants_json, with_store
from .output import add_row, ago, emit_json, note, plain, print_table, table

STATUSES = [s.db for s in WorkerStatus]


def worker_json(info: WorkerInfo, queue: str | None) -> dict[str, Any]:
    data: dict[str, Any] = plain(info)
    data["status"] = info.status.db
    data["queue"] = queue
    return data


@click.group(short_help="List workers, check their health, clean up after them.")
def worker() -> None:
    """Workers: who is running, who is stuck, and cleaning up after them."""


@worker.command("list")
@click.option("--queue", "queue", help="Only the workers of this queue.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES, case_sensitive=False),
    help="Only workers in this status (repeatable).",
)
@click.option("--all", "-a", "show_all", is_flag=True, help="Include stopped workers.")
@json_option
def list_workers(queue: str | None, statuses: tuple[str, ...], show_all: bool) -> None:
    """Workers that are not stopped (--all: every worker), newest first."""

    async def work(store: Store) -> tuple[list[WorkerInfo], dict[int, str], datetime]:
        names = {q.id: q.queue_name for q in await queue_rows.list_all(store.db)}
        if queue is not None:
            await Admin(store).get_queue(queue)  # an unknown queue is an error, not "none"
        return await (await store.get_workers()).list(), names, store.clock.now()

    found, names, now = with_store(work)
    wanted = {s.lower() for s in statuses}
    found = [
        w
        for w in found
        if (queue is None or names.get(w.queue_id or 0) == queue)
        and (w.status.db in wanted if wanted else show_all or w.status != WorkerStatus.Stopped)
    ]
    if wants_json():
        emit_json([worker_json(w, names.get(w.queue_id or 0)) for w in found])
        return
    out = table(
        "ID",
        "Name",
        "Queue",
        "Status",
        "Heartbeat",
        "Started",
        right=("ID",),
        flex=("Name", "Queue"),
    )
    for w in found:
        add_row(
            out,
            w.id,
            w.name,
            names.get(w.queue_id or 0, "-"),
            w.status.db,
            ago(w.heartbeat_at, now),
            ago(w.started_at, now),
        )
    print_table(out, "No workers." if show_all or wanted else "No running workers (--all).")


@worker.command("health")
@click.option(
    "--timeout",
    type=click.IntRange(min=0),
    help="Seconds without a heartbeat after which a worker is stale "
    "(default: 3 heartbeat intervals).",
)
@click.option("--global", "overall", is_flag=True, help="One line for every worker together.")
@json_option
def health(timeout: int | None, overall: bool) -> None:
    """Workers per status for each queue, and how many are stale."""

    async def work(store: Store) -> list[WorkerHealthStats]:
        return await (await store.get_workers()).health_stats(timeout, group_by_queue=not overall)

    found = with_store(work)
    if wants_json():
        emit_json(found)
        return
    counts = ("Total", "Ready", "Polling", "Interrupted", "Suspended", "Stopped", "Stale")
    out = table("Queue", *counts, right=counts, flex=("Queue",))
    for h in found:
        add_row(
            out,
            h.queue_name,
            h.total_workers,
            h.ready_workers,
            h.polling_workers,
            h.interrupted_workers,
            h.suspended_workers,
            h.stopped_workers,
            h.stale_workers,
        )
    print_table(out, "No workers.")


@worker.command("reclaim")
@click.option("--queue", help="Only the workers of this queue.")
@click.option(
    "--older-than",
    type=click.IntRange(min=0),
    help="Seconds without a heartbeat (default: 3 heartbeat intervals).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Also take messages whose lease is still running (only when those workers are dead).",
)
@json_option
def reclaim(queue: str | None, older_than: int | None, force: bool) -> None:
    """Stop silent workers; messages they held under a lease that is over are visible again
    (with --force, every message they held, at once)."""
    released = with_store(
        lambda store: Admin(store).reclaim_messages(queue, older_than, force=force)
    )
    if wants_json():
        emit_json({"released": released})
    else:
        note(f"Released {released} message(s) held by silent workers")


@worker.command("purge-stopped")
@click.option(
    "--older-than",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Only workers stopped at least this many seconds ago.",
)
@json_option
def purge_stopped(older_than: int) -> None:
    """Delete stopped workers that hold no message and that no workflow run names; messages
    that named them (as producer, or as the consumer of an archived message) name no worker
    afterwards."""
    deleted = with_store(lambda store: Admin(store).purge_old_workers(older_than))
    if wants_json():
        emit_json({"deleted": deleted})
    else:
        note(f"Deleted {deleted} stopped worker(s)")


COMMANDS = [worker]
