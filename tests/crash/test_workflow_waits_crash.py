"""Runs that wait survive a SIGKILL of their worker process (semantics.md §18, issue 14).

Real worker processes (tests/support/waits_child.py) are killed with SIGKILL while a run waits
for a signal, right after it consumed one, while its children run, and in the middle of a
fan-out; a fresh worker then finishes each run. No signal is lost or consumed twice, no child
is started twice, and no finished step runs again.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest

import pgqrs
from tests.support.fault_report import report
from tests.support.raw_db import RawDb
from tests.support.target import Target
from tests.support.workflows import effects, message_of, stop_worker, wait_for_exit, wait_until

pytestmark = pytest.mark.slow

LEASE = 1.0  # the fresh worker takes over what the dead one held once its lease has lapsed
WAIT = 20.0  # the longest any condition below may take to come true
RECV_GO = "__pgqrs_recv__:go#1"
ROOT = Path(__file__).resolve().parents[2]


class Workers:
    """Worker processes of one test (tests/support/waits_child.py); any left are killed."""

    def __init__(self, target: Target, directory: Path) -> None:
        self.env = {
            **os.environ,
            **target.env(),
            "PGQRS_CHILD_DIR": str(directory),
            "PGQRS_CHILD_LEASE": str(LEASE),
        }
        self.started: list[Popen[bytes]] = []

    def spawn(self, scenario: str) -> Popen[bytes]:
        args = [sys.executable, "-m", "tests.support.waits_child", scenario]
        process = Popen(args, cwd=ROOT, env=self.env)
        self.started.append(process)
        return process

    async def until(
        self, process: Popen[bytes], check: Callable[[], Awaitable[bool]], what: str
    ) -> None:
        """`wait_until`, failing at once if the worker process has exited."""

        async def alive_and_done() -> bool:
            code = process.poll()
            assert code is None, f"the worker exited ({code}) before {what}"
            return await check()

        await wait_until(alive_and_done, WAIT, what)

    async def sigkill(self, process: Popen[bytes]) -> None:
        process.kill()
        assert await wait_for_exit(process, WAIT) == -signal.SIGKILL

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(target: Target, tmp_path: Path) -> Iterator[Workers]:
    found = Workers(target, tmp_path)
    yield found
    found.kill_all()


# -- reading the outcome ------------------------------------------------------------------------


async def steps_of(store: pgqrs.Store, run_id: int) -> dict[str, pgqrs.StepRecord]:
    rows = await (await store.get_workflow_steps()).list_by_run(run_id)
    named = {r.step_name: r for r in rows}
    assert len(named) == len(rows), f"a step recorded twice: {[r.step_name for r in rows]}"
    return named


async def children_of(store: pgqrs.Store, run_id: int) -> list[pgqrs.RunRecord]:
    return [r for r in await (await store.get_workflow_runs()).list() if r.parent_run_id == run_id]


def n_of(child: pgqrs.RunRecord) -> int:
    """A child run's input (a run stores its trigger's payload, `{"input": n}`)."""
    return int(child.input["input"])


def signal_rows(target: Target, run_id: int) -> list[tuple[int, str, Any, str | None]]:
    """(id, topic, consumed_at, consumed_by) of the run's signals, by id, read from the table."""
    rows = RawDb(target).query(
        "SELECT id, topic, consumed_at, consumed_by FROM {s}pgqrs_workflow_signals "
        "WHERE run_id = ? ORDER BY id",
        [run_id],
    )
    return [(int(i), str(t), at, by) for i, t, at, by in rows]


