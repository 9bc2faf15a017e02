"""`pgqrs run`: handler loading errors in-process; the worker itself as a real process that
gets real signals."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

import pgqrs
from tests.support.cli import Cli
from tests.support.target import Target
from tests.support.waiting import eventually, file_appears

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^pgqrs run: handled (\d+), failed (\d+), released (\d+) in ", re.M)


# -- errors, before anything runs -------------------------------------------------------------
def test_handler_errors(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    assert cli.fails("run", "nosuch:handle", "-q", "jobs") == (
        "cannot import 'nosuch': No module named 'nosuch'"
    )
    assert cli.fails("run", "tests.support.cli_handlers:nope", "-q", "jobs") == (
        "module 'tests.support.cli_handlers' has no attribute 'nope'"
    )
    assert cli.fails("run", "tests.support.cli_handlers:not_a_function", "-q", "jobs") == (
        "'tests.support.cli_handlers:not_a_function' is not callable (it is a int)"
    )
    assert cli.fails("run", "tests.support.cli_handlers", "-q", "jobs") == (
        "expected MODULE:FUNCTION, got 'tests.support.cli_handlers'"
    )
    no_queue = cli("run", "tests.support.cli_handlers:record")
    assert no_queue.exit_code == 2
    assert "--queue is required" in no_queue.stderr
    assert (
        cli.fails("run", "tests.support.cli_handlers:record", "-q", "nope")
        == "Queue 'nope' not found"
    )
    assert (
        cli.fails("run", "tests.support.cli_handlers:record_batch", "-q", "jobs", "--batch", "500")
        == "Validation failed: batch size 500 exceeds default_max_batch_size 100"
    )
    assert cli.json("worker", "list", "--all") == []  # nothing was registered
    result = cli("run", "nosuch:handle", "-q", "jobs")
    assert "pgqrs run:" not in result.stdout  # no summary: nothing ran


def test_in_process_until_sigterm(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGQRS_TEST_OUT", str(tmp_path))
    cli.ok("queue", "create", "jobs")
    first = cli.json("send", "jobs", '"one"')["id"]
    result = cli.ok(
        "run", "tests.support.cli_handlers:stop_self", "-q", "jobs", "-c", "2", "--json"
    )
    tally = json.loads(result.stdout)
    assert (tally["handled"], tally["failed"], tally["released"]) == (1, 0, 0)
    assert (tmp_path / "handled").read_text().split() == [str(first)]
    assert "SIGTERM: stopping workers" in result.stderr
    workers = cli.json("worker", "list", "--all", "--status", "stopped")
    assert len([w for w in workers if not w["name"].startswith("__ephemeral__")]) == 2
    assert cli.json("queue", "metrics", "jobs")["archived_messages"] == 1


# -- real processes ---------------------------------------------------------------------------
async def start(target: Target, out: Path, *args: str) -> asyncio.subprocess.Process:
    """`python -m pgqrs run ARGS` from the repository root, on the test's database."""
    env = {
        **os.environ,
        "PGQRS_DSN": target.dsn,
        "PGQRS_SCHEMA": target.schema,
        "PGQRS_TEST_OUT": str(out),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pgqrs",
        "run",
        *args,
        "--poll-interval",
        "20",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def ended(process: asyncio.subprocess.Process) -> tuple[str, str]:
    """stdout and stderr of a worker that must exit 0 within a few seconds."""
    try:
        out, err = await asyncio.wait_for(process.communicate(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("pgqrs run still running 10 s after the signal") from None
    assert process.returncode == 0, err.decode()
    return out.decode(), err.decode()


def summary(stdout: str) -> tuple[int, int, int]:
    match = SUMMARY.search(stdout)
    assert match, stdout
    handled, failed, released = (int(n) for n in match.groups())
    return handled, failed, released


async def statuses(store: pgqrs.Store) -> list[str]:
    """The statuses of the workers `pgqrs run` registered (not the test's producers)."""
    workers = await (await store.get_workers()).list()
    return [str(w.status) for w in workers if not w.name.startswith("__ephemeral__")]


@pytest.mark.slow
async def test_sigterm_drains_and_stops_every_worker(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    await store.queue("jobs")
    ids = await pgqrs.produce_batch(store, "jobs", [{"n": n} for n in range(30)])
    worker = await start(
        target, tmp_path, "tests.support.cli_handlers:record", "-q", "jobs", "-c", "3"
    )
    admin = pgqrs.admin(store)

    async def drained() -> bool:
        return (await admin.queue_metrics("jobs")).archived_messages == len(ids)

    await eventually(drained, within=15)
    worker.send_signal(signal.SIGTERM)
    out, err = await ended(worker)

    assert summary(out) == (30, 0, 0)
    assert sorted(int(n) for n in (tmp_path / "handled").read_text().split()) == ids
    assert re.search(rf"message {ids[0]} \(worker \d+\) handled in ", err)
    assert "SIGTERM" in err
    assert await statuses(store) == ["STOPPED"] * 3


@pytest.mark.slow
async def test_failures_are_counted_and_released(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    await store.queue("jobs")
    ids = await pgqrs.produce_batch(store, "jobs", ["a", "b"])
    worker = await start(target, tmp_path, "tests.support.cli_handlers:explode", "-q", "jobs")
    messages = await store.get_messages()

    async def both_failed() -> bool:
        found = [await messages.get(i) for i in ids]
        return all(m.read_ct >= 1 and m.consumer_worker_id is None for m in found)

    await eventually(both_failed, within=15)
    worker.send_signal(signal.SIGTERM)
    out, err = await ended(worker)

    found = [await messages.get(i) for i in ids]
    handled, failed, released = summary(out)
    assert (handled, released) == (0, 0)
    assert failed == sum(m.read_ct for m in found)  # one failure per claim
    assert all(m.archived_at is None for m in found)
    assert "ValueError: cannot handle a" in err
    assert await statuses(store) == ["STOPPED"]


@pytest.mark.slow
async def test_second_signal_releases_what_is_running(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    await store.queue("jobs")
    mid = await pgqrs.produce(store, "jobs", "forever")
    worker = await start(target, tmp_path, "tests.support.cli_handlers:hang", "-q", "jobs")
    assert int(await file_appears(tmp_path / "started")) == mid
    worker.send_signal(signal.SIGTERM)

    async def interrupted() -> bool:
        return await statuses(store) == ["INTERRUPTED"]

    await eventually(interrupted)  # the first signal was taken; the handler still runs
    worker.send_signal(signal.SIGTERM)
    out, err = await ended(worker)

    assert summary(out) == (0, 0, 1)
    assert f"message {mid} (worker " in err
    assert "released unfinished" in err
    message = await (await store.get_messages()).get(mid)
    assert (message.archived_at, message.consumer_worker_id, message.read_ct) == (None, None, 1)
    assert await statuses(store) == ["STOPPED"]


@pytest.mark.slow
async def test_batches_and_sigint(store: pgqrs.Store, target: Target, tmp_path: Path) -> None:
    await store.queue("jobs")
    ids = await pgqrs.produce_batch(store, "jobs", list(range(12)))
    worker = await start(
        target, tmp_path, "tests.support.cli_handlers:record_batch", "-q", "jobs", "--batch", "5"
    )
    admin = pgqrs.admin(store)

    async def drained() -> bool:
        return (await admin.queue_metrics("jobs")).archived_messages == len(ids)

    await eventually(drained, within=15)
    worker.send_signal(signal.SIGINT)
    out, _ = await ended(worker)

    assert summary(out) == (12, 0, 0)
    batches = [
        [int(n) for n in line.split()] for line in (tmp_path / "batches").read_text().splitlines()
    ]
    assert sorted(n for batch in batches for n in batch) == ids
    assert max(len(batch) for batch in batches) <= 5
    assert await statuses(store) == ["STOPPED"]


@pytest.mark.slow
async def test_workflow_worker(store: pgqrs.Store, target: Target, tmp_path: Path) -> None:
    greet = pgqrs.workflow().name("greet").store(store)
    await greet.create()
    trigger = await greet.trigger({"name": "ada"}).execute()
    # No --queue: the @workflow's name is the queue.
    worker = await start(target, tmp_path, "tests.support.cli_handlers:greet", "--json")
    result = await pgqrs.run().message(trigger).store(store).result(timeout=15)
    assert result == "hello ADA"
    worker.send_signal(signal.SIGTERM)
    out, err = await ended(worker)

    tally = json.loads(out)
    assert (tally["handled"], tally["failed"], tally["released"]) == (1, 0, 0)
    assert f"(message {trigger.id}) handled in " in err
    assert await statuses(store) == ["STOPPED"]


def open_files(pid: int) -> set[str]:
    """The files process `pid` has open now. A descriptor may close while it is read (the
    starting worker opens and closes files): it is left out, not an error."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(os.readlink(fd))
        except FileNotFoundError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.backends("sqlite")  # the worker is held up by the file's write lock
async def test_a_sigterm_while_starting_stops_the_worker_cleanly(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    """Issue 10, defect 16: a SIGTERM that arrived before `run_worker` had installed its
    handlers (while connecting or registering) killed the process with status -15 and left
    its worker behind. `pgqrs run` catches the signals first thing; the worker then starts
    and stops at once, cleanly, exit status 0."""
    await store.queue("jobs")
    path = target.dsn.split("://", 1)[1]
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # registration waits for it: the worker is still starting
    try:
        worker = await start(target, tmp_path, "tests.support.cli_handlers:record", "-q", "jobs")

        async def opened_the_file() -> bool:
            return path in open_files(worker.pid)

        await eventually(opened_the_file, within=15)  # past the start: signals are caught
        worker.send_signal(signal.SIGTERM)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    out, _ = await ended(worker)
    assert summary(out) == (0, 0, 0)
    assert await statuses(store) == ["STOPPED"]
