"""`pgqrs top`: one JSON snapshot, a few in-process refreshes, and a real terminal session."""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

import pgqrs
from pgqrs.cli import top
from tests.support.cli import Cli

ROOT = Path(__file__).resolve().parents[2]


async def _traffic(store: pgqrs.Store) -> None:
    """jobs: 5 sent, 2 handled and archived, a consumer polling; idle: an empty queue."""
    admin = pgqrs.admin(store)
    await admin.create_queue("jobs")
    await admin.create_queue("idle")
    await pgqrs.produce_batch(store, "jobs", list(range(5)))
    consumer = await store.consumer("jobs", "busy-worker")
    for message in await consumer.dequeue(2):
        assert await consumer.archive(message.id)


def test_snapshot(cli: Cli) -> None:
    cli.lib(_traffic)
    snapshot = cli.json("top")
    queues = {q["name"]: q for q in snapshot["queues"]}
    assert list(queues) == ["idle", "jobs"]
    jobs = queues["jobs"]
    assert (jobs["pending_messages"], jobs["archived_messages"]) == (3, 2)
    assert (jobs["enqueued_last_minute"], jobs["archived_last_minute"]) == (5, 2)
    assert (queues["idle"]["enqueued_last_minute"], queues["idle"]["archived_last_minute"]) == (
        0,
        0,
    )
    [worker] = snapshot["workers"]  # produce_batch wrote no worker row
    assert (worker["name"], worker["status"], worker["queue"], worker["stale"]) == (
        "busy-worker",
        "ready",
        "jobs",
        False,
    )
    assert snapshot["worker_counts"]["stopped"] == 0
    assert snapshot["worker_counts"]["ready"] == 1


def test_refreshes_in_process(cli: Cli) -> None:
    cli.lib(_traffic)
    result = cli.ok("top", "--iterations", "2", "--interval", "0.1")
    assert "pgqrs top" in result.stdout
    assert "busy-worker" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("jobs"))
    assert row.split()[:6] == ["jobs", "3", "0", "0", "0", "2"]
    assert row.split()[-2:] == ["5", "2"]  # in and done over the last minute


async def _snapshot(store: pgqrs.Store) -> top.Snapshot:
    await _traffic(store)
    await pgqrs.admin(store).create_queue("notifications-eu")
    await pgqrs.produce_batch(store, "notifications-eu", list(range(3)))
    await store.producer("notifications-eu", "web-frontend-" + "x" * 40)
    return await top.take(store)


@pytest.mark.parametrize("width", [80, 120])
def test_readable_at_80_and_120_columns(cli: Cli, width: int) -> None:
    snapshot = cli.lib(_snapshot)
    screen = Console(width=width, record=True, file=io.StringIO())
    screen.print(top.render(snapshot, "sqlite:///db", 1.0))
    lines = screen.export_text().splitlines()
    assert all(len(line.rstrip()) <= width for line in lines)
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.strip()}
    # Every queue by its full name, with its counts: visible .. archived, oldest, in, done.
    assert rows["jobs"][:5] == ["3", "0", "0", "0", "2"]
    assert rows["jobs"][-2:] == ["5", "2"]
    assert rows["notifications-eu"][0] == "3"
    assert rows["idle"][:5] == ["0", "0", "0", "0", "0"]
    # Workers keep their queue and status however long their names are.
    [producer] = [line for line in lines if "web-frontend-" in line]
    assert "notifications-eu" in producer
    assert "ready" in producer
    assert any("busy-worker" in line and "jobs" in line for line in lines)


def test_large_counts_stay_narrow() -> None:
    assert [top.count(n) for n in (0, 99_999, 100_000, 123_456, 12_345_678, 2 * 10**9)] == [
        "0",
        "99999",
        "100.0k",
        "123.5k",
        "12.3M",
        "2.0G",
    ]


def _read_until(fd: int, done: str, count: int, within: float) -> str:
    """Terminal output until `done` has appeared `count` times (or fail after `within` s)."""
    deadline = time.monotonic() + within
    seen = b""
    while seen.decode(errors="replace").count(done) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{done!r} seen fewer than {count} times:\n{seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
    return seen.decode(errors="replace")


def _drain(fd: int) -> str:
    """What is left to read from a terminal whose program has exited."""
    seen = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    return seen.decode(errors="replace")


@pytest.mark.slow
def test_terminal_session_quits_on_ctrl_c(cli: Cli) -> None:
    cli.lib(_traffic)
    leader, follower = pty.openpty()
    env = {**os.environ, **cli.env, "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"}
    child = subprocess.Popen(
        [sys.executable, "-m", "pgqrs", "top", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    try:
        screen = _read_until(leader, "pgqrs top", count=4, within=15)  # 4 views: 3 refreshes
        assert "busy-worker" in screen
        assert "\x1b[" in screen  # drawn with terminal control sequences, in place
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=10) == 0
        screen += _drain(leader)
        assert "Traceback" not in screen
        assert "KeyboardInterrupt" not in screen
        assert "Error" not in screen
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(leader)
