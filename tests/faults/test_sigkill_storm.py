"""SIGKILL storms: consumer and workflow worker processes killed at random while they work.

A killer SIGKILLs a random busy process every few hundred milliseconds (seeded: the seed is
printed and reported; set PGQRS_FAULT_SEED to replay a schedule) and starts a replacement at
once; then the fleet finishes the work. The children (tests/support/sigkill_child.py) log every
handling start and end with their pid and times, and the parent knows when it killed whom, so
afterwards every double handling can be explained, or is a failure:

* drain: no message is lost (all archived, each after a handling that finished); a message is
  handled again only after its first handler was killed, or once the first claim's lease ran
  out; a killed consumer's messages come back within the lease plus the poll and sweep slack,
  and never before the lease they were claimed with has ended;
* workflows: every run ends SUCCESS with the right output, and a step body runs again only when
  its earlier execution was killed before the step's result was saved.

SQLite and PostgreSQL only: the S3 backend allows a single writer (a second process writing is
refused by design) and Turso one process at a time, so a fleet of processes does not apply.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

import pgqrs
from tests.support.fault_report import report
from tests.support.sigkill_child import WORKFLOW
from tests.support.target import Target
from tests.support.waiting import eventually

# Children race a 2 s lease under a deadline: run apart from the parallel suite.
pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.backends("sqlite", "postgres")]

ROOT = Path(__file__).resolve().parents[2]
LEASE = 2.0  # seconds each claim leases for; the children heartbeat every second
# The poll loops' sweep stops workers silent for 3 heartbeats (3 s here): a lease longer than
# that lets the sweep find a killed consumer while its lease still runs (it must wait for it).
LONG_LEASE = 5.0
SLACK = 3.0  # poll interval, a busy consumer finishing its batch, a loaded 2-core machine
CLOCK_TOLERANCE = 0.05  # seconds: wall times of different processes on the same host
PAUSE = (0.15, 0.5)  # seconds between two kills (the fault schedule, seeded)


def storm_seed() -> int:
    seed = int(os.environ.get("PGQRS_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nSIGKILL storm seed: {seed} (PGQRS_FAULT_SEED={seed} replays it)")
    return seed


def wall_of(text: str | None) -> float:
    assert text is not None
    return datetime.fromisoformat(text).timestamp()


# -- the fleet ----------------------------------------------------------------------------------


@dataclass
class Child:
    process: subprocess.Popen[bytes]
    log: Path
    err: Path
    killed_mono: float | None = None  # when the parent saw it dead (after its SIGKILL)

    @property
    def pid(self) -> int:
        return self.process.pid

    def events(self) -> list[dict[str, Any]]:
        text = self.log.read_text() if self.log.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    def logged(self, event: str) -> bool:
        return self.log.exists() and f'"ev":"{event}"' in self.log.read_text()


@dataclass
class Fleet:
    """Child processes of one mode, each with its own log and stderr file."""

    target: Target
    directory: Path
    argv: Callable[[Path], list[str]]  # the child's arguments, given its log file
    children: list[Child] = field(default_factory=list)

    def spawn(self) -> Child:
        n = len(self.children)
        log, err = self.directory / f"child-{n}.jsonl", self.directory / f"child-{n}.err"
        with err.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.sigkill_child", *self.argv(log)],
                cwd=ROOT,
                env={**os.environ, **self.target.env()},
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        child = Child(process, log, err)
        self.children.append(child)
        return child

    def alive(self) -> list[Child]:
        return [c for c in self.children if c.killed_mono is None and c.process.poll() is None]

    async def kill(self, child: Child) -> None:
        child.process.send_signal(signal.SIGKILL)
        code = await asyncio.to_thread(child.process.wait, 10)
        # Dead by now: whatever it logged started before this, and nobody may take over its
        # work earlier (its lease, or the sweep after its heartbeats stop, comes later).
        child.killed_mono = time.monotonic()
        assert code == -signal.SIGKILL, f"child {child.pid} exited {code} before the kill"

    async def storm(self, rng: random.Random, kills: int) -> None:
        """`kills` times: wait a random pause, SIGKILL a random child (one that has begun
        working if there is one, else one that is polling), start a replacement.

        A kill waits until at least two children are polling, so one always survives it: how
        soon a killed process's work comes back then measures the library (lease, sweep, poll
        interval), not how long a replacement takes to start on a loaded machine."""

        async def polling() -> list[Child]:
            ready = [c for c in self.alive() if c.logged("ready")]
            return ready if len(ready) >= 2 else []

        for _ in range(kills):
            await asyncio.sleep(rng.uniform(*PAUSE))  # the fault schedule, not synchronisation
            candidates: list[Child] = await eventually(polling, within=20)
            working = [c for c in candidates if c.logged("start")]
            victim = rng.choice(working or candidates)
            await self.kill(victim)
            self.spawn()

    async def stop(self) -> None:
        """SIGTERM interrupts each survivor's consumer; each must exit 0 on its own."""
        survivors = self.alive()

        async def ready() -> bool:  # SIGTERM is handled once the child has logged `ready`
            return all(c.logged("ready") for c in survivors)

        await eventually(ready, within=20)
        for child in survivors:
            child.process.send_signal(signal.SIGTERM)
        for child in survivors:
            code = await asyncio.to_thread(child.process.wait, 20)
            assert code == 0, f"child {child.pid} exited {code}:\n{child.err.read_text()}"

    def cleanup(self) -> None:
        for child in self.children:
            if child.process.poll() is None:
                child.process.kill()
                child.process.wait()

    def kill_times(self) -> dict[int, float]:
        return {c.pid: c.killed_mono for c in self.children if c.killed_mono is not None}

    def events(self) -> list[dict[str, Any]]:
        return [event for child in self.children for event in child.events()]

    def diagnostics(self) -> str:
        return "\n".join(f"--- child {c.pid}:\n{c.err.read_text()}" for c in self.children)


