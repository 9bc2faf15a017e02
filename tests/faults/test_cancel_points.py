"""Cancellation at every await point (issue 10), on every backend.

Each public write operation runs once per suspension point n = 1, 2, ... and is cancelled
there with a real `Task.cancel()` (tests/support/cancel.py); after each cancellation the
invariants of tests/support/cancel_invariants.py must hold (no transaction left open, nothing
owned by a worker that cannot finish it, no ephemeral worker left running), together with what
the operation itself promises: a write happened completely or not at all; a cancelled claim gives
back at once what it took; a cancelled poll loop leaves its worker suspended and holding
nothing; a cancelled helper leaves its ephemeral worker stopped. The drive ends with the first
run that completes before reaching point n, which is checked too.

Every point of every operation is tried even after a failure (the store is replaced when one
is found, so one defect does not hide the next); the test then fails listing each failing point.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

import pgqrs
from tests.support.cancel import Point, PointFailure, cancel_at_each_point
from tests.support.cancel_invariants import Invariants, Snapshot
from tests.support.fault_report import report
from tests.support.target import Target

pytestmark = pytest.mark.slow

LEASE = 30  # the default lease: a message "held" below is held for this long
WORKFLOW = "cancel_wf"

Setup = Callable[[], Awaitable[None]]
MakeOp = Callable[[], Coroutine[Any, Any, Any]]
OpCheck = Callable[[Point, Snapshot], Awaitable[None]]  # the operation's own promises


@dataclass(frozen=True)
class Home:
    queue: str
    queue_id: int
    producer: pgqrs.Producer


class Rig:
    """The store under test (with its invariants) and the drive of one operation."""

    def __init__(self, target: Target) -> None:
        self.backend = target.backend
        self.inv = Invariants(target)
        self.queues = 0
        self._shared: dict[str, Any] = {}  # objects of the current store, made once
        self.before: Snapshot | None = None  # the rows as each point's run starts
        # Cancelled runs whose write landed only after the cancelled call had returned
        # (the checks look at the settled rows; this only counts them).
        self.late = 0

    @property
    def store(self) -> pgqrs.Store:
        return self.inv.store

    async def recover(self) -> None:
        self._shared.clear()  # they belong to the store being replaced
        await self.inv.recover()

    async def queue(self) -> tuple[str, int]:
        """A fresh queue: its name and id."""
        self.queues += 1
        name = f"q{self.queues}"
        info = await pgqrs.admin(self.store).create_queue(name)
        return name, info.id

    async def shared(self, key: str, make: Callable[[], Awaitable[Any]]) -> Any:
        """`make()` once per store (a queue and producer the points of one test share)."""
        if key not in self._shared:
            self._shared[key] = await make()
        return self._shared[key]

    async def home(self) -> Home:
        """The queue and producer the points of one test share (one per store)."""

        async def make() -> Home:
            name, queue_id = await self.queue()
            return Home(name, queue_id, await self.store.producer(name))

        home: Home = await self.shared("home", make)
        return home

    async def held(self, count: int) -> tuple[pgqrs.Consumer, list[pgqrs.QueueMessage]]:
        """`count` fresh messages claimed by the test's consumer (one per store)."""
        home = await self.home()

        async def make() -> pgqrs.Consumer:
            return await self.store.consumer(home.queue)

        consumer: pgqrs.Consumer = await self.shared("consumer", make)
        await home.producer.enqueue_batch([{"n": i} for i in range(count)])
        messages = await consumer.dequeue(count)
        assert len(messages) == count
        return consumer, messages

    async def visible(self, count: int) -> tuple[str, int]:
        """A fresh queue holding `count` visible messages."""
        name, queue_id = await self.queue()
        await pgqrs.produce_batch(self.store, name, [{"n": i} for i in range(count)])
        return name, queue_id

    async def drive(
        self,
        operation: str,
        make_op: MakeOp,
        check: OpCheck | None = None,
        *,
        setup: Setup | None = None,
    ) -> None:
        """Cancel `make_op()` at each of its points; after each, (a), then `check` (the
        operation's own promises, on the rows once the store's queued writes have landed), then
        (b)-(d). Cancelled runs whose write landed only after the call had returned are counted
        (`late_writes` in the figures), not failed: the promise is "all or nothing", and the
        checks judge the settled rows."""

        async def prepare() -> None:
            if setup is not None:
                await setup()
            self.before = await self.inv.snapshot()

        async def checks(point: Point) -> None:
            # Another process must still write: after the first cancellation and at the end.
            other = point.n == 1 or not point.cancelled
            returned, settled, found = await self.inv.settle(other_process=other)
            if point.cancelled and returned.changes(settled, ignore_queue=self.inv.probe_queue_id):
                self.late += 1  # the cancelled call returned before its write had landed
            if check is not None:
                try:
                    await check(point, settled)
                except AssertionError as err:
                    found.append(str(err))
                except pgqrs.PgqrsError as err:
                    found.append(f"{type(err).__name__} while checking: {err}")
            # (b)-(d), after what the operation's own check did (closing an iterator, say).
            found += (await self.inv.snapshot()).new_violations(self.before)
            if found:
                raise AssertionError("; ".join(found))

        start = time.monotonic()
        self.late = 0
        failures: list[PointFailure] = []
        points = await cancel_at_each_point(
            make_op, checks, setup=prepare, failures=failures, recover=self.recover
        )
        seconds = time.monotonic() - start
        report(
            f"cancel points[{self.backend}]",
            operations=operation,
            points=points,
            failures=len(failures),
            late_writes=self.late,
            seconds=seconds,
        )
        if failures:
            shown = "\n".join(f"  {f}" for f in failures)
            pytest.fail(
                f"{operation} on {self.backend}: {len(failures)} of {points + 1} runs failed:\n"
                f"{shown}",
                pytrace=False,
            )


