"""The PostgreSQL server restarts (fast and immediate) while producers, consumers and a workflow
worker are busy; the library must ride it out on its own.

Load: two producers in this process enqueue at a steady rate and a third task creates a
workflow run every quarter second; three consumer processes run poll loops (`run_worker`); one
workflow worker process runs a three-step `@workflow`. The private server
(tests/support/pgserver.py) is restarted three times: fast (1.5 s down), then immediate with an
outage longer than three heartbeats (every worker looks stale to its peers when the server
returns), then immediate with an outage longer than the leases (8.5 s).

Afterwards (and only then; every figure is gathered before anything is asserted):

* nothing is lost: every id whose enqueue returned was handled and is archived;
* nothing is handled twice inside a valid lease: a second handling of a message must start after
  the lease the first handling's claim gave (`message.vt`) had ended;
* every consumer process recovers by itself: each handles messages after every restart, and none
  exits until the test stops it (SIGTERM, exit 0);
* producers see `PgqrsConnectionError`s with a readable message while the server is down, and
  none once it has been back for GRACE seconds;
* every workflow run ends SUCCESS, and no step body starts again after its result was saved;
* no child prints a traceback or "Task exception was never retrieved".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import pgqrs
from tests.support.fault_report import report
from tests.support.pgserver import PgServer, StopMode
from tests.support.target import Target
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "load"
FLOW = "faultflow"
CONSUMERS = 3
PRODUCERS = 2
RATE = 20.0  # messages per second, per producer
RUN_EVERY = 0.25  # seconds between two workflow runs
LEASE = 5.0  # the consumers' lease
WF_LEASE = 4.0  # the workflow worker's lease
# The children's connection_timeout_seconds: a poll loop gives up after failing this long in a
# row (semantics.md §10.1), so after the 8.5 s outage it must work again within about 4 s.
CHILD_CONNECT_TIMEOUT = 13
PRODUCER_CONNECT_TIMEOUT = 2  # an enqueue during the outage fails within this
# (mode, seconds the server stays down). Heartbeats are 1 s apart, so after the 4 s outage every
# worker's heartbeat is older than the 3 s after which a peer's poll loop may sweep it. The
# 8.5 s outage outlasts the leases, and a reconnect delay that keeps doubling (1, 2, 4, 8 s)
# would leave the loops failing past CHILD_CONNECT_TIMEOUT although the server is back.
RESTARTS: tuple[tuple[StopMode, float], ...] = (
    ("fast", 1.5),
    ("immediate", 4.0),
    ("immediate", 8.5),
)
GRACE = 2.0  # once the server has been back this long, producers must not fail any more
RECOVERY_WITHIN = 12.0
AFTER_LAST = 3.0  # seconds of load after GRACE following the last restart
DRAIN_WITHIN = 25.0


@dataclass
class Attempt:
    who: str
    started: float
    ended: float
    error: BaseException | None = None


@dataclass
class Outage:
    mode: str
    down_at: float
    up_at: float = 0.0
    recovery: float | None = None  # until everyone that recovered did work again
    missing: tuple[str, ...] = ()  # who did no work within RECOVERY_WITHIN


@dataclass
class Child:
    role: str
    process: subprocess.Popen[bytes]
    log: Path
    directory: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def exit_text(self) -> str:
        path = self.directory / f"exit-{self.pid}"
        return path.read_text() if path.exists() else ""

    def records(self, prefix: str) -> list[dict[str, Any]]:
        return read_jsonl(self.directory / f"{prefix}-{self.pid}.jsonl")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line being written right now
            out.append(json.loads(line))
    return out


def spawn(role: str, args: Sequence[str], env: dict[str, str], directory: Path) -> Child:
    log = directory / f"{role}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", "tests.support.restart_child", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Child(role, process, log, directory)


async def until(check: Callable[[], bool], within: float) -> bool:
    """Whether `check()` came true within `within` seconds (a deadline, never a bare sleep)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def pace(next_at: float, stop: asyncio.Event) -> None:
    """Hold a producer's rate: wait until `next_at` (monotonic) unless told to stop."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, next_at - time.monotonic())):
            await stop.wait()


class Load:
    """Producers and the creator of workflow runs, in this process, at a steady rate."""

    def __init__(self, store: pgqrs.Store) -> None:
        self.store = store
        self.attempts: list[Attempt] = []
        self.ids: list[int] = []
        self.stop = asyncio.Event()

    async def produce(self, who: str, producer: pgqrs.Producer) -> None:
        await self._steady(who, 1 / RATE, lambda n: self._enqueue(producer, n))

    async def create_runs(self) -> None:
        await self._steady("runs", RUN_EVERY, self._create_run)

    async def _enqueue(self, producer: pgqrs.Producer, n: int) -> None:
        self.ids.append(await producer.enqueue({"n": n}))

    async def _create_run(self, n: int) -> None:
        await pgqrs.admin(self.store).create_workflow(FLOW, {"n": n})

    async def _steady(self, who: str, period: float, call: Callable[[int], Any]) -> None:
        next_at = time.monotonic()
        n = 0
        while not self.stop.is_set():
            started = time.time()
            try:
                await call(n)
            except Exception as err:  # every failure is kept and judged afterwards
                self.attempts.append(Attempt(who, started, time.time(), err))
            else:
                self.attempts.append(Attempt(who, started, time.time()))
            n += 1
            next_at = max(next_at + period, time.monotonic())  # no burst to catch up
            await pace(next_at, self.stop)

    def met(self, producers: list[str], down_at: float, down_for: float) -> bool:
        """The outage has lasted `down_for` seconds and every producer has met it."""
        return time.time() >= down_at + down_for and all(
            self.failed_since(who, down_at) for who in producers
        )

    def failed_since(self, who: str, moment: float) -> bool:
        return any(
            a.who == who and a.error is not None and a.ended >= moment for a in self.attempts
        )

    def first_success_after(self, who: str, moment: float) -> float | None:
        times = [
            a.ended for a in self.attempts if a.who == who and not a.error and a.started >= moment
        ]
        return min(times) if times else None


def first_start_after(records: list[dict[str, Any]], moment: float) -> float | None:
    times = [r["start"] for r in records if r["start"] >= moment]
    return min(times) if times else None


LOG_RECORD = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \d+ [A-Z]+ (?P<what>.*)$")


def logged_tracebacks(text: str) -> Counter[str]:
    """The log records (logger and message, numbers blanked) that came with a traceback."""
    found: Counter[str] = Counter()
    record: str | None = None
    for line in text.splitlines():
        match = LOG_RECORD.match(line)
        if match:
            record = re.sub(r"\d+", "N", match["what"])
        elif line.startswith("Traceback (most recent call last)") and record is not None:
            found[record] += 1
            record = None  # chained exceptions print more "Traceback" lines: count one
    return found


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


# About 25 s; the margin is for the bounded waits a broken library runs into (each ends with a
# finding instead of a timeout, so the figures are still reported).
@pytest.mark.timeout(120)
@pytest.mark.serial  # recovery deadlines, measured: not beside another worker's load
async def test_restarts_under_load_lose_nothing_and_heal_by_themselves(
    private_pg: PgServer, private_target: Target, tmp_path: Path
) -> None:
    began = time.monotonic()
    problems: list[str] = []
    store = await private_target.connect(connection_timeout_seconds=PRODUCER_CONNECT_TIMEOUT)
    await pgqrs.admin(store).install()
    await store.queue(QUEUE)
    await pgqrs.admin(store).create_workflow(FLOW, {"n": -1})  # makes the workflow's queue
    load = Load(store)
    env = {**private_target.env(), "PGQRS_CHILD_CONNECT_TIMEOUT": str(CHILD_CONNECT_TIMEOUT)}
    consumers = [
        spawn(f"consumer-{n}", ["consumer", QUEUE, str(tmp_path), str(LEASE)], env, tmp_path)
        for n in range(1, CONSUMERS + 1)
    ]
    flow = spawn("workflow", ["workflow", FLOW, str(tmp_path), str(WF_LEASE)], env, tmp_path)
    children = [*consumers, flow]
    outages: list[Outage] = []
    tasks: list[asyncio.Task[None]] = []
    producers = [f"producer-{n}" for n in range(1, PRODUCERS + 1)]
    try:

        async def all_ready() -> bool:
            for child in children:
                if child.process.poll() is not None:
                    raise AssertionError(f"{child.role} exited early:\n{child.log_text()}")
            return all((tmp_path / f"ready-{c.pid}").exists() for c in children)

        await eventually(all_ready, within=30)
        for who in producers:
            tasks.append(asyncio.create_task(load.produce(who, await store.producer(QUEUE))))
        tasks.append(asyncio.create_task(load.create_runs()))

        def busy_since(moment: float, handled: int) -> bool:
            """Every consumer handled `handled` messages, and a step started, since `moment`."""
            return all(
                child.process.poll() is not None
                or sum(r["start"] >= moment for r in child.records("handled")) >= handled
                for child in consumers
            ) and (
                flow.process.poll() is not None
                or first_start_after(flow.records("steps"), moment) is not None
            )

        def steady(since: float) -> bool:
            return time.time() >= since + GRACE + 1 and busy_since(since, 3)

        since = time.time() - GRACE - 1
        for mode, down_for in RESTARTS:
            # Steady load first: every worker busy, and GRACE + 1 s since the last restart in
            # which the producers must not fail.
            if not await until(partial(steady, since), 15):
                problems.append(f"before the {mode} restart, not every worker was busy")
            outage = Outage(mode, time.time())
            outages.append(outage)
            await asyncio.to_thread(private_pg.stop, mode)
            # Down for `down_for` seconds, and at least until every producer has met the outage.
            met = await until(
                partial(load.met, producers, outage.down_at, down_for),
                down_for + 3 * PRODUCER_CONNECT_TIMEOUT,
            )
            if not met:
                problems.append(f"{mode} outage: a producer never got an error while down")
            await asyncio.to_thread(private_pg.start)
            outage.up_at = time.time()
            await recovered(outage, load, producers, consumers, flow, problems)
            since = outage.up_at

        last = outages[-1]
        steady_from = last.up_at + GRACE
        if not await until(
            lambda: time.time() >= steady_from + AFTER_LAST and busy_since(steady_from, 1), 15
        ):
            problems.append("after the last restart, the workers did not all keep working")
        load.stop.set()
        await asyncio.gather(*tasks)

        observer = await private_target.connect()  # a fresh pool, whatever became of the others
        try:

            async def drained() -> bool:
                try:
                    left = await (await observer.get_messages()).count()
                    runs = await (await observer.get_workflow_runs()).list()
                except pgqrs.PgqrsConnectionError:
                    return False
                return left == 0 and all(r.status.is_terminal for r in runs)

            try:
                await eventually(drained, within=DRAIN_WITHIN, interval=0.2)
            except AssertionError:
                left = await (await observer.get_messages()).count()
                problems.append(f"not drained within {DRAIN_WITHIN}s: {left} message(s) unarchived")

            exited = [c for c in children if c.process.poll() is not None]
            sweeps = [
                line
                for c in children
                for line in c.log_text().splitlines()
                if "stale worker" in line
            ]
            if exited and sweeps:
                problems.append("stale-worker sweeps of the poll loops:\n" + "\n".join(sweeps))
            for child in exited:
                problems.append(
                    f"{child.role} (pid {child.pid}) exited by itself with "
                    f"{child.process.returncode}: {child.exit_text().splitlines()[:1]}\n"
                    f"{tail(child.log_text(), 8)}"
                )
            for child in children:
                if child.process.poll() is None:
                    child.process.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    code = await asyncio.to_thread(child.process.wait, 20)
                except subprocess.TimeoutExpired:
                    problems.append(f"{child.role} did not stop within 20 s of SIGTERM")
                    continue
                if child not in exited and (code != 0 or child.exit_text() != "stopped"):
                    problems.append(
                        f"{child.role} ended with {code} after SIGTERM: {child.exit_text()}"
                    )

            figures = await judge(observer, load, consumers, flow, outages, problems)
        finally:
            await observer.close()
    finally:
        load.stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for child in children:
            if child.process.poll() is None:
                child.process.kill()
            child.process.wait()
        await store.close()

    report("pg restart", **figures, seconds=time.monotonic() - began)
    assert not problems, "\n\n".join(problems)


async def recovered(
    outage: Outage,
    load: Load,
    producers: list[str],
    consumers: list[Child],
    flow: Child,
    problems: list[str],
) -> None:
    """Seconds from the server's return until every producer, consumer and the workflow worker
    did work again (`outage.recovery`); the laggards after RECOVERY_WITHIN in `problems`."""
    up = outage.up_at

    def firsts() -> dict[str, float | None]:
        found: dict[str, float | None] = {
            who: load.first_success_after(who, up) for who in producers
        }
        for child in consumers:
            found[child.role] = first_start_after(child.records("handled"), up)
        found[flow.role] = first_start_after(flow.records("steps"), up)
        return found

    def done() -> bool:
        found = firsts()
        gone = [c.role for c in (*consumers, flow) if c.process.poll() is not None]
        return all(v is not None or k in gone for k, v in found.items())

    await until(done, RECOVERY_WITHIN)
    found = firsts()
    outage.missing = tuple(who for who, at in found.items() if at is None)
    if outage.missing:
        problems.append(
            f"after the {outage.mode} restart, no work within {RECOVERY_WITHIN}s from: "
            + ", ".join(outage.missing)
        )
    times = [at for at in found.values() if at is not None]
    outage.recovery = max(times) - up if times else None


def since_restart(attempt: Attempt, outages: list[Outage]) -> float | None:
    """How long after the server came back an attempt started (None: while it was down)."""
    before = [o for o in outages if o.down_at <= attempt.started]
    if not before or attempt.started < before[-1].up_at:
        return None
    return attempt.started - before[-1].up_at


def epoch(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


async def judge(
    observer: pgqrs.Store,
    load: Load,
    consumers: list[Child],
    flow: Child,
    outages: list[Outage],
    problems: list[str],
) -> dict[str, Any]:
    """Check everything the scenario promises; return the figures to report."""
    # -- messages: lost, duplicated ---------------------------------------------------------------
    queue_id = (await observer.get_queue(QUEUE)).id
    archived = {
        m.id: m for m in await (await observer.get_messages()).list_archived_by_queue(queue_id)
    }
    handlings: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for child in consumers:
        for record in child.records("handled"):
            handlings[record["id"]].append(record)
    # Lost: gone from the table, or archived although no handler ever saw it. Unfinished: still
    # in the queue after the drain (not lost, but nobody is left to handle it).
    lost: list[int] = []
    unfinished: list[int] = []
    for mid in load.ids:
        if mid in archived:
            if mid not in handlings:
                lost.append(mid)
            continue
        try:
            await (await observer.get_messages()).get(mid)
        except pgqrs.MessageNotFoundError:
            lost.append(mid)
        else:
            unfinished.append(mid)
    if lost:
        problems.append(f"{len(lost)} acknowledged message(s) lost: {lost[:20]}")
    if unfinished:
        problems.append(
            f"{len(unfinished)} acknowledged message(s) never handled and archived: "
            f"{unfinished[:20]}"
        )
    within_lease: list[str] = []
    redelivered = 0
    for mid, seen in handlings.items():
        seen.sort(key=lambda r: r["start"])
        for first, second in itertools.pairwise(seen):
            if second["start"] < first["vt"]:
                within_lease.append(
                    f"message {mid}: worker {first['worker']} held it until {first['vt']:.3f}, "
                    f"worker {second['worker']} started it at {second['start']:.3f}"
                )
            else:
                redelivered += 1
    if within_lease:
        problems.append("handled twice inside a valid lease:\n" + "\n".join(within_lease[:10]))

    # -- producers: clear errors while down, none once back ----------------------------------
    def excused(attempt: Attempt) -> bool:
        """The call overlapped an outage or the GRACE seconds after it (one that was under
        way when the server went down may fail too)."""
        return any(
            attempt.ended >= o.down_at and attempt.started < o.up_at + GRACE for o in outages
        )

    errors = [a for a in load.attempts if a.error is not None]
    unclear = [
        a
        for a in errors
        if not isinstance(a.error, pgqrs.PgqrsConnectionError) or not str(a.error).strip()
    ]
    if unclear:
        problems.append(
            "producer errors that are not a readable PgqrsConnectionError: "
            + "; ".join(f"{type(a.error).__name__}: {a.error!r}" for a in unclear[:5])
        )
    late = [a for a in errors if not excused(a)]
    if late:

        def since_up(a: Attempt) -> str:
            after = since_restart(a, outages)
            return "before any outage" if after is None else f"{after:.2f}s after a restart"

        problems.append(
            f"{len(late)} producer error(s) once the server had been back {GRACE}s:\n"
            + "\n".join(
                f"{a.who} {since_up(a)}: {type(a.error).__name__}: {a.error}" for a in late[:8]
            )
        )

    # -- workflows: every run SUCCESS, no step body after its result was saved ---------------
    runs = await (await observer.get_workflow_runs()).list()
    not_success = [r for r in runs if r.status != pgqrs.WorkflowStatus.Success]
    if not_success:
        by_status = Counter(str(r.status) for r in runs)
        errors_first = sorted(
            not_success, key=lambda r: (r.status != pgqrs.WorkflowStatus.Error, r.id)
        )
        problems.append(
            f"{len(not_success)} workflow run(s) of {len(runs)} did not end SUCCESS "
            f"({dict(by_status)}): "
            + "; ".join(f"run {r.id} {r.status} error={r.error!r}" for r in errors_first[:6])
        )
    saved: dict[tuple[int, str], float] = {}
    failed_steps: list[str] = []
    for row in await (await observer.get_workflow_steps()).list():
        at = epoch(row.completed_at)
        if row.status == pgqrs.WorkflowStatus.Success and at is not None:
            saved[(row.run_id, row.step_name)] = at
        elif row.status == pgqrs.WorkflowStatus.Error:
            failed_steps.append(f"run {row.run_id} {row.step_name}: {row.error!r}")
    if failed_steps:
        problems.append("steps recorded as failed:\n" + "\n".join(failed_steps[:8]))
    bodies = flow.records("steps")
    runs_of_bodies: dict[tuple[int, str], int] = defaultdict(int)
    after_save: list[str] = []
    for body in bodies:
        key = (body["run"], body["step"])
        runs_of_bodies[key] += 1
        if key in saved and body["start"] > saved[key]:
            after_save.append(
                f"run {key[0]} step {key[1]} started again "
                f"{body['start'] - saved[key]:.3f}s after its result was saved"
            )
    if after_save:
        problems.append("finished steps ran again:\n" + "\n".join(after_save[:8]))

    # -- the children's logs -----------------------------------------------------------------------
    tracebacks: dict[str, int] = {}
    for child in (*consumers, flow):
        text = child.log_text()
        found = logged_tracebacks(text)
        tracebacks[child.role] = sum(found.values())
        if found:
            problems.append(
                f"{child.role} logged {sum(found.values())} traceback(s) (an outage should log "
                "one line each); the records that carried them:\n"
                + "\n".join(f"{n} x {what}" for what, n in found.most_common())
            )
        if "Task exception was never retrieved" in text:
            problems.append(
                f"{child.role}: 'Task exception was never retrieved' in its log:\n{tail(text)}"
            )

    recoveries = [o.recovery for o in outages]
    after_up = [since_restart(a, outages) for a in errors]
    return {
        "messages": len(load.ids),
        "lost": len(lost),
        "unfinished": len(unfinished),
        "duplicated": len(within_lease),
        "redelivered_after_lease": redelivered,
        "recovery_seconds": max((r for r in recoveries if r is not None), default=None),
        "recoveries": [None if r is None else round(r, 2) for r in recoveries],
        "never_recovered": sorted({who for o in outages for who in o.missing}),
        "producer_errors": len(errors),
        "producer_error_kinds": dict(
            Counter(
                f"{type(a.error).__name__}: "
                + re.sub(r"[\d.]+", "N", str(a.error).splitlines()[0] if str(a.error) else "")[:90]
                for a in errors
            )
        ),
        "producer_errors_after_recovery": len(late),
        "last_producer_error_after_up": round(
            max((t for t in after_up if t is not None), default=0.0), 2
        ),
        "runs": len(runs),
        "runs_error": sum(r.status == pgqrs.WorkflowStatus.Error for r in runs),
        "step_reruns": sum(n - 1 for n in runs_of_bodies.values()),
        "step_reruns_after_save": len(after_save),
        "tracebacks": sum(tracebacks.values()),
    }
