"""How `pgqrs workflow show` prints a run's timeline (semantics.md §19.2): the run, then one
table each for its steps, signals, events and child runs; and how `--since`/`--until` read
a time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from .._clock import parse_time
from ..records import RunTimeline
from ..types import RunRecord, WorkflowStatus
from .output import add_row, ago, clock_time, compact, console, duration, fields_table, table

# `90s`, `15m`, `2h`, `7d`: that long before now.
_AGO = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def moment(text: str, now: datetime, option: str) -> datetime:
    """A time given on the command line: an ISO 8601 time (UTC when it has no offset), or a
    duration before now (`90s`, `15m`, `2h`, `7d`)."""
    text = text.strip()
    found = _AGO.fullmatch(text)
    if found:
        return now - timedelta(seconds=float(found[1]) * _UNIT[found[2]])
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise click.BadParameter(
            f"'{text}' is neither an ISO 8601 time (2026-05-01T12:00:00Z) nor a duration "
            "before now (90s, 15m, 2h, 7d)",
            param_hint=option,
        ) from None
    return parse_time(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def outcome(record: RunRecord) -> str:
    """What a run produced: its output, or its error."""
    if record.error is not None and record.status != WorkflowStatus.Success:
        return compact(record.error, 50)
    return "-" if record.output is None else compact(record.output, 50)


def print_timeline(found: RunTimeline, names: dict[int, str], now: datetime) -> None:
    """The run, its steps, signals, events and children (each table only when it has rows)."""
    run = found.run
    rows = [
        ("workflow", found.workflow),
        ("status", run.status),
        ("message", run.message_id),
        ("input", compact(run.input, 80)),
        ("output" if run.status == WorkflowStatus.Success else "error", outcome(run)),
        ("created", f"{run.created_at} ({ago(run.created_at, now)})"),
        ("started", run.started_at),
        ("completed", run.completed_at),
        ("parent run", run.parent_run_id),
        ("deadline", run.deadline_at),
    ]
    console().print(fields_table(rows, title=f"Run {run.id}"))
    _steps(found)
    _signals(found)
    _events(found)
    _children(found, names, now)


def _steps(found: RunTimeline) -> None:
    if not found.steps:
        console().print("No steps yet.")
        return
    out = table(
        "Step",
        "Status",
        "Attempts",
        "Started",
        "Duration",
        "Result",
        title="Steps",
        right=("Attempts", "Duration"),
        flex=("Step", "Result"),
    )
    for s in found.steps:
        result = s.output if s.status == WorkflowStatus.Success else s.last_error
        if s.retry_at is not None:
            shown = f"retry at {clock_time(s.retry_at)}: {compact(result, 40)}"
        else:
            shown = "-" if result is None else compact(result, 50)
        add_row(
            out,
            s.step_name,
            s.status,
            s.attempts,
            clock_time(s.started_at),
            _took(s.duration_seconds),
            shown,
        )
    console().print(out)


def _took(seconds: float | None) -> str:
    """A step's duration: milliseconds below a second (most steps), else as `duration`."""
    if seconds is not None and seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    return duration(seconds)


def _signals(found: RunTimeline) -> None:
    if not found.signals:
        return
    out = table(
        "Signal",
        "Topic",
        "Sent",
        "Consumed",
        "By step",
        "Payload",
        title="Signals",
        right=("Signal",),
        flex=("Topic", "By step", "Payload"),
    )
    for s in found.signals:
        consumed = clock_time(s.consumed_at) if s.consumed_at else "pending"
        add_row(
            out, s.id, s.topic, clock_time(s.sent_at), consumed, s.consumed_by, compact(s.payload)
        )
    console().print(out)


def _events(found: RunTimeline) -> None:
    if not found.events:
        return
    out = table("Event", "Set", "Updated", "Value", title="Events", flex=("Event", "Value"))
    for e in found.events:
        add_row(out, e.key, clock_time(e.created_at), clock_time(e.updated_at), compact(e.value))
    console().print(out)


def _children(found: RunTimeline, names: dict[int, str], now: datetime) -> None:
    if not found.children:
        return
    out = table(
        "Run",
        "Workflow",
        "Status",
        "Created",
        "Result",
        title="Child runs",
        right=("Run",),
        flex=("Workflow", "Result"),
    )
    for c in found.children:
        workflow = names.get(c.workflow_id, c.workflow_id)
        add_row(out, c.id, workflow, c.status, ago(c.created_at, now), outcome(c))
    console().print(out)
