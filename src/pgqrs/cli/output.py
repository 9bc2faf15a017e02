"""Printing: rich tables for people, one JSON document for programs."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._clock import parse_time
from ..types import QueueMessage, QueueMetrics


def console() -> Console:
    # Built per call: click's test runner swaps sys.stdout between invocations.
    return Console(highlight=False)


def error_console() -> Console:
    return Console(stderr=True, style="red", highlight=False, soft_wrap=True)


def note(text: str) -> None:
    """A human message; markup allowed. Goes to stdout like the tables."""
    console().print(text)


# -- JSON ------------------------------------------------------------------------------------
def plain(value: Any) -> Any:
    """`value` with records as objects and statuses as their names, ready for `json.dumps`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def emit_json(value: Any) -> None:
    click.echo(json.dumps(plain(value), indent=2, ensure_ascii=False))


# -- text ------------------------------------------------------------------------------------
def table(
    *columns: str,
    title: str | None = None,
    right: Iterable[str] = (),
    flex: Iterable[str] = (),
) -> Table:
    """A table with these columns; those named in `right` are right-aligned (numbers).

    Rows stay one line each: when the terminal is too narrow, only the `flex` columns (names,
    payloads) get narrower, their cells cut with an ellipsis.
    """
    numbers, flexible = set(right), set(flex)
    out = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    for name in columns:
        out.add_column(
            name,
            justify="right" if name in numbers else "left",
            no_wrap=name not in flexible,
            min_width=min(len(name), 10) if name in flexible else None,
            overflow="ellipsis",
        )
    return out


def add_row(out: Table, *values: Any) -> None:
    """A row of plain text: data (payloads, names) is never read as rich markup."""
    out.add_row(
        *(Text("-" if v is None else str(v), no_wrap=True, overflow="ellipsis") for v in values)
    )


def print_table(out: Table, empty: str) -> None:
    if out.row_count:
        console().print(out)
    else:
        note(empty)


def fields_table(rows: Sequence[tuple[str, Any]], title: str | None = None) -> Table:
    """A two-column table of name / value: one record shown vertically."""
    out = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    out.add_column(style="bold")
    out.add_column()
    for name, value in rows:
        add_row(out, name, value)
    return out


def compact(value: Any, width: int = 60) -> str:
    """A JSON value on one line, cut to `width` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def age_seconds(stamp: str | None, now: datetime) -> float | None:
    if stamp is None:
        return None
    return max((now - parse_time(stamp)).total_seconds(), 0.0)


def duration(seconds: float | None) -> str:
    """3.2s, 4m05s, 2h10m, 3d04h: how long, at a glance."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def ago(stamp: str | None, now: datetime) -> str:
    seconds = age_seconds(stamp, now)
    return "-" if seconds is None else f"{duration(seconds)} ago"


def clock_time(stamp: str | None) -> str:
    """The time of day of a stored timestamp, to the millisecond (UTC)."""
    if stamp is None:
        return "-"
    return parse_time(stamp).strftime("%H:%M:%S.%f")[:-3]


def until(stamp: str | None, now: datetime) -> str:
    """`in 5s` for a future time, `3s ago` for a past one."""
    if stamp is None:
        return "-"
    delta = (parse_time(stamp) - now).total_seconds()
    return f"in {duration(delta)}" if delta > 0 else f"{duration(-delta)} ago"


def message_state(message: QueueMessage, now: datetime, max_read_ct: int) -> str:
    """The state of semantics.md §7.1 at `now`."""
    if message.archived_at is not None:
        return "archived"
    due = message.vt is None or parse_time(message.vt) <= now
    if message.consumer_worker_id is not None and not due:
        return "leased"
    if message.read_ct >= max_read_ct:
        return "poison"
    return "visible" if due else "delayed"


# The counts of a queue's row wherever queues are listed (`queue list`, `top`); the row then
# shows the age of its oldest visible message.
QUEUE_NUMBERS = ("Visible", "Delayed", "Leased", "Poison", "Archived")


def queue_cells(m: QueueMetrics, now: datetime) -> tuple[Any, ...]:
    """A queue's name, its `QUEUE_NUMBERS` and the age of its oldest visible message."""
    return (
        m.name,
        m.pending_messages,
        m.delayed_messages,
        m.locked_messages,
        m.poison_messages,
        m.archived_messages,
        duration(age_seconds(m.oldest_pending_message, now)),
    )
