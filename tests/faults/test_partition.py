"""A network partition longer than the lease: the cut-off consumer's late archive is refused.

Consumer A reaches the private server through `tests/support/proxy.Proxy`; consumer B connects
directly. A claims a message and its handler keeps working on it. The proxy is cut: A's
heartbeats can no longer extend the lease, which lapses; B claims the message and completes it
(handled and archived). Only then is the proxy restored and A's handler allowed to finish.

* A's late archive is refused: the loop's own archive (folded into its next claim) changes
  nothing, and an explicit `archive()` / `extend_vt()` by A returns False; the message stays
  archived by B, at B's time;
* B's claim came after A's lease had ended (the lease read right after the cut);
* A recovers by itself: its heartbeat gets through again while its handler still holds the
  message (and renewing that lease changes nothing: B owns it now), then it handles new ones;
* nothing is lost: every enqueued message ends archived;
* the outage is logged without tracebacks, and no task exception goes unretrieved.

Heartbeats are 5 s apart, so the partition (about the lease, 2 s) stays far below the 15 s
after which B's loop would sweep A as a dead worker: the lease alone decides here.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import pytest

import pgqrs
from tests.support.fault_report import report
from tests.support.pgserver import PgServer
from tests.support.proxy import Proxy
from tests.support.target import Target
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

QUEUE = "partition"
LEASE = 2.0
HEARTBEAT = 5
CONNECT_TIMEOUT = 10
PARTITION_AT_LEAST = 1.5 * LEASE
EXTRA = 3  # messages enqueued during the partition, and again after it


@dataclass(frozen=True)
class Handling:
    consumer: str
    message_id: int
    start: float
    vt: float | None


Handler = Callable[[pgqrs.QueueMessage], Awaitable[None]]


def epoch(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


async def test_a_partitioned_consumers_late_archive_is_refused(
    private_pg: PgServer, private_target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    began = time.monotonic()
    settings = {"heartbeat_interval_seconds": HEARTBEAT, "poll_interval_ms": 50}
    direct = await private_target.connect(**settings)
    proxy = await Proxy(private_pg.host, private_pg.port).start()
    via_proxy = pgqrs.Config(
        f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres",
        schema=private_target.schema,
        connection_timeout_seconds=CONNECT_TIMEOUT,
        **settings,
    )
    tasks: list[asyncio.Task[None]] = []
    store_a: pgqrs.Store | None = None
    try:
        await pgqrs.admin(direct).install()
        await direct.queue(QUEUE)
        producer = await direct.producer(QUEUE)
        target = await producer.enqueue({"n": "held across the partition"})
        ids = [target]

        store_a = await pgqrs.connect_with(via_proxy)
        consumer_a = await store_a.consumer(QUEUE)
        consumer_b = await direct.consumer(QUEUE)
        handled: list[Handling] = []
        a_holds = asyncio.Event()
        a_may_finish = asyncio.Event()

        async def handle_a(message: pgqrs.QueueMessage) -> None:
            handled.append(Handling("A", message.id, time.time(), epoch(message.vt)))
            if message.id == target:
                a_holds.set()
                await a_may_finish.wait()  # still working while the network is cut

        async def handle_b(message: pgqrs.QueueMessage) -> None:
            handled.append(Handling("B", message.id, time.time(), epoch(message.vt)))

        async def loop(consumer: pgqrs.Consumer, store: pgqrs.Store, handler: Handler) -> None:
            builder = pgqrs.dequeue().worker(consumer).handle(handler).lease(LEASE)
            try:
                await builder.poll(store)
            except pgqrs.SuspendedError:
                return

        tasks.append(asyncio.create_task(loop(consumer_a, store_a, handle_a)))
        async with asyncio.timeout(10):
            await a_holds.wait()
        tasks.append(asyncio.create_task(loop(consumer_b, direct, handle_b)))

        cut_at = time.time()
        proxy.cut()
        lease_at_cut = epoch((await (await direct.get_messages()).get(target)).vt)
        assert lease_at_cut is not None
        ids += await producer.enqueue_batch([{"n": f"during {n}"} for n in range(EXTRA)])

        async def b_completed() -> pgqrs.QueueMessage | None:
            message = await (await direct.get_messages()).get(target)
            done = message.archived_at is not None
            return message if done and message.consumer_worker_id == consumer_b.worker_id else None

        by_b: pgqrs.QueueMessage = await eventually(b_completed, within=LEASE + 10)

        # The partition lasts 1.5 leases at least (B may get the message sooner: A's last
        # heartbeat before the cut had extended the lease by less than a whole lease).
        async def long_enough() -> bool:
            return time.time() >= cut_at + PARTITION_AT_LEAST

        await eventually(long_enough, within=PARTITION_AT_LEAST + 1)

        # B is stopped before the network comes back, so what follows can only be A's work.
        await consumer_b.interrupt()
        await tasks[1]
        restored_at = time.time()
        proxy.restore()
        after = await producer.enqueue_batch([{"n": f"after {n}"} for n in range(EXTRA)])
        ids += after

        # A's handler is still holding the target: wait for a heartbeat of A that got through
        # (each heartbeat first renews the lease of what the handler holds, fenced by owner).
        async def a_beat_again() -> float | None:
            if tasks[0].done():
                raise AssertionError(f"A's poll loop ended: {tasks[0].exception()!r}")
            beat = epoch(
                (await (await direct.get_workers()).get(consumer_a.worker_id)).heartbeat_at
            )
            return beat if beat is not None and beat > restored_at else None

        beat_again: float = await eventually(
            a_beat_again, within=HEARTBEAT + CONNECT_TIMEOUT + 5, interval=0.05
        )
        during = await (await direct.get_messages()).get(target)
        a_may_finish.set()

        async def a_handled_after() -> bool:
            if tasks[0].done():  # A's loop must survive the partition
                raise AssertionError(f"A's poll loop ended: {tasks[0].exception()!r}")
            return {h.message_id for h in handled if h.consumer == "A"} >= set(after)

        await eventually(a_handled_after, within=CONNECT_TIMEOUT + 10)
        recovered_at = min(h.start for h in handled if h.consumer == "A" and h.start >= restored_at)

        # A's loop archived what its handler finished in the statement that claimed `after`:
        # fenced, it changed nothing. A late archive by hand is refused too.
        again = await (await direct.get_messages()).get(target)
        late_archive = await consumer_a.archive(target)
        late_extend = await consumer_a.extend_vt(target, 30)
        final = await (await direct.get_messages()).get(target)

        async def drained() -> bool:
            return await (await direct.get_messages()).count() == 0

        await eventually(drained, within=10)
        queue_id = (await direct.get_queue(QUEUE)).id
        archived = {
            m.id for m in await (await direct.get_messages()).list_archived_by_queue(queue_id)
        }
        lost = sorted(set(ids) - archived)
        # A lost connection is worth a one-line warning, not a traceback; and no task of the
        # library may end with an exception nobody retrieved.
        tracebacks = [r for r in caplog.records if r.name == "pgqrs" and r.exc_info]
        unretrieved = [r for r in caplog.records if "never retrieved" in r.getMessage()]
        of_target = [h for h in handled if h.message_id == target]
        b_claim = next(h for h in of_target if h.consumer == "B")
        # A second handling is a duplicate when it began before the first one's lease ended
        # (for A's claim of the target: the lease its heartbeats had reached at the cut).
        by_message: dict[int, list[Handling]] = defaultdict(list)
        for h in handled:
            by_message[h.message_id].append(h)
        in_lease: list[tuple[Handling, Handling]] = []
        for of_one in by_message.values():
            for first, second in itertools.pairwise(sorted(of_one, key=lambda h: h.start)):
                ends = lease_at_cut if first.message_id == target else first.vt
                if ends is None or second.start < ends:
                    in_lease.append((first, second))
        await consumer_a.interrupt()
        await tasks[0]
        report(
            "network partition",
            messages=len(ids),
            lost=len(lost),
            duplicated=len(in_lease),
            lease_seconds=LEASE,
            partition_seconds=restored_at - cut_at,
            b_claimed_after_cut=b_claim.start - cut_at,
            recovery_seconds=beat_again - restored_at,
            handled_again_seconds=recovered_at - restored_at,
            late_archive_refused=not late_archive,
            late_extend_refused=not late_extend,
            tracebacks_logged=len(tracebacks),
            seconds=time.monotonic() - began,
        )

        assert restored_at - cut_at > LEASE  # the partition outlasted the lease
        assert [h.consumer for h in of_target] == ["A", "B"]
        assert b_claim.start >= lease_at_cut, "B claimed while A's lease still ran"
        assert by_b.consumer_worker_id == consumer_b.worker_id
        for row in (during, again, final):
            assert row.consumer_worker_id == consumer_b.worker_id
            assert row.archived_at == by_b.archived_at  # archived once, by B, at B's time
            assert row.vt == by_b.vt  # A's heartbeats after the partition did not touch it
        assert late_archive is False
        assert late_extend is False
        assert lost == []
        assert in_lease == []
        assert unretrieved == []
        assert tracebacks == [], [r.getMessage() for r in tracebacks]
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if store_a is not None:
            await store_a.close()
        await proxy.close()
        await direct.close()