# -- a. queue drain ---------------------------------------------------------------------------

MESSAGES = 1000
CONSUMERS = 3
BATCH = 5
WORK_MS = 8  # simulated work per message
DRAIN_KILLS = 8


@dataclass
class Handling:
    pid: int
    start_mono: float
    start_wall: float
    lease_end_wall: float  # the `vt` the message was claimed with
    end_mono: float | None = None


def handlings_of(events: list[dict[str, Any]]) -> dict[int, list[Handling]]:
    """Every handling of each message id, in start order."""
    found: dict[int, list[Handling]] = defaultdict(list)
    open_: dict[tuple[int, int], Handling] = {}
    for event in sorted(events, key=lambda e: (e["mono"], e["ev"] != "start")):
        key = (event["pid"], event.get("id", -1))
        if event["ev"] == "start":
            handling = Handling(event["pid"], event["mono"], event["wall"], wall_of(event["vt"]))
            found[event["id"]].append(handling)
            open_[key] = handling
        elif event["ev"] == "end":
            open_.pop(key).end_mono = event["mono"]
    return found


@dataclass
class DrainVerdict:
    redelivery_seconds: list[float] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)  # handled twice inside a valid lease
    early: list[str] = field(default_factory=list)  # a killed handler's lease had not ended
    lapsed: list[str] = field(default_factory=list)  # a live handler's lease ran out first
    unfinished: list[int] = field(default_factory=list)  # archived, no handling ever finished


def judge_drain(handled: dict[int, list[Handling]], kills: dict[int, float]) -> DrainVerdict:
    verdict = DrainVerdict()
    for mid, seq in handled.items():
        if not any(h.end_mono is not None for h in seq):
            verdict.unfinished.append(mid)
        for first, again in pairwise(seq):
            killed = kills.get(first.pid)
            what = (
                f"message {mid}: handled by pid {first.pid} from {first.start_wall:.3f} (lease "
                f"until {first.lease_end_wall:.3f}, killed at mono {kills.get(first.pid)}), "
                f"again by pid {again.pid} from {again.start_wall:.3f}"
            )
            if killed is not None and killed <= again.start_mono:
                verdict.redelivery_seconds.append(again.start_mono - killed)
                if again.start_wall < first.lease_end_wall - CLOCK_TOLERANCE:
                    verdict.early.append(what)
                continue
            in_flight = first.end_mono is None or first.end_mono > again.start_mono
            if in_flight or again.start_wall < first.lease_end_wall - CLOCK_TOLERANCE:
                verdict.duplicated.append(what)
            else:
                verdict.lapsed.append(what)
    return verdict


def kills_mid_handling(kills: dict[int, float], handled: dict[int, list[Handling]]) -> int:
    """Kills that landed while the victim had a handling started and not finished."""
    busy = {
        h.pid
        for seq in handled.values()
        for h in seq
        if h.pid in kills and (h.end_mono is None or h.end_mono > kills[h.pid])
    }
    return len(busy)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("lease", [LEASE, LONG_LEASE], ids=["lease2s", "lease5s"])