def instant(value: Any) -> datetime:
    """A timestamp as read from either backend (a datetime from PostgreSQL, text from SQLite)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def waits_for_signal(
    store: pgqrs.Store, run: pgqrs.Run, given_back_after: datetime | None = None
) -> bool:
    """The run waits in its receive: the step is open and the message given back for later
    (later than `given_back_after`: given back again since)."""
    recv = (await steps_of(store, run.id())).get(RECV_GO)
    if recv is None or recv.status != pgqrs.WorkflowStatus.Running:
        return False
    message = await message_of(store, run)
    later = given_back_after or datetime.now(UTC) + timedelta(seconds=60)
    return message.consumer_worker_id is None and instant(message.vt) > later


async def workflows(store: pgqrs.Store, *names: str) -> None:
    for name in names:
        await pgqrs.workflow().name(name).store(store).create()


async def result_of(store: pgqrs.Store, run: pgqrs.Run) -> Any:
    message = await message_of(store, run)
    return await pgqrs.run().message(message).store(store).result(timeout=WAIT)


# -- receives -----------------------------------------------------------------------------------


async def test_recv_survives_sigkill_while_waiting(
    store: pgqrs.Store, target: Target, tmp_path: Path, workers: Workers
) -> None:
    began = time.monotonic()
    run = await pgqrs.admin(store).create_workflow("recv", {"n": 1})
    rid = run.id()
    first = workers.spawn("recv")
    await workers.until(first, lambda: waits_for_signal(store, run), "the run waits for 'go'")
    # A signal of another topic wakes the run; it finds nothing on "go" and waits again.
    first_wait = instant((await message_of(store, run)).vt)
    await pgqrs.send_signal(store, rid, "other", "ignored")
    assert instant((await message_of(store, run)).vt) < first_wait  # woken: visible now

    async def waits_again() -> bool:
        return await waits_for_signal(store, run, given_back_after=first_wait)

    await workers.until(first, waits_again, "the run waits again")
    await workers.sigkill(first)

    assert await run.status() == "RUNNING"
    waiting = await steps_of(store, rid)
    assert {n: s.status for n, s in waiting.items()} == {"a": "SUCCESS", RECV_GO: "RUNNING"}
    go_1 = await pgqrs.send_signal(store, rid, "go", {"ok": 1})
    go_2 = await pgqrs.send_signal(store, rid, "go", {"ok": 2})  # the flow receives only one

    second = workers.spawn("recv")
    try:
        assert await result_of(store, run) == {"got": {"ok": 1}, "n": 2}
    finally:
        assert await stop_worker(second) == 0

    assert effects(tmp_path) == {
        (rid, "a"): 1,
        (rid, "checkpoint start"): 1,
        (rid, "checkpoint done"): 1,
        (rid, "b"): 1,
    }
    finished = await steps_of(store, rid)
    assert list(finished) == ["a", RECV_GO, "checkpoint", "b"]
    recv = finished[RECV_GO]
    assert recv.output["signal"]["id"] == go_1
    [other, consumed, left] = signal_rows(target, rid)
    assert other[1:] == ("other", None, None)
    assert (consumed[0], consumed[3]) == (go_1, RECV_GO)
    assert recv.completed_at is not None
    # Consumed in the transaction that recorded the receive: one moment for both.
    assert instant(consumed[2]) == instant(recv.completed_at)
    assert left == (go_2, "go", None, None)
    report(
        f"recv [{target.backend}] SIGKILL while waiting",
        signals_sent=3,
        consumed=1,
        a_runs=1,
        b_runs=1,
        seconds=time.monotonic() - began,
    )


async def test_recv_survives_sigkill_right_after_the_signal_was_consumed(
    store: pgqrs.Store, target: Target, tmp_path: Path, workers: Workers
) -> None:
    began = time.monotonic()
    run = await pgqrs.admin(store).create_workflow("recv", {"n": 1, "crash": True})
    rid = run.id()
    first = workers.spawn("recv")
    await workers.until(first, lambda: waits_for_signal(store, run), "the run waits for 'go'")
    go_1 = await pgqrs.send_signal(store, rid, "go", {"ok": 1})
    # The signal wakes the run: it is consumed, then `checkpoint` kills the process.
    assert await wait_for_exit(first, WAIT) == -signal.SIGKILL

    crashed = await steps_of(store, rid)
    assert {n: s.status for n, s in crashed.items()} == {
        "a": "SUCCESS",
        RECV_GO: "SUCCESS",
        "checkpoint": "RUNNING",
    }
    assert crashed[RECV_GO].output["signal"]["id"] == go_1
    [consumed] = signal_rows(target, rid)
    assert (consumed[0], consumed[3]) == (go_1, RECV_GO)
    held = await message_of(store, run)
    assert held.consumer_worker_id is not None  # by the dead worker, until its lease lapses
    go_2 = await pgqrs.send_signal(store, rid, "go", {"ok": 2})

    second = workers.spawn("recv")
    try:
        assert await result_of(store, run) == {"got": {"ok": 1}, "n": 2}
    finally:
        assert await stop_worker(second) == 0

    assert effects(tmp_path) == {
        (rid, "a"): 1,
        (rid, "checkpoint start"): 2,
        (rid, "checkpoint done"): 1,
        (rid, "b"): 1,
    }
    finished = await steps_of(store, rid)
    assert list(finished) == ["a", RECV_GO, "checkpoint", "b"]
    assert finished[RECV_GO] == crashed[RECV_GO]  # the recorded receive, untouched
    # The same signal came back from the step; its row is as the first worker left it.
    assert signal_rows(target, rid) == [consumed, (go_2, "go", None, None)]
    report(
        f"recv [{target.backend}] SIGKILL right after consuming",
        signals_sent=2,
        consumed=1,
        checkpoint_starts=2,
        seconds=time.monotonic() - began,
    )


# -- child runs ---------------------------------------------------------------------------------


async def test_child_survives_sigkill_while_children_run(
    store: pgqrs.Store, target: Target, tmp_path: Path, workers: Workers
) -> None:
    began = time.monotonic()
    await workflows(store, "child")
    run = await pgqrs.admin(store).create_workflow("gather", [1, 2, 3])
    rid = run.id()
    first = workers.spawn("gather")

    async def children_run_and_parent_waits() -> bool:
        started = effects(tmp_path)
        kids = await children_of(store, rid)
        if len(kids) != 3 or any(started[(k.id, f"child {n_of(k)} start")] == 0 for k in kids):
            return False
        return (await message_of(store, run)).consumer_worker_id is None

    await workers.until(first, children_run_and_parent_waits, "three children run")
    await workers.sigkill(first)

    running = await children_of(store, rid)
    assert sorted((n_of(k), k.status) for k in running) == [
        (n, pgqrs.WorkflowStatus.Running) for n in (1, 2, 3)
    ]
    (tmp_path / "release").touch()  # the children's work may end now
    second = workers.spawn("gather")
    try:
        assert await result_of(store, run) == [10, 20, 30]
    finally:
        assert await stop_worker(second) == 0

    kids = await children_of(store, rid)
    assert sorted(k.id for k in kids) == sorted(k.id for k in running)  # no child started twice
    assert sorted((n_of(k), k.status, k.output) for k in kids) == [
        (n, pgqrs.WorkflowStatus.Success, n * 10) for n in (1, 2, 3)
    ]
    starts = [f"__pgqrs_child__:child#{i}" for i in (1, 2, 3)]
    assert list(await steps_of(store, rid)) == ["plan", *starts]
    child_queue = await pgqrs.admin(store).queue_metrics("child")
    assert (child_queue.total_messages, child_queue.archived_messages) == (3, 3)
    expected = {(rid, "plan"): 1}
    for k in kids:  # each child was cut off mid-step once, then finished by the new worker
        expected |= {(k.id, f"child {n_of(k)} start"): 2, (k.id, f"child {n_of(k)} done"): 1}
    assert effects(tmp_path) == expected
    report(
        f"child [{target.backend}] SIGKILL while 3 children run",
        child_runs=len(kids),
        child_step_starts=2,
        seconds=time.monotonic() - began,
    )


async def test_fan_out_survives_sigkill_midway(
    store: pgqrs.Store, target: Target, tmp_path: Path, workers: Workers
) -> None:
    began = time.monotonic()
    await workflows(store, "child")
    run = await pgqrs.admin(store).create_workflow("fan_out", 5)
    rid = run.id()
    first = workers.spawn("fan_out")
    # After the second child started, `midway` kills the process.
    assert await wait_for_exit(first, WAIT) == -signal.SIGKILL

    crashed = await steps_of(store, rid)
    assert {n: s.status for n, s in crashed.items()} == {
        "__pgqrs_child__:child#1": "SUCCESS",
        "__pgqrs_child__:child#2": "SUCCESS",
        "midway": "RUNNING",
    }
    assert sorted(n_of(k) for k in await children_of(store, rid)) == [1, 2]
    (tmp_path / "release").touch()  # children ran at most until the kill; now they may end
    second = workers.spawn("fan_out")
    try:
        assert await result_of(store, run) == [10, 20, 30, 40, 50]
    finally:
        assert await stop_worker(second) == 0

    kids = await children_of(store, rid)
    assert sorted((n_of(k), k.status, k.output) for k in kids) == [
        (n, pgqrs.WorkflowStatus.Success, n * 10) for n in range(1, 6)
    ]
    starts = [f"__pgqrs_child__:child#{i}" for i in range(1, 6)]
    assert list(await steps_of(store, rid)) == [*starts[:2], "midway", *starts[2:]]
    child_queue = await pgqrs.admin(store).queue_metrics("child")
    assert (child_queue.total_messages, child_queue.archived_messages) == (5, 5)
    seen = effects(tmp_path)
    assert (seen[(rid, "midway start")], seen[(rid, "midway done")]) == (2, 1)
    # The first worker's child loop may have begun child 1 or 2 before the kill; their step
    # then ran again. Children 3-5 were started after it, by the new worker only.
    began_twice = [n_of(k) for k in kids if seen[(k.id, f"child {n_of(k)} start")] == 2]
    for k in kids:
        assert seen[(k.id, f"child {n_of(k)} done")] == 1
        assert seen[(k.id, f"child {n_of(k)} start")] == (2 if n_of(k) in began_twice else 1)
    assert set(began_twice) <= {1, 2}
    report(
        f"fan_out [{target.backend}] SIGKILL after child 2 of 5",
        child_runs=len(kids),
        midway_starts=2,
        children_begun_twice=len(began_twice),
        seconds=time.monotonic() - began,
    )