@pytest.fixture
async def rig(target: Target) -> AsyncIterator[Rig]:
    rig = Rig(target)
    await rig.inv.open()
    try:
        yield rig
    finally:
        await rig.inv.close()


# -- what the operations promise ---------------------------------------------------------------
def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def all_or_nothing(count: int, expected: int, what: str) -> None:
    _expect(count in (0, expected), f"{what}: {count} of {expected} happened (all or nothing)")


def released(snapshot: Snapshot, queue_id: int, worker: str) -> None:
    """A cancelled claim gave back at once everything it took."""
    kept = [m for m in snapshot.of_queue(queue_id) if m.owner is not None or snapshot.leased(m)]
    _expect(
        not kept,
        f"the cancelled claim kept message(s) {[m.id for m in kept]} for {worker} "
        f"(owner {kept[0].owner if kept else None}, not claimable until the lease ends)",
    )


def held_as_before(snapshot: Snapshot, ids: list[int], worker_id: int) -> bool:
    """Every message in `ids` is still unarchived, owned by `worker_id` and leased."""
    rows = {m.id: m for m in snapshot.messages}
    return all(i in rows and rows[i].owner == worker_id and snapshot.leased(rows[i]) for i in ids)


async def shuts_down(consumer: pgqrs.Consumer) -> None:
    """`shutdown()` without release: refused while the consumer holds anything."""
    try:
        await consumer.shutdown()
    except pgqrs.PgqrsError as err:
        raise AssertionError(f"shutdown() right after the cancelled claim failed: {err}") from err


def ephemeral_stopped(before: Snapshot | None, snapshot: Snapshot) -> None:
    """The helper's own ephemeral worker (one that `before` did not have) ended stopped."""
    old = before.workers if before is not None else {}
    alive = [w for w in snapshot.ephemeral() if w.status != "stopped" and w.id not in old]
    _expect(
        not alive,
        "ephemeral worker(s) left "
        + ", ".join(f"{w.id} {w.status}" for w in alive)
        + " after the helper ended",
    )


