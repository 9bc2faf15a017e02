"""`pgqrs top`: a live view of every queue's depth and throughput, and of the workers."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import click
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..admin import Admin
from ..client import Store
from ..tables import metrics as metric_rows
from ..tables import queues as queue_rows
from ..types import QueueMetrics, WorkerInfo, WorkerStatus
from .context import json_option, settings, wants_json, with_store
from .output import (
    QUEUE_NUMBERS,
    add_row,
    age_seconds,
    console,
    duration,
    emit_json,
    plain,
    queue_cells,
    table,
)

WINDOW = timedelta(minutes=1)  # throughput is counted over the last minute
MAX_WORKER_ROWS = 20


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    queues: list[QueueMetrics]
    throughput: dict[str, tuple[int, int]]  # queue -> (archived, enqueued) in the window
    workers: list[WorkerInfo]
    queue_names: dict[int, str]
    stale_after: float  # seconds without a heartbeat after which a worker looks dead


async def take(store: Store) -> Snapshot:
    now = store.clock.now()
    return Snapshot(
        at=now,
        queues=await Admin(store).all_queues_metrics(),
        throughput=await metric_rows.throughput(store.db, now - WINDOW),
        workers=await (await store.get_workers()).list(),
        queue_names={q.id: q.queue_name for q in await queue_rows.list_all(store.db)},
        stale_after=3.0 * store.settings.heartbeat_interval_seconds,
    )


def _running(snapshot: Snapshot) -> list[WorkerInfo]:
    return [w for w in snapshot.workers if w.status != WorkerStatus.Stopped]


def _stale(worker: WorkerInfo, snapshot: Snapshot) -> bool:
    age = age_seconds(worker.heartbeat_at, snapshot.at) or 0.0
    return worker.status in (WorkerStatus.Ready, WorkerStatus.Polling) and (
        age > snapshot.stale_after
    )


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    queues = []
    for m in snapshot.queues:
        done, new = snapshot.throughput.get(m.name, (0, 0))
        data: dict[str, Any] = plain(m)
        data["oldest_pending_age_seconds"] = age_seconds(m.oldest_pending_message, snapshot.at)
        data["archived_last_minute"] = done
        data["enqueued_last_minute"] = new
        queues.append(data)
    workers = []
    for w in _running(snapshot):
        item: dict[str, Any] = plain(w)
        item["status"] = w.status.db
        item["queue"] = snapshot.queue_names.get(w.queue_id or 0)
        item["stale"] = _stale(w, snapshot)
        workers.append(item)
    counts = Counter(w.status.db for w in snapshot.workers)
    return {
        "at": snapshot.at.isoformat(),
        "queues": queues,
        "workers": workers,
        "worker_counts": {s.db: counts.get(s.db, 0) for s in WorkerStatus},
    }


def count(n: int) -> str:
    """A count in at most 6 characters (12345, 123.4k, 12.3M), so that the columns of numbers
    stay as narrow as their headers and the names get the rest of the screen."""
    if n < 100_000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000_000:
        return f"{n / 1_000_000:.1f}M"
    return f"{n / 1_000_000_000:.1f}G"


def _tight(out: Table) -> Table:
    """One space between columns and none at the edges: at 80 columns the nine columns of
    the queue table leave the queue's name 18 characters (with rich's default padding the
    name column was squeezed out entirely)."""
    out.padding = (0, 0)
    out.show_edge = False
    return out


def render(snapshot: Snapshot, where: str, interval: float) -> Group:
    header = Text.assemble(
        ("pgqrs top", "bold"),
        f"  {where}  {snapshot.at:%H:%M:%S} UTC  every {interval:g}s  Ctrl-C quits",
    )
    numbers = (*QUEUE_NUMBERS, "Oldest", "In/min", "Done/min")
    queues = _tight(table("Queue", *numbers, right=numbers, flex=("Queue",), title="Queues"))
    for m in snapshot.queues:
        done, new = snapshot.throughput.get(m.name, (0, 0))
        name, *counts, oldest = queue_cells(m, snapshot.at)
        add_row(queues, name, *(count(n) for n in counts), oldest, count(new), count(done))
    return Group(header, Text(""), queues, Text(""), _workers(snapshot))


def _workers(snapshot: Snapshot) -> Table:
    counts = Counter(w.status.db for w in snapshot.workers)
    summary = ", ".join(f"{counts[s.db]} {s.db}" for s in WorkerStatus if counts[s.db])
    out = _tight(
        table(
            "ID",
            "Name",
            "Queue",
            "Status",
            "Heartbeat",
            right=("ID",),
            flex=("Name", "Queue"),
            title=f"Workers: {summary or 'none'}",
        )
    )
    running = _running(snapshot)
    for w in running[:MAX_WORKER_ROWS]:
        status = f"{w.status.db} (stale)" if _stale(w, snapshot) else w.status.db
        add_row(
            out,
            w.id,
            w.name,
            snapshot.queue_names.get(w.queue_id or 0, "-"),
            status,
            f"{duration(age_seconds(w.heartbeat_at, snapshot.at))} ago",
        )
    if len(running) > MAX_WORKER_ROWS:
        add_row(out, "", f"… {len(running) - MAX_WORKER_ROWS} more", "", "", "")
    return out


async def watch(store: Store, where: str, interval: float, iterations: int | None) -> None:
    """Refresh every `interval` seconds until SIGINT/SIGTERM (or `iterations` views)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    quit_on = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C stays KeyboardInterrupt
            loop.add_signal_handler(sig, stop.set)
            quit_on.append(sig)
    try:
        view = render(await take(store), where, interval)
        with Live(view, console=console(), auto_refresh=False) as live:
            shown = 1
            while iterations is None or shown < iterations:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await stop.wait()
                if stop.is_set():
                    break
                live.update(render(await take(store), where, interval), refresh=True)
                shown += 1
    finally:
        for sig in quit_on:
            loop.remove_signal_handler(sig)


@click.command(short_help="Live view of queues, throughput and workers.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option("--iterations", type=click.IntRange(min=1), hidden=True)
@json_option
def top(interval: float, iterations: int | None) -> None:
    """Watch queue depths, throughput over the last minute and workers; Ctrl-C quits.

    With --json, print one snapshot and exit.
    """
    where = settings().where()
    if wants_json():
        emit_json(snapshot_json(with_store(take)))
        return
    with_store(lambda store: watch(store, where, interval, iterations))


COMMANDS = [top]