async def test_a_killed_consumer_fleet_drains_the_queue_without_loss_or_duplicates(
    store: pgqrs.Store, target: Target, tmp_path: Path, lease: float
) -> None:
    seed = storm_seed()
    rng = random.Random(seed)
    queue = await store.queue("storm")
    producer = await store.producer("storm")
    ids: list[int] = []
    for first in range(0, MESSAGES, 250):
        ids += await producer.enqueue_batch([{"n": n} for n in range(first, first + 250)])

    def argv(log: Path) -> list[str]:
        return ["drain", "storm", str(log), str(lease), str(BATCH), str(WORK_MS)]

    fleet = Fleet(target, tmp_path, argv)
    started = time.monotonic()
    try:
        for _ in range(CONSUMERS):
            fleet.spawn()
        await fleet.storm(rng, DRAIN_KILLS)
        stormed = time.monotonic()
        messages = await store.get_messages()

        async def drained() -> bool:
            return await messages.count() == 0

        await eventually(drained, within=45, interval=0.1)
        drain_seconds = time.monotonic() - started
        await fleet.stop()
    except BaseException:
        print(fleet.diagnostics())
        raise
    finally:
        fleet.cleanup()

    archived = {m.id for m in await messages.list_archived_by_queue(queue.id)}
    handled = handlings_of(fleet.events())
    kills = fleet.kill_times()
    verdict = judge_drain(handled, kills)
    mid_handling = kills_mid_handling(kills, handled)
    lost = sorted(set(ids) - archived)
    max_redelivery = max(verdict.redelivery_seconds, default=0.0)
    report(
        f"sigkill storm drain[{target.backend}, lease {lease:g}s]",
        seed=seed,
        messages=len(ids),
        consumers=CONSUMERS,
        kills=len(kills),
        kills_mid_handling=mid_handling,
        lost=len(lost),
        duplicated=len(verdict.duplicated),
        redelivered=len(verdict.redelivery_seconds),
        redelivered_before_lease_end=len(verdict.early),
        lease_lapsed=len(verdict.lapsed),
        min_redelivery_seconds=min(verdict.redelivery_seconds, default=0.0),
        max_redelivery_seconds=max_redelivery,
        storm_seconds=stormed - started,
        drain_seconds=drain_seconds,
    )
    assert mid_handling > 0, "no kill landed while a consumer was handling messages"
    assert not lost, f"lost messages: {lost[:20]}"
    assert not verdict.unfinished, f"archived but never handled to the end: {verdict.unfinished}"
    assert set(handled) == set(ids), "a handled id that was never enqueued, or one never handled"
    assert not verdict.duplicated, "handled twice inside a valid lease:\n" + "\n".join(
        verdict.duplicated[:20]
    )
    assert not verdict.early, "a killed consumer's message came back before its lease ended:\n" + (
        "\n".join(verdict.early[:20])
    )
    assert max_redelivery <= lease + SLACK, f"redelivery took {max_redelivery:.3f}s"


# -- b. workflows -------------------------------------------------------------------------------

RUNS = 60
WORKERS = 3
STEP_MS = 40  # simulated work inside each step body
WORKFLOW_KILLS = 6
STEPS = ("one", "two", "three")


@dataclass
class Execution:
    pid: int
    start_mono: float
    start_wall: float
    end_mono: float | None = None


def executions_of(events: list[dict[str, Any]]) -> dict[tuple[int, str], list[Execution]]:
    """Every execution of each (run id, step name), in start order."""
    found: dict[tuple[int, str], list[Execution]] = defaultdict(list)
    open_: dict[tuple[int, int, str], Execution] = {}
    for event in sorted(events, key=lambda e: (e["mono"], e["ev"] != "start")):
        if event["ev"] not in ("start", "end"):
            continue
        key = (event["pid"], event["run"], event["step"])
        if event["ev"] == "start":
            execution = Execution(event["pid"], event["mono"], event["wall"])
            found[(event["run"], event["step"])].append(execution)
            open_[key] = execution
        else:
            open_.pop(key).end_mono = event["mono"]
    return found


@dataclass
class WorkflowVerdict:
    reexecuted: int = 0  # executions after a killed one (allowed)
    resume_seconds: list[float] = field(default_factory=list)  # kill to the next execution
    concurrent: list[str] = field(default_factory=list)  # ran again while the first was alive
    after_saved: list[str] = field(default_factory=list)  # ran again after the result was saved
    unfinished: list[str] = field(default_factory=list)  # no execution finished


