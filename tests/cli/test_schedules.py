"""`pgqrs schedule add|list|show|pause|resume|remove`, and `pgqrs run` firing schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

import pgqrs
from pgqrs.tables import messages as message_rows
from tests.support.cli import Cli
from tests.support.clocks import FixedClock, at


def test_cron_schedule_commands(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    made = cli.json("schedule", "add", "tick", "*/5 * * * * *", "--queue", "jobs",
                    "--payload", '{"n": 1}', "--catch-up", "3")  # fmt: skip
    assert (made["name"], made["queue"], made["payload"], made["catch_up"]) == (
        "tick", "jobs", {"n": 1}, 3
    )  # fmt: skip
    assert made["next_fire_at"]
    assert made["paused"] is False
    cli.ok("workflow", "create", "report")
    cli.ok("schedule", "add", "daily", "0 6 * * MON-FRI", "--workflow", "report",
           "--input", '{"day": true}', "--timezone", "Europe/Berlin")  # fmt: skip

    listed = cli.json("schedule", "list")
    assert [s["name"] for s in listed] == ["daily", "tick"]
    assert listed[0]["workflow"] == "report"
    assert listed[0]["input"] == {"day": True}
    text = cli.ok("schedule", "list").stdout
    header = next(line for line in text.splitlines() if "Schedule" in line).split()
    assert header[:4] == ["Schedule", "Cron", "Time", "zone"]
    assert "Next" in header
    row = next(line for line in text.splitlines() if line.strip().startswith("tick"))
    assert made["next_fire_at"] in row
    assert "active" in row

    shown = cli.ok("schedule", "show", "daily").stdout
    assert "Europe/Berlin" in shown
    assert "workflow report" in shown
    assert "next tick" in shown
    assert cli.json("schedule", "show", "tick") == made

    assert cli.json("schedule", "pause", "tick")["paused"] is True
    assert "paused" in next(
        line
        for line in cli.ok("schedule", "list").stdout.splitlines()
        if line.strip().startswith("tick")
    )
    assert cli.json("schedule", "resume", "tick")["paused"] is False
    assert "removed" in cli.ok("schedule", "remove", "tick").stdout
    assert cli.fails("schedule", "remove", "tick") == "Schedule 'tick' not found"
    assert [s["name"] for s in cli.json("schedule", "list")] == ["daily"]


def test_cron_schedule_bad_input(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    assert cli.fails("schedule", "add", "s", "* * *", "--queue", "jobs") == (
        "Validation failed: cron expression '* * *' has 3 fields; give 5 (minute hour "
        "day-of-month month day-of-week) or 6 (seconds first)"
    )
    assert "unknown time zone 'Nowhere/City'" in cli.fails(
        "schedule", "add", "s", "0 * * * *", "--queue", "jobs", "--timezone", "Nowhere/City"
    )
    assert cli.fails("schedule", "add", "s", "0 * * * *", "--queue", "nope") == (
        "Queue 'nope' not found"
    )
    assert "got neither" in cli.fails("schedule", "add", "s", "0 * * * *")
    assert "got both" in cli.fails(
        "schedule", "add", "s", "0 * * * *", "--queue", "jobs", "--workflow", "w"
    )
    assert "catch_up must be from 0" in cli.fails(
        "schedule", "add", "s", "0 * * * *", "--queue", "jobs", "--catch-up", "-2"
    )
    assert cli.fails(
        "schedule", "add", "s", "0 * * * *", "-q", "jobs", "--payload", "{x"
    ).startswith("Invalid JSON payload")
    assert cli.fails("schedule", "show", "nope") == "Schedule 'nope' not found"
    assert cli.fails("schedule", "pause", "nope") == "Schedule 'nope' not found"
    assert cli.json("schedule", "list") == []


async def _due_schedule(store: pgqrs.Store) -> None:
    """`due` on queue jobs, every second, created 10 s ago: its newest missed tick is due."""
    await store.queue("jobs")
    store.clock = FixedClock(at(-10))
    await pgqrs.admin(store).create_schedule(
        "due", "* * * * * *", queue="jobs", payload={"from": "schedule"}, catch_up=1
    )


async def _payloads(store: pgqrs.Store) -> list[object]:
    queue_id = (await store.get_queue("jobs")).id
    rows = [
        row
        for which in ("archived", "live")
        for row in await message_rows.browse_rows(
            store.db, queue_id, which=which, now=None, limit=100
        )
    ]
    return [m.payload for m in await store.messages.read(store.db, rows)]


def test_cron_pgqrs_run_fires_schedules(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGQRS_TEST_OUT", str(tmp_path))
    cli.lib(_due_schedule)
    tally = cli.json("run", "tests.support.cli_handlers:stop_self", "-q", "jobs")
    assert tally["handled"] == 1
    assert {"from": "schedule"} in cli.lib(_payloads)
    info = cli.json("schedule", "show", "due")
    assert info["last_fire_at"] is not None


def test_cron_pgqrs_run_no_scheduler(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGQRS_TEST_OUT", str(tmp_path))
    cli.lib(_due_schedule)
    cli.ok("send", "jobs", '"plain"')
    tally = cli.json("run", "tests.support.cli_handlers:stop_self", "-q", "jobs", "--no-scheduler")
    assert tally["handled"] == 1
    assert cli.lib(_payloads) == ["plain"]
    assert cli.json("schedule", "show", "due")["last_fire_at"] is None
