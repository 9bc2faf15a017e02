"""`pgqrs run --processes N`: the supervisor and its children as real processes, getting real
signals, on a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import pgqrs
from tests.support.cli import Cli
from tests.support.target import Target
from tests.support.waiting import eventually, file_appears

ROOT = Path(__file__).resolve().parents[2]
HANDLER = "tests.cli.processes_handlers:record_pid"
STARTED = re.compile(r"child (\d+) started: pid (\d+)")
QUEUE_BACKENDS = pytest.mark.backends("sqlite", "postgres")  # several processes on one database
# Each test starts several interpreters: seconds each on a machine loaded by other tests.
# Real process trees with signals and lease deadlines: run apart from the parallel suite.
pytestmark = [pytest.mark.timeout(120), pytest.mark.serial]


class Supervisor:
    """A running `pgqrs run --processes`, its stdout and stderr read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.out: list[str] = []
        self.err: list[str] = []
        assert process.stdout is not None
        assert process.stderr is not None
        self.readers = [
            asyncio.ensure_future(_read(process.stdout, self.out)),
            asyncio.ensure_future(_read(process.stderr, self.err)),
        ]

    def started(self) -> list[int]:
        """The pids of the children started so far, in order."""
        return [int(m.group(2)) for line in self.err for m in STARTED.finditer(line)]

    async def children(self, count: int) -> list[int]:
        async def enough() -> list[int]:
            pids = self.started()
            return pids if len(pids) >= count else []

        found: list[int] = await eventually(enough, within=20)
        return found

    async def ended(self, within: float = 20) -> int:
        """The exit status, once the supervisor and every child have closed the pipes."""
        try:
            await asyncio.wait_for(asyncio.gather(*self.readers), within)
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            raise AssertionError(f"still running after {within} s:\n{self.stderr()}") from None

    def stderr(self) -> str:
        return "\n".join(self.err)


async def _read(stream: asyncio.StreamReader, into: list[str]) -> None:
    async for line in stream:
        into.append(line.decode().rstrip("\n"))


@contextlib.asynccontextmanager
async def supervisor(
    target: Target, out: Path, *args: str, **env: str
) -> AsyncIterator[Supervisor]:
    """`python -m pgqrs run ARGS` from the repository root, on the test's database; whatever
    is left of it at the end is killed (the children by pid: they are in groups of their own)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pgqrs",
        "run",
        *args,
        "--poll-interval",
        "20",
        cwd=ROOT,
        env={
            **os.environ,
            "PGQRS_DSN": target.dsn,
            "PGQRS_SCHEMA": target.schema,
            "PGQRS_TEST_OUT": str(out),
            "PGQRS_RESTART_BACKOFF": "0.05",
            **env,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    running = Supervisor(process)
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for pid in running.started():
            if alive(pid) and HANDLER.encode() in _cmdline(pid):  # not a pid used again since
                os.kill(pid, signal.SIGKILL)
        for reader in running.readers:
            reader.cancel()
        await asyncio.gather(*running.readers, return_exceptions=True)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap it is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def two_free_ports() -> int:
    """A port P such that P and P+1 are free (as far as binding them now tells)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise AssertionError("no two consecutive free ports")


def handled(out: Path) -> list[tuple[int, int]]:
    """(pid, message id) of every message a handler finished."""
    lines = (out / "handled").read_text().splitlines() if (out / "handled").exists() else []
    return [(int(pid), int(mid)) for pid, mid in (line.split() for line in lines)]


async def registered(store: pgqrs.Store) -> list[pgqrs.WorkerInfo]:
    """The workers the children registered (not the test's producers)."""
    workers = await (await store.get_workers()).list()
    return [w for w in workers if not w.name.startswith("__ephemeral__")]


async def nothing_in_flight(store: pgqrs.Store, ids: list[int]) -> set[int]:
    """Every message of `ids` is archived or pending, none held; returns the archived ones."""
    messages = await store.get_messages()
    archived = set()
    for mid in ids:
        message = await messages.get(mid)
        assert message.consumer_worker_id is None or message.archived_at is not None, message
        if message.archived_at is not None:
            archived.add(mid)
    return archived