async def rows(rig: Rig, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return await rig.inv.query(sql, params)


# -- producing ---------------------------------------------------------------------------------
async def test_cancel_produce(rig: Rig) -> None:
    queue = ("", 0)

    async def setup() -> None:
        nonlocal queue
        queue = await rig.queue()

    async def check(point: Point, snapshot: Snapshot) -> None:
        all_or_nothing(len(snapshot.of_queue(queue[1])), 1, "messages enqueued")
        ephemeral_stopped(rig.before, snapshot)

    await rig.drive(
        "produce", lambda: pgqrs.produce(rig.store, queue[0], {"n": 1}), check, setup=setup
    )


async def test_cancel_produce_batch(rig: Rig) -> None:
    queue = ("", 0)

    async def setup() -> None:
        nonlocal queue
        queue = await rig.queue()

    async def check(point: Point, snapshot: Snapshot) -> None:
        all_or_nothing(len(snapshot.of_queue(queue[1])), 3, "messages enqueued")
        ephemeral_stopped(rig.before, snapshot)

    payloads = [{"n": i} for i in range(3)]
    await rig.drive(
        "produce_batch",
        lambda: pgqrs.produce_batch(rig.store, queue[0], payloads),
        check,
        setup=setup,
    )


def _enqueue_drive(
    rig: Rig,
    enqueue: Callable[[pgqrs.Producer], Coroutine[Any, Any, Any]],
    count: int,
    delayed: bool = False,
) -> tuple[Setup, MakeOp, OpCheck]:
    """An enqueue through the test's producer: `count` new messages on its queue, or none."""
    state: dict[str, Any] = {}

    async def setup() -> None:
        state["home"] = await rig.home()

    def op() -> Coroutine[Any, Any, Any]:
        return enqueue(state["home"].producer)

    async def check(point: Point, snapshot: Snapshot) -> None:
        old = {m.id for m in rig.before.messages} if rig.before is not None else set()
        new = [m for m in snapshot.of_queue(state["home"].queue_id) if m.id not in old]
        all_or_nothing(len(new), count, "messages enqueued")
        later = snapshot.taken_at + timedelta(seconds=3000)
        for m in new:
            visible = m.vt is None or m.vt <= later
            _expect(m.owner is None, f"new message {m.id} has an owner ({m.owner})")
            _expect(visible != delayed, f"new message {m.id} is visible from {m.vt}")

    return setup, op, check


async def test_cancel_enqueue(rig: Rig) -> None:
    setup, op, check = _enqueue_drive(rig, lambda p: p.enqueue({"n": 1}), 1)
    await rig.drive("enqueue", op, check, setup=setup)


async def test_cancel_enqueue_helper(rig: Rig) -> None:
    setup, op, check = _enqueue_drive(rig, lambda p: pgqrs.enqueue(p, {"n": 1}), 1)
    await rig.drive("pgqrs.enqueue", op, check, setup=setup)


async def test_cancel_enqueue_batch(rig: Rig) -> None:
    payloads = [{"n": i} for i in range(3)]
    setup, op, check = _enqueue_drive(rig, lambda p: p.enqueue_batch(payloads), 3)
    await rig.drive("enqueue_batch", op, check, setup=setup)


async def test_cancel_enqueue_delayed(rig: Rig) -> None:
    setup, op, check = _enqueue_drive(
        rig, lambda p: p.enqueue_delayed({"n": 1}, 3600), 1, delayed=True
    )
    await rig.drive("enqueue_delayed", op, check, setup=setup)


# -- priorities, deduplication keys, cancelling queued messages (issue 12) ---------------------
class _Keys:
    """A fresh deduplication key for every run of a drive (each run enqueues anew)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, tag: str = "") -> str:
        self.n += 1
        return f"key-{self.n}{tag}"


async def test_cancel_enqueue_with_key(rig: Rig) -> None:
    keys = _Keys()
    setup, op, check = _enqueue_drive(
        rig, lambda p: p.enqueue({"n": 1}, priority=3, dedup_key=keys()), 1
    )
    await rig.drive("enqueue(dedup_key=)", op, check, setup=setup)


async def test_cancel_enqueue_batch_with_keys(rig: Rig) -> None:
    keys = _Keys()

    def enqueue(p: pgqrs.Producer) -> Coroutine[Any, Any, Any]:
        first, second = keys("a"), keys("b")
        payloads = [{"n": i} for i in range(4)]
        # The second `first` is a duplicate within the batch: three messages, or none.
        return p.enqueue_batch(payloads, dedup_keys=[first, None, first, second], priority=-1)

    setup, op, check = _enqueue_drive(rig, enqueue, 3)
    await rig.drive("enqueue_batch(dedup_keys=)", op, check, setup=setup)


async def test_cancel_enqueue_duplicate_within_window(rig: Rig) -> None:
    """A key whose message was archived moments ago, with a window: never a new message."""
    state: dict[str, Any] = {}

    async def setup() -> None:
        home = await rig.home()
        state["home"] = home
        if state.get("queue_id") != home.queue_id:  # once per store (a recovered one too)
            state["queue_id"] = home.queue_id
            state["id"] = await home.producer.enqueue({"n": 0}, dedup_key="kept")
            consumer = await rig.store.consumer(home.queue)
            [m] = await consumer.dequeue()
            assert await consumer.archive(m.id)

    def op() -> Coroutine[Any, Any, Any]:
        producer: pgqrs.Producer = state["home"].producer
        return producer.enqueue({"n": 1}, dedup_key="kept", dedup_window_seconds=3600)

    async def check(point: Point, snapshot: Snapshot) -> None:
        old = {m.id for m in rig.before.messages} if rig.before is not None else set()
        new = [m for m in snapshot.of_queue(state["home"].queue_id) if m.id not in old]
        _expect(not new, f"a duplicate enqueue wrote message(s) {[m.id for m in new]}")
        if not point.cancelled:
            _expect(
                point.result == state["id"] and point.result.duplicate,
                f"the duplicate enqueue returned {point.result!r}",
            )

    await rig.drive("enqueue(duplicate)", op, check, setup=setup)


async def test_cancel_produce_with_key(rig: Rig) -> None:
    queue = ("", 0)
    keys = _Keys()

    async def setup() -> None:
        nonlocal queue
        queue = await rig.queue()

    async def check(point: Point, snapshot: Snapshot) -> None:
        all_or_nothing(len(snapshot.of_queue(queue[1])), 1, "messages enqueued")
        ephemeral_stopped(rig.before, snapshot)

    await rig.drive(
        "produce(dedup_key=)",
        lambda: pgqrs.produce(rig.store, queue[0], {"n": 1}, dedup_key=keys()),
        check,
        setup=setup,
    )


def _cancel_message_drive(
    rig: Rig, cancel: Callable[[Home, int, str], Coroutine[Any, Any, bool]]
) -> tuple[Setup, MakeOp, OpCheck]:
    """A fresh queued message (with a key) on the test's queue; afterwards it is either
    still queued as before, or archived and marked cancelled (and then the call said True)."""
    state: dict[str, Any] = {}
    keys = _Keys()

    async def setup() -> None:
        home = await rig.home()
        key = keys()
        state["home"], state["key"] = home, key
        state["id"] = await home.producer.enqueue({"n": 1}, dedup_key=key)

    def op() -> Coroutine[Any, Any, bool]:
        return cancel(state["home"], state["id"], state["key"])

    async def check(point: Point, snapshot: Snapshot) -> None:
        mid = state["id"]
        queued = [m for m in snapshot.messages if m.id == mid]
        [(archived, cancelled)] = await rows(
            rig, "SELECT archived_at, cancelled_at FROM {s}pgqrs_messages WHERE id = ?", mid
        )
        if queued:
            _expect(queued[0].owner is None, f"message {mid} gained an owner")
            _expect(cancelled is None, f"message {mid} is marked cancelled but not archived")
        else:
            _expect(
                archived is not None and cancelled is not None,
                f"message {mid} left the queue without being cancelled",
            )
        if not point.cancelled:
            _expect(point.result is True, f"the completed cancel returned {point.result!r}")
            _expect(not queued, f"the completed cancel left message {mid} queued")

    return setup, op, check


async def test_cancel_producer_cancel(rig: Rig) -> None:
    setup, op, check = _cancel_message_drive(rig, lambda h, mid, key: h.producer.cancel(mid))
    await rig.drive("producer.cancel", op, check, setup=setup)


async def test_cancel_producer_cancel_key(rig: Rig) -> None:
    setup, op, check = _cancel_message_drive(rig, lambda h, mid, key: h.producer.cancel_key(key))
    await rig.drive("producer.cancel_key", op, check, setup=setup)


async def test_cancel_admin_cancel_message(rig: Rig) -> None:
    def cancel(home: Home, mid: int, key: str) -> Coroutine[Any, Any, bool]:
        return pgqrs.admin(rig.store).cancel_message(home.queue, mid)

    setup, op, check = _cancel_message_drive(rig, cancel)
    await rig.drive("Admin.cancel_message", op, check, setup=setup)


# -- claiming ----------------------------------------------------------------------------------
def _claim_drive(
    rig: Rig, claim: Callable[[pgqrs.Consumer], Coroutine[Any, Any, Any]]
) -> tuple[Setup, MakeOp, OpCheck]:
    """A fresh queue with two visible messages and a fresh consumer; a cancelled claim must
    leave both claimable and the consumer able to shut down without releasing."""
    state: dict[str, Any] = {}

    async def setup() -> None:
        name, state["queue_id"] = await rig.visible(2)
        state["consumer"] = await rig.store.consumer(name)

    def op() -> Coroutine[Any, Any, Any]:
        return claim(state["consumer"])

    async def check(point: Point, snapshot: Snapshot) -> None:
        consumer: pgqrs.Consumer = state["consumer"]
        if not point.cancelled:
            _expect(len(point.result) == 2, f"the claim returned {point.result!r}")
            _expect(
                held_as_before(snapshot, [m.id for m in point.result], consumer.worker_id),
                "the completed claim does not hold its messages",
            )
            return
        released(snapshot, state["queue_id"], f"consumer {consumer.worker_id}")
        await shuts_down(consumer)

    return setup, op, check


async def test_cancel_dequeue(rig: Rig) -> None:
    setup, op, check = _claim_drive(rig, lambda c: c.dequeue(2))
    await rig.drive("consumer.dequeue", op, check, setup=setup)


async def test_cancel_fetch(rig: Rig) -> None:
    def fetch(consumer: pgqrs.Consumer) -> Coroutine[Any, Any, Any]:
        return pgqrs.dequeue().worker(consumer).batch(2).fetch(rig.store)

    setup, op, check = _claim_drive(rig, fetch)
    await rig.drive("dequeue().fetch", op, check, setup=setup)


async def test_cancel_consume_iter(rig: Rig) -> None:
    state: dict[str, Any] = {}

    async def setup() -> None:
        name, state["queue_id"] = await rig.visible(1)
        state["iterator"] = rig.store.consume_iter(name, poll_interval_ms=10)

    def op() -> Coroutine[Any, Any, pgqrs.QueueMessage]:
        iterator: Any = state["iterator"]
        anext: Coroutine[Any, Any, pgqrs.QueueMessage] = iterator.__anext__()
        return anext

    async def check(point: Point, snapshot: Snapshot) -> None:
        iterator = state["iterator"]
        try:
            if point.cancelled:
                released(snapshot, state["queue_id"], f"the iterator ({iterator.worker_id})")
            else:
                message: pgqrs.QueueMessage = point.result
                _expect(
                    held_as_before(snapshot, [message.id], message.consumer_worker_id or 0),
                    "the message the iterator returned is not held",
                )
        finally:
            await iterator.close()  # the iterator's end; then no ephemeral worker may live

    await rig.drive("consume_iter.__anext__", op, check, setup=setup)


# -- settling ----------------------------------------------------------------------------------
def _settle_drive(
    rig: Rig,
    count: int,
    settle: Callable[[pgqrs.Consumer, list[int]], Coroutine[Any, Any, Any]],
    done: Callable[[Snapshot, list[int], int], bool],
    what: str,
) -> tuple[Setup, MakeOp, OpCheck]:
    """`count` messages held by the test's consumer; afterwards either `done` (the whole
    operation happened) or every message is held as before."""
    state: dict[str, Any] = {}

    async def setup() -> None:
        consumer, messages = await rig.held(count)
        state["consumer"], state["ids"] = consumer, [m.id for m in messages]

    def op() -> Coroutine[Any, Any, Any]:
        return settle(state["consumer"], state["ids"])

    async def check(point: Point, snapshot: Snapshot) -> None:
        ids, worker_id = state["ids"], state["consumer"].worker_id
        happened = done(snapshot, ids, worker_id)
        _expect(
            happened or held_as_before(snapshot, ids, worker_id),
            f"{what} of {ids} happened in part",
        )
        if not point.cancelled:
            _expect(happened, f"the completed {what} did not happen")

    return setup, op, check


def _gone(snapshot: Snapshot, ids: list[int], worker_id: int) -> bool:
    present = {m.id for m in snapshot.messages}
    return not any(i in present for i in ids)


def _given_back(snapshot: Snapshot, ids: list[int], worker_id: int) -> bool:
    rows = {m.id: m for m in snapshot.messages}
    return all(i in rows and rows[i].owner is None and snapshot.claimable(rows[i]) for i in ids)


async def test_cancel_archive(rig: Rig) -> None:
    setup, op, check = _settle_drive(rig, 1, lambda c, ids: c.archive(ids[0]), _gone, "archive")
    await rig.drive("archive", op, check, setup=setup)


async def test_cancel_archive_many(rig: Rig) -> None:
    setup, op, check = _settle_drive(rig, 2, lambda c, ids: c.archive_many(ids), _gone, "archive")
    await rig.drive("archive_many", op, check, setup=setup)


async def test_cancel_delete_many(rig: Rig) -> None:
    setup, op, check = _settle_drive(rig, 2, lambda c, ids: c.delete_many(ids), _gone, "delete")
    await rig.drive("delete_many", op, check, setup=setup)


async def test_cancel_release_messages(rig: Rig) -> None:
    setup, op, check = _settle_drive(
        rig, 2, lambda c, ids: c.release_messages(ids), _given_back, "release"
    )
    await rig.drive("release_messages", op, check, setup=setup)


async def test_cancel_extend_vt(rig: Rig) -> None:
    def extended(snapshot: Snapshot, ids: list[int], worker_id: int) -> bool:
        rows = {m.id: m for m in snapshot.messages}
        vt = rows[ids[0]].vt if ids[0] in rows else None
        return vt is not None and vt > snapshot.taken_at + timedelta(seconds=LEASE + 3000)

    setup, op, check = _settle_drive(
        rig, 1, lambda c, ids: c.extend_vt(ids[0], 3600), extended, "extend_vt"
    )
    await rig.drive("extend_vt", op, check, setup=setup)


# -- workers -----------------------------------------------------------------------------------
async def _registration(rig: Rig, kind: str) -> None:
    state: dict[str, Any] = {"n": 0}

    async def setup() -> None:
        state["queue"] = (await rig.home()).queue
        state["n"] += 1

    def op() -> Coroutine[Any, Any, Any]:
        name = f"{kind}-{state['n']}"
        if kind == "producer":
            return rig.store.producer(state["queue"], name)
        return rig.store.consumer(state["queue"], name)

    async def check(point: Point, snapshot: Snapshot) -> None:
        name = f"{kind}-{state['n']}"
        found = [w for w in snapshot.workers.values() if w.name == name]
        _expect(
            not found or found[0].status in ("ready", "stopped"),
            f"the cancelled registration left worker {name} {found[0].status if found else ''}",
        )
        if not point.cancelled:
            _expect(bool(found) and found[0].status == "ready", f"{name} is not registered")

    await rig.drive(f"store.{kind}", op, check, setup=setup)


async def test_cancel_producer_registration(rig: Rig) -> None:
    await _registration(rig, "producer")


async def test_cancel_consumer_registration(rig: Rig) -> None:
    await _registration(rig, "consumer")


async def test_cancel_shutdown_release(rig: Rig) -> None:
    state: dict[str, Any] = {}

    async def setup() -> None:
        name, state["queue_id"] = await rig.visible(2)
        consumer = await rig.store.consumer(name)
        state["consumer"], state["ids"] = consumer, [m.id for m in await consumer.dequeue(2)]

    def op() -> Coroutine[Any, Any, None]:
        shutdown: Coroutine[Any, Any, None] = state["consumer"].shutdown(release=True)
        return shutdown

    async def check(point: Point, snapshot: Snapshot) -> None:
        consumer, ids = state["consumer"], state["ids"]
        status = snapshot.status(consumer.worker_id)
        if status == "stopped":
            _expect(_given_back(snapshot, ids, 0), "stopped, but its messages were not released")
        else:
            _expect(
                status == "ready" and held_as_before(snapshot, ids, consumer.worker_id),
                f"shutdown(release=True) happened in part: {status}, messages "
                f"{[(m.id, m.owner) for m in snapshot.of_queue(state['queue_id'])]}",
            )
        if not point.cancelled:
            _expect(status == "stopped", f"the completed shutdown left the worker {status}")

    await rig.drive("shutdown(release=True)", op, check, setup=setup)


async def _transition(
    rig: Rig, operation: str, before: str, after: str, move: Callable[[pgqrs.Consumer], Any]
) -> None:
    state: dict[str, Any] = {}

    async def setup() -> None:
        consumer = await rig.store.consumer((await rig.home()).queue)
        if before == "suspended":
            await consumer.suspend()
        state["consumer"] = consumer

    def op() -> Coroutine[Any, Any, Any]:
        moved: Coroutine[Any, Any, Any] = move(state["consumer"])
        return moved

    async def check(point: Point, snapshot: Snapshot) -> None:
        status = snapshot.status(state["consumer"].worker_id)
        _expect(status in (before, after), f"{operation} left the worker {status}")
        if not point.cancelled:
            _expect(status == after, f"the completed {operation} left the worker {status}")

    await rig.drive(operation, op, check, setup=setup)


async def test_cancel_suspend(rig: Rig) -> None:
    await _transition(rig, "suspend", "ready", "suspended", lambda c: c.suspend())


async def test_cancel_resume(rig: Rig) -> None:
    await _transition(rig, "resume", "suspended", "ready", lambda c: c.resume())


async def test_cancel_interrupt(rig: Rig) -> None:
    await _transition(rig, "interrupt", "ready", "interrupted", lambda c: c.interrupt())


async def test_cancel_reclaim_messages(rig: Rig) -> None:
    state: dict[str, Any] = {}

    async def setup() -> None:
        name, state["queue_id"] = await rig.visible(2)
        consumer = await rig.store.consumer(name)
        state["name"], state["consumer"] = name, consumer
        state["ids"] = [m.id for m in await consumer.dequeue(2)]

    def op() -> Coroutine[Any, Any, int]:
        admin = pgqrs.admin(rig.store)
        # Forced: the consumer's leases still run, and only an operator's force takes them
        # (a plain reclaim stops the worker and leaves them: docs/guarantees.md, "Recovery").
        return admin.reclaim_messages(queue=state["name"], older_than_seconds=0, force=True)

    async def check(point: Point, snapshot: Snapshot) -> None:
        consumer, ids = state["consumer"], state["ids"]
        status = snapshot.status(consumer.worker_id)
        if status == "stopped":
            _expect(_given_back(snapshot, ids, 0), "stopped, but its messages were not released")
        else:
            _expect(
                status == "ready" and held_as_before(snapshot, ids, consumer.worker_id),
                f"reclaim happened in part: worker {status}",
            )
        if not point.cancelled:
            _expect(point.result == 2, f"the completed reclaim released {point.result}")

    await rig.drive("reclaim_messages", op, check, setup=setup)


# -- the poll loop -----------------------------------------------------------------------------
async def test_cancel_poll_loop(rig: Rig) -> None:
    """A loop over three messages, two per batch, whose handler interrupts the worker after the
    last one: it ends with SuspendedError. Cancelled anywhere, it must end with the worker
    suspended and holding nothing."""
    state: dict[str, Any] = {}

    async def setup() -> None:
        name, state["queue_id"] = await rig.visible(3)
        state["consumer"] = await rig.store.consumer(name)
        state["seen"] = []

    async def handle(messages: list[pgqrs.QueueMessage]) -> None:
        state["seen"].extend(m.id for m in messages)
        if len(state["seen"]) == 3:
            await state["consumer"].interrupt()

    async def loop() -> None:
        builder = pgqrs.dequeue().worker(state["consumer"]).batch(2).handle_batch(handle)
        try:
            await builder.poll(rig.store)
        except pgqrs.SuspendedError:
            return  # the end the handler asked for

    async def check(point: Point, snapshot: Snapshot) -> None:
        worker_id = state["consumer"].worker_id
        status = snapshot.status(worker_id)
        held = [m.id for m in snapshot.held_by(worker_id)]
        _expect(
            status == "suspended" and not held,
            f"the poll loop ended with its worker {status}" + (f", holding {held}" if held else ""),
        )
        if not point.cancelled:
            _expect(not snapshot.of_queue(state["queue_id"]), "the loop left messages unarchived")

    await rig.drive("poll loop", loop, check, setup=setup)


# -- workflows ---------------------------------------------------------------------------------
async def _new_run(rig: Rig, start: bool) -> pgqrs.Run:
    run: pgqrs.Run = await pgqrs.admin(rig.store).create_workflow(WORKFLOW, {"n": 1})
    if start:
        await run.start()
    return run


async def _run_status(rig: Rig, run: pgqrs.Run) -> str:
    found = await rows(rig, "SELECT status FROM {s}pgqrs_workflow_runs WHERE id = ?", run.id())
    return str(found[0][0])


async def _run_transition(
    rig: Rig,
    operation: str,
    before: str,
    after: str,
    move: Callable[[pgqrs.Run], Coroutine[Any, Any, Any]],
) -> None:
    state: dict[str, Any] = {}

    async def setup() -> None:
        state["run"] = await _new_run(rig, start=before == "RUNNING")

    def op() -> Coroutine[Any, Any, Any]:
        return move(state["run"])

    async def check(point: Point, snapshot: Snapshot) -> None:
        status = await _run_status(rig, state["run"])
        _expect(status in (before, after), f"{operation} left the run {status}")
        if not point.cancelled:
            _expect(status == after, f"the completed {operation} left the run {status}")

    await rig.drive(operation, op, check, setup=setup)


async def test_cancel_run_start(rig: Rig) -> None:
    await _run_transition(rig, "run.start", "QUEUED", "RUNNING", lambda r: r.start())


async def test_cancel_run_success(rig: Rig) -> None:
    await _run_transition(rig, "run.success", "RUNNING", "SUCCESS", lambda r: r.success(1))


async def test_cancel_run_fail(rig: Rig) -> None:
    await _run_transition(rig, "run.fail", "RUNNING", "ERROR", lambda r: r.fail("boom"))


async def test_cancel_run_pause(rig: Rig) -> None:
    await _run_transition(rig, "run.pause", "RUNNING", "PAUSED", lambda r: r.pause("wait", 60))


async def test_cancel_run_cancel(rig: Rig) -> None:
    await _run_transition(rig, "run.cancel", "RUNNING", "CANCELLING", lambda r: r.cancel())


async def _step_status(rig: Rig, run: pgqrs.Run, name: str) -> str | None:
    found = await rows(
        rig,
        "SELECT status FROM {s}pgqrs_workflow_steps WHERE run_id = ? AND step_name = ?",
        run.id(),
        name,
    )
    return str(found[0][0]) if found else None


async def _step_drive(
    rig: Rig,
    operation: str,
    acquired: bool,
    act: Callable[[pgqrs.Run, pgqrs.StepGuard | None], Coroutine[Any, Any, Any]],
    after: str,
) -> None:
    state: dict[str, Any] = {}

    async def setup() -> None:
        run = await _new_run(rig, start=True)
        state["run"], state["guard"] = run, None
        if acquired:
            state["guard"] = (await run.acquire_step("work")).guard

    def op() -> Coroutine[Any, Any, Any]:
        return act(state["run"], state["guard"])

    before = "RUNNING" if acquired else None

    async def check(point: Point, snapshot: Snapshot) -> None:
        status = await _step_status(rig, state["run"], "work")
        _expect(status in (before, after), f"{operation} left the step {status}")
        if not point.cancelled:
            _expect(status == after, f"the completed {operation} left the step {status}")

    await rig.drive(operation, op, check, setup=setup)


async def test_cancel_acquire_step(rig: Rig) -> None:
    await _step_drive(
        rig, "run.acquire_step", False, lambda run, _: run.acquire_step("work"), "RUNNING"
    )


async def test_cancel_step_success(rig: Rig) -> None:
    async def succeed(run: pgqrs.Run, guard: pgqrs.StepGuard | None) -> None:
        assert guard is not None
        await guard.success({"done": True})

    await _step_drive(rig, "guard.success", True, succeed, "SUCCESS")


async def test_cancel_step_fail(rig: Rig) -> None:
    async def fail(run: pgqrs.Run, guard: pgqrs.StepGuard | None) -> None:
        assert guard is not None
        await guard.fail("boom")

    await _step_drive(rig, "guard.fail", True, fail, "ERROR")


async def test_cancel_restart_run(rig: Rig) -> None:
    """Restarting a run (semantics.md §19.1) is one transaction: cancelled anywhere, the run is
    as it was (ERROR, both steps) or restarted (QUEUED, the step before `again` kept)."""
    state: dict[str, Any] = {}

    async def setup() -> None:
        run = await _new_run(rig, start=True)
        await run.complete_step("kept", 1)
        await run.complete_step("again", 2)
        await run.fail("broken")
        state["run"] = run

    def op() -> Coroutine[Any, Any, Any]:
        return pgqrs.admin(rig.store).restart_run(state["run"].id(), "again")

    async def check(point: Point, snapshot: Snapshot) -> None:
        run = state["run"]
        status = await _run_status(rig, run)
        found = await rows(
            rig,
            "SELECT step_name FROM {s}pgqrs_workflow_steps WHERE run_id = ? ORDER BY id",
            run.id(),
        )
        steps = [str(name) for (name,) in found]
        restarted = (status, steps) == ("QUEUED", ["kept"])
        _expect(
            restarted or (status, steps) == ("ERROR", ["kept", "again"]),
            f"restart_run left the run {status} with steps {steps}",
        )
        if not point.cancelled:
            _expect(restarted, f"the completed restart_run left the run {status}")

    await rig.drive("Admin.restart_run", op, check, setup=setup)