def judge_workflows(
    executed: dict[tuple[int, str], list[Execution]],
    kills: dict[int, float],
    saved_wall: dict[tuple[int, str], float],
) -> WorkflowVerdict:
    verdict = WorkflowVerdict()
    for (run_id, name), seq in sorted(executed.items()):
        what = f"run {run_id} step {name}: " + ", ".join(
            f"pid {e.pid} {e.start_mono:.3f}-{e.end_mono}" for e in seq
        )
        if seq[-1].end_mono is None:
            verdict.unfinished.append(what)
        # The result was saved before the database's completed_at, and before the process that
        # ran the body started the run's next step (the same process: no clock involved).
        saved_by_process = [
            nxt.start_mono
            for e in seq
            if e.end_mono is not None
            for nxt in executed.get((run_id, _next_step(name)), [])
            if nxt.pid == e.pid and nxt.start_mono > e.end_mono
        ]
        saved_mono = min(saved_by_process, default=float("inf"))
        if any(
            e.start_mono > saved_mono or e.start_wall > saved_wall[(run_id, name)] + CLOCK_TOLERANCE
            for e in seq
        ):
            verdict.after_saved.append(what)
        for first, again in pairwise(seq):
            killed = kills.get(first.pid)
            if killed is None or not first.start_mono <= killed <= again.start_mono:
                verdict.concurrent.append(what)
                continue
            verdict.reexecuted += 1
            verdict.resume_seconds.append(again.start_mono - killed)
    return verdict


def _next_step(name: str) -> str:
    index = STEPS.index(name)
    return STEPS[index + 1] if index + 1 < len(STEPS) else ""


@pytest.mark.timeout(90)
async def test_killed_workflow_workers_never_rerun_a_saved_step(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    seed = storm_seed()
    rng = random.Random(seed)
    admin = pgqrs.admin(store)
    runs = [await admin.create_workflow(WORKFLOW, n) for n in range(RUNS)]

    def argv(log: Path) -> list[str]:
        return ["workflow", str(log), str(LEASE), str(STEP_MS)]

    fleet = Fleet(target, tmp_path, argv)
    started = time.monotonic()
    handle = await store.get_workflow_runs()
    ours = {run.id() for run in runs}
    try:
        for _ in range(WORKERS):
            fleet.spawn()
        await fleet.storm(rng, WORKFLOW_KILLS)
        stormed = time.monotonic()

        async def all_succeeded() -> bool:
            records = [r for r in await handle.list() if r.id in ours]
            return all(r.status == pgqrs.WorkflowStatus.Success for r in records)

        await eventually(all_succeeded, within=45, interval=0.1)
        finish_seconds = time.monotonic() - started
        await fleet.stop()
    except BaseException:
        print(fleet.diagnostics())
        raise
    finally:
        fleet.cleanup()

    records = {r.id: r for r in await handle.list() if r.id in ours}
    step_rows = [s for s in await (await store.get_workflow_steps()).list() if s.run_id in ours]
    saved_wall = {(s.run_id, s.step_name): wall_of(s.completed_at) for s in step_rows}
    executed = executions_of(fleet.events())
    kills = fleet.kill_times()
    verdict = judge_workflows(executed, kills, saved_wall)
    mid_step = {
        e.pid
        for seq in executed.values()
        for e in seq
        if e.pid in kills and (e.end_mono is None or e.end_mono > kills[e.pid])
    }
    wrong_output = [
        (run.id(), records[run.id()].output)
        for n, run in enumerate(runs)
        if records[run.id()].output != n + 6
    ]
    max_resume = max(verdict.resume_seconds, default=0.0)
    report(
        f"sigkill storm workflows[{target.backend}]",
        seed=seed,
        runs=RUNS,
        workers=WORKERS,
        kills=len(kills),
        kills_mid_step=len(mid_step),
        steps_reexecuted_after_kill=verdict.reexecuted,
        reran_after_saved=len(verdict.after_saved),
        ran_concurrently=len(verdict.concurrent),
        max_resume_seconds=max_resume,
        storm_seconds=stormed - started,
        seconds=finish_seconds,
    )
    assert mid_step, "no kill landed while a worker was running a step"
    assert all(r.status == pgqrs.WorkflowStatus.Success for r in records.values())
    assert not wrong_output, f"runs with a wrong output: {wrong_output}"
    assert {(s.run_id, s.step_name, s.status) for s in step_rows} == {
        (rid, name, pgqrs.WorkflowStatus.Success) for rid in ours for name in STEPS
    }
    assert set(executed) == {(rid, name) for rid in ours for name in STEPS}
    assert not verdict.unfinished, "\n".join(verdict.unfinished)
    assert not verdict.after_saved, "a step body ran after its result was saved:\n" + "\n".join(
        verdict.after_saved
    )
    assert not verdict.concurrent, "a step body ran again while its first run was alive:\n" + (
        "\n".join(verdict.concurrent)
    )
    assert max_resume <= LEASE + SLACK, f"a killed worker's run resumed after {max_resume:.3f}s"