# -- before anything starts ---------------------------------------------------------------------
@pytest.mark.backends("sqlite")
def test_processes_must_be_positive(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    for bad in ("0", "-2"):
        assert cli.fails("run", HANDLER, "-q", "jobs", "--processes", bad) == (
            f"--processes must be 1 or more, got {bad}"
        )
    assert cli.json("worker", "list", "--all") == []  # nothing was started


@pytest.mark.backends("s3")
def test_an_s3_object_has_one_writer(cli: Cli) -> None:
    assert cli.fails("run", HANDLER, "-q", "jobs", "--processes", "2") == (
        "--processes cannot share an s3:// database: an object has one writer"
    )


# -- real processes -----------------------------------------------------------------------------
@pytest.mark.slow
@QUEUE_BACKENDS
async def test_two_processes_drain_a_backlog(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    await store.queue("jobs")
    ids = await pgqrs.produce_batch(store, "jobs", list(range(60)))
    admin = pgqrs.admin(store)
    port = two_free_ports()
    async with supervisor(
        target,
        tmp_path,
        HANDLER,
        "-q",
        "jobs",
        "--processes",
        "2",
        "--metrics-port",
        str(port),
        PGQRS_TEST_PROCESSES="2",
    ) as running:

        async def drained() -> bool:
            return (await admin.queue_metrics("jobs")).archived_messages == len(ids)

        await eventually(drained, within=30)
        for child in (0, 1):  # child i serves --metrics-port + i
            async with httpx.AsyncClient() as client:
                page = await client.get(f"http://127.0.0.1:{port + child}/metrics")
            assert page.status_code == 200
        running.process.send_signal(signal.SIGTERM)
        assert await running.ended() == 0, running.stderr()

    done = handled(tmp_path)
    assert sorted(mid for _, mid in done) == ids  # each exactly once
    assert {pid for pid, _ in done} == set(running.started())  # both children handled some
    assert len(running.started()) == 2
    assert len([line for line in running.out if line.startswith("pgqrs run: handled")]) == 2
    assert [str(w.status) for w in await registered(store)] == ["STOPPED"] * 2


@pytest.mark.slow
@QUEUE_BACKENDS
async def test_a_killed_child_is_restarted_and_nothing_is_lost(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    await store.queue("jobs")
    ids = await pgqrs.produce_batch(store, "jobs", ["hold", *range(40)])
    admin = pgqrs.admin(store)
    async with supervisor(
        target, tmp_path, HANDLER, "-q", "jobs", "--processes", "2", "--lease", "1"
    ) as running:
        held_by, held = (int(n) for n in (await file_appears(tmp_path / "held")).split())
        assert held == ids[0]
        os.kill(held_by, signal.SIGKILL)
        replacement = (await running.children(3))[2]

        async def replaced() -> bool:  # the killed child's worker stays as it was left
            workers = await registered(store)
            polls = [w for w in workers if w.status == pgqrs.WorkerStatus.Polling]
            return len(polls) == 3

        await eventually(replaced, within=20)

        async def drained() -> bool:
            return (await admin.queue_metrics("jobs")).archived_messages == len(ids)

        await eventually(drained, within=30)  # the held message too, once its lease ran out
        running.process.send_signal(signal.SIGTERM)
        assert await running.ended() == 0, running.stderr()

    assert replacement not in running.started()[:2]
    assert f"(pid {held_by}) died: killed by SIGKILL; restarting it in" in running.stderr()
    done = handled(tmp_path)
    assert sorted(mid for _, mid in done) == ids  # nothing lost, nothing handled twice
    assert [pid for pid, mid in done if mid == held] != [held_by]  # another process's
    assert await nothing_in_flight(store, ids) == set(ids)
    statuses = sorted(str(w.status) for w in await registered(store))
    assert statuses == ["POLLING", "STOPPED", "STOPPED"]  # a SIGKILL stops nothing


@pytest.mark.slow
@QUEUE_BACKENDS
async def test_sigterm_lets_every_child_finish_its_messages(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    await store.queue("jobs")
    ids = await pgqrs.produce_batch(store, "jobs", list(range(200)))
    async with supervisor(
        target,
        tmp_path,
        HANDLER,
        "-q",
        "jobs",
        "--processes",
        "2",
        "-c",
        "2",
        PGQRS_TEST_PROCESSES="2",
        PGQRS_TEST_DELAY="0.05",
    ) as running:

        async def some_handled() -> bool:
            return len(handled(tmp_path)) >= 4

        await eventually(some_handled, within=30)
        running.process.send_signal(signal.SIGTERM)
        assert await running.ended() == 0, running.stderr()

    children = running.started()
    assert len(children) == 2
    for pid in children:
        assert re.search(rf"child \d \(pid {pid}\) exited: exit status 0", running.stderr())
    archived = await nothing_in_flight(store, ids)
    done = handled(tmp_path)
    assert sorted(mid for _, mid in done) == sorted(archived)  # what was started was finished
    assert len(archived) < len(ids)  # the rest stays pending for the next worker
    assert [str(w.status) for w in await registered(store)] == ["STOPPED"] * 4


@pytest.mark.slow
@QUEUE_BACKENDS
async def test_a_child_still_busy_after_the_timeout_is_killed(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    await store.queue("jobs")
    held = await pgqrs.produce(store, "jobs", "hold")
    async with supervisor(
        target, tmp_path, HANDLER, "-q", "jobs", "--processes", "2", "--shutdown-timeout", "0.5"
    ) as running:
        held_by = int((await file_appears(tmp_path / "held")).split()[0])
        running.process.send_signal(signal.SIGTERM)
        assert await running.ended() == 0, running.stderr()

    assert f"(pid {held_by}): SIGKILL (still running 0.5 s after SIGTERM)" in running.stderr()
    assert f"(pid {held_by}) exited: killed by SIGKILL" in running.stderr()
    message = await (await store.get_messages()).get(held)
    assert message.archived_at is None  # back once its lease runs out
    assert handled(tmp_path) == []


@pytest.mark.slow
@pytest.mark.backends("sqlite")  # the children never reach the database
async def test_children_that_cannot_start_make_the_supervisor_give_up(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    await store.queue("jobs")
    started = time.monotonic()
    async with supervisor(
        target, tmp_path, "tests.cli.no_such_module:handle", "-q", "jobs", "--processes", "2"
    ) as running:
        assert await running.ended(within=60) == 1

    assert time.monotonic() - started < 60  # 6 interpreters started, 5 died, 0.05 s back-offs
    assert running.err[-1] == (
        "Error: child processes died 5 times within 60 s (last: child "
        + running.err[-1].split("(last: child ", 1)[1]
    )
    assert running.err[-1].endswith(", exit status 1); giving up")
    assert "cannot import 'tests.cli.no_such_module'" in running.stderr()
    assert not any(alive(pid) for pid in running.started())


@pytest.mark.slow
@QUEUE_BACKENDS
async def test_children_stop_when_the_supervisor_is_killed(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    await store.queue("jobs")
    async with supervisor(target, tmp_path, HANDLER, "-q", "jobs", "--processes", "2") as running:
        children = await running.children(2)

        async def polling() -> bool:
            workers = await registered(store)
            return len(workers) == 2 and all(
                w.status == pgqrs.WorkerStatus.Polling for w in workers
            )

        await eventually(polling, within=20)
        running.process.kill()
        # The children hold the pipes too: they are closed once every child has exited.
        assert await running.ended(within=20) == -signal.SIGKILL

    assert not any(alive(pid) for pid in children)
    assert "the supervisor is gone: stopping" in running.stderr()
    assert [str(w.status) for w in await registered(store)] == ["STOPPED"] * 2
