"""Benchmark scenarios, run against whichever `pgqrs` this interpreter imports.

The same file measures this library and pgqrs 0.15.3 (the Rust core's Python bindings), so it
uses only API both have: `store.queue(name)` to create a queue, `pgqrs.enqueue_batch(producer,
payloads)`, `consumer.dequeue(n)` + `archive_many`, the `pgqrs.dequeue()` builder with
`handle`/`handle_batch`/`handle_workflow`, `consumer.interrupt()`, the `pgqrs.workflow()`
builder and the `pgqrs.decorators` `@workflow`/`@step`. Every scenario prints one JSON line
(see bench_support.result). Each case gets a fresh PostgreSQL schema, SQLite or Turso file, or
S3 bucket (on moto's server, which the script starts on loopback), dropped after. Turso and S3
run the queue scenarios only, S3 at smaller sizes (bench_config.BACKEND_FULL); the sizes are
in each line's params.

    python benchmarks/scenarios.py                              # everything, full sizes
    python benchmarks/scenarios.py --quick                      # tiny sizes (smoke test)
    python benchmarks/scenarios.py --scenario drain --backend postgres --consumers 4 --batches 10
    python benchmarks/scenarios.py --scenario drain --backend s3,turso

Rate limiting is switched off on both libraries (`max_enqueue_per_second = None`; pgqrs 0.15.3
limits to 1000/s with bursts of 50 by default). Poll intervals, leases and batch sizes are the
libraries' defaults unless a scenario names them. Results are checked (every message handled
exactly once and archived, every run SUCCESS with each step executed once), so a fast wrong
answer cannot pass as a result.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

import bench_config
import bench_support as support
from bench_support import Target

import pgqrs
from pgqrs.decorators import step, workflow

# pgqrs 0.15.3 is a compiled extension (`pgqrs._pgqrs`); this library is pure Python.
REFERENCE = hasattr(pgqrs, "_pgqrs")
IMPL = "pgqrs" if REFERENCE else "this"
IMPL_VERSION = (
    f"pgqrs {metadata.version('pgqrs')}" if REFERENCE else f"pgqrs-py {pgqrs.__version__}"
)
QUEUE = "bench"
STOP_TIMEOUT = 30.0


def config(target: Target) -> Any:
    if target.backend == "postgres":
        cfg = pgqrs.Config(target.dsn, schema=target.schema)
    else:
        cfg = pgqrs.Config(target.dsn)
    if target.backend == "s3":  # Durable mode, the default: every write is one upload
        cfg.s3_cache_dir = target.notes["s3_cache_dir"]
    # None disables the limiter on both libraries (pgqrs 0.15.3 defaults to 1000/s, burst 50).
    cfg.max_enqueue_per_second = None
    cfg.max_enqueue_burst = None
    return cfg


async def close(store: Any) -> None:
    # pgqrs 0.15.3's Store has no close(); its pool goes with the process.
    closer = getattr(store, "close", None)
    if closer is not None:
        await closer()


@asynccontextmanager
async def installed(target: Target) -> AsyncIterator[Any]:
    store = await pgqrs.connect_with(config(target))
    try:
        await pgqrs.admin(store).install()
        yield store
    finally:
        await close(store)


async def stop_loops(consumers: list[Any], tasks: list[asyncio.Task[Any]]) -> None:
    """Interrupt every poll loop (both libraries have `interrupt()`) and wait for it to end.

    Not timed. pgqrs 0.15.3 refuses to interrupt a worker whose loop has not reached Polling
    yet (a loop that found the work already done before it started), so each loop is first
    awaited into Polling. Each loop must end with the library's "worker interrupted" error;
    anything else is a failure of the run.
    """
    for consumer, task in zip(consumers, tasks, strict=True):
        await wait_polling(consumer, task)
        if not task.done():
            await consumer.interrupt()
    done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
    for task in pending:
        task.cancel()
    if pending:
        raise RuntimeError(f"{len(pending)} poll loop(s) ignored interrupt() for {STOP_TIMEOUT}s")
    for task in done:
        error = task.exception()
        if error is None or "interrupted" not in str(error):
            raise RuntimeError(f"poll loop ended with {error!r}, expected an interrupt")


def label(status: Any) -> str:
    """The member name of a status enum: pgqrs 0.15.3's native enums have no `.name`."""
    return str(getattr(status, "name", None) or str(status).rsplit(".", 1)[-1])


async def wait_polling(consumer: Any, task: asyncio.Task[Any], deadline: float = 10.0) -> None:
    """Until the consumer's poll loop has started (its status reads Polling) or has ended."""
    end = time.perf_counter() + deadline
    while not task.done() and label(await consumer.status()) != "Polling":
        if time.perf_counter() > end:
            raise RuntimeError("the poll loop did not start")
        await asyncio.sleep(0.005)


async def fill(store: Any, count: int, chunk: int = 100) -> int:
    """Enqueue `count` messages through the API (not timed); return the queue id."""
    queue = await store.queue(QUEUE)
    producer = await store.producer(QUEUE)
    for first in range(0, count, chunk):
        last = min(first + chunk, count)
        await pgqrs.enqueue_batch(producer, [bench_config.payload(n) for n in range(first, last)])
    return int(queue.id)


async def check_drained(store: Any, seen: list[int], count: int) -> None:
    if len(seen) != count or len(set(seen)) != count:
        raise RuntimeError(f"handled {len(seen)} messages ({len(set(seen))} distinct), not {count}")
    left = await (await store.get_messages()).count()
    if left:
        raise RuntimeError(f"{left} messages were not archived")


async def drain_explicitly(workers: list[Any], batch: int, seen: list[int]) -> float:
    """Each consumer loops dequeue(batch) + archive_many until a claim comes back empty; the
    seconds until the last has archived its last batch."""

    async def run(consumer: Any) -> None:
        while messages := await consumer.dequeue(batch):
            ids = [m.id for m in messages]
            seen.extend(ids)
            if not all(await consumer.archive_many(ids)):
                raise RuntimeError("archive_many lost a message it owned")

    started = time.perf_counter()
    await asyncio.gather(*(run(c) for c in workers))
    return time.perf_counter() - started


# -- scenarios ------------------------------------------------------------------------------


async def enqueue_single(target: Target, s: dict[str, Any]) -> dict[str, Any]:
    count = s["enqueue_single"]
    async with installed(target) as store:
        await store.queue(QUEUE)
        producer = await store.producer(QUEUE)
        latencies = []
        started = time.perf_counter()
        for n in range(count):
            t0 = time.perf_counter()
            await producer.enqueue(bench_config.payload(n))
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        if await (await store.get_messages()).count() != count:
            raise RuntimeError("not every message was stored")
    return support.result(
        "enqueue_single",
        IMPL,
        target.backend,
        {"messages": count},
        count,
        elapsed,
        latencies=latencies,
    )


async def enqueue_batch(target: Target, s: dict[str, Any]) -> dict[str, Any]:
    count, size = s["enqueue_batch"], s["enqueue_batch_size"]
    batches = bench_config.payload_batches(count, size)
    async with installed(target) as store:
        await store.queue(QUEUE)
        producer = await store.producer(QUEUE)
        latencies = []
        ids: list[int] = []
        started = time.perf_counter()
        for batch in batches:
            t0 = time.perf_counter()
            ids.extend(await pgqrs.enqueue_batch(producer, batch))
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        if len(set(ids)) != count or await (await store.get_messages()).count() != count:
            raise RuntimeError("not every message was stored")
    return support.result(
        "enqueue_batch",
        IMPL,
        target.backend,
        {"batch": size, "messages": count},
        count,
        elapsed,
        latencies=latencies,
    )


async def drain(
    target: Target, s: dict[str, Any], consumers: int, batch: int, mode: str
) -> dict[str, Any]:
    """Drain a backlog with `consumers` consumers of one store claiming `batch` at a time.

    explicit: each consumer loops dequeue(batch) + archive_many until a claim comes back empty;
    the clock stops when the last consumer has archived its last batch.
    poll: one poll loop (handle_batch) per consumer; the clock stops when the handler has seen
    the last message (its archive follows, one batch out of count/batch, untimed).
    """
    count = s["drain"]
    params = {"consumers": consumers, "batch": batch, "mode": mode, "messages": count}
    async with installed(target) as store:
        await fill(store, count)
        workers = [await store.consumer(QUEUE) for _ in range(consumers)]
        seen: list[int] = []
        if mode == "explicit":
            elapsed = await drain_explicitly(workers, batch, seen)
        elif mode == "poll":
            drained = asyncio.Event()

            async def handler(messages: list[Any]) -> None:
                seen.extend(m.id for m in messages)
                if len(seen) >= count:
                    drained.set()

            started = time.perf_counter()
            tasks = [
                asyncio.create_task(
                    pgqrs.dequeue().worker(c).batch(batch).handle_batch(handler).poll(store)
                )
                for c in workers
            ]
            try:
                await asyncio.wait_for(drained.wait(), 600)
            finally:
                elapsed = time.perf_counter() - started
                await stop_loops(workers, tasks)
        else:
            raise ValueError(f"unknown drain mode {mode!r}")
        await check_drained(store, seen, count)
    return support.result("drain", IMPL, target.backend, params, count, elapsed)


async def capacity(target: Target, s: dict[str, Any], consumers: int, batch: int) -> dict[str, Any]:
    """A producer and `consumers` consumers in one process on one store (issue 16): the
    producer enqueues `capacity` messages with pgqrs.enqueue_batch in chunks of
    CAPACITY_CHUNK as fast as it can, while each consumer loops dequeue(batch) +
    archive_many; a consumer whose claim comes back empty before every message has been
    claimed sleeps 1 ms and claims again (the same explicit loop on both libraries: only API
    both have). The clock starts before the first enqueue and stops when the last message
    has been archived."""
    count, chunk = s["capacity"], bench_config.CAPACITY_CHUNK
    params = {"consumers": consumers, "batch": batch, "messages": count}
    async with installed(target) as store:
        await store.queue(QUEUE)
        producer = await store.producer(QUEUE)
        workers = [await store.consumer(QUEUE) for _ in range(consumers)]
        seen: list[int] = []

        async def produce() -> None:
            for first in range(0, count, chunk):
                last = min(first + chunk, count)
                payloads = [bench_config.payload(n) for n in range(first, last)]
                await pgqrs.enqueue_batch(producer, payloads)

        async def consume(consumer: Any) -> None:
            while len(seen) < count:
                messages = await consumer.dequeue(batch)
                if not messages:
                    await asyncio.sleep(0.001)
                    continue
                ids = [m.id for m in messages]
                seen.extend(ids)
                if not all(await consumer.archive_many(ids)):
                    raise RuntimeError("archive_many lost a message it owned")

        started = time.perf_counter()
        async with asyncio.timeout(600), asyncio.TaskGroup() as group:
            group.create_task(produce())
            for consumer in workers:
                group.create_task(consume(consumer))
        elapsed = time.perf_counter() - started
        await check_drained(store, seen, count)
    return support.result("capacity", IMPL, target.backend, params, count, elapsed)


async def e2e_latency(target: Target, s: dict[str, Any]) -> dict[str, Any]:
    """A producer paced at `rate` messages/s feeds one poll-loop consumer at default settings.

    Latency = handler start minus the producer's clock reading just before `enqueue()`, both
    from `time.perf_counter()` in this process. The producer and the consumer use separate
    Store objects (separate connections), as separate services would, so an in-process
    shortcut inside one Store does not count. A few warm-up messages go first, unmeasured.
    """
    rate, duration, warmup = s["e2e_rate"], s["e2e_seconds"], s["e2e_warmup"]
    count = round(rate * duration)
    params = {"rate": rate, "seconds": duration, "stores": "separate"}
    async with installed(target) as consumer_store:
        await consumer_store.queue(QUEUE)
        producer_store = await pgqrs.connect_with(config(target))
        try:
            producer = await producer_store.producer(QUEUE)
            consumer = await consumer_store.consumer(QUEUE)
            latencies: list[float] = []
            handled = 0
            goal = warmup
            reached = asyncio.Event()

            async def handler(message: Any) -> None:
                nonlocal handled
                now = time.perf_counter()
                body = message.payload
                if not body["warm"]:
                    latencies.append(now - body["t"])
                handled += 1
                if handled >= goal:
                    reached.set()

            async def send(n: int, warm: bool) -> None:
                started = time.perf_counter()
                for i in range(n):
                    delay = started + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await producer.enqueue({"n": i, "warm": warm, "t": time.perf_counter()})

            task = asyncio.create_task(
                pgqrs.dequeue().worker(consumer).handle(handler).poll(consumer_store)
            )
            try:
                await wait_polling(consumer, task)
                await send(warmup, True)
                await asyncio.wait_for(reached.wait(), 30)
                reached.clear()
                goal = warmup + count
                started = time.perf_counter()
                await send(count, False)
                sent = time.perf_counter() - started
                await asyncio.wait_for(reached.wait(), 30)
            finally:
                await stop_loops([consumer], [task])
        finally:
            await close(producer_store)
    if len(latencies) != count:
        raise RuntimeError(f"{len(latencies)} of {count} messages reached the handler")
    return support.result(
        "e2e_latency", IMPL, target.backend, params, count, sent, latencies=latencies
    )


def three_step_workflow(executed: Any) -> Any:
    """The benchmark workflow; `executed[run id, step] += 1` counts each step's executions
    (a Counter, or a `StepTally` where per-run keys would grow the memory being measured)."""

    @step
    async def reserve(run: Any, order: dict[str, int]) -> dict[str, int]:
        executed[run.id(), "reserve"] += 1
        return {"order": order["order"], "items": 3}

    @step
    async def charge(run: Any, reservation: dict[str, int]) -> dict[str, int]:
        executed[run.id(), "charge"] += 1
        return {**reservation, "paid": reservation["items"] * 10}

    @step
    async def ship(run: Any, payment: dict[str, int]) -> str:
        executed[run.id(), "ship"] += 1
        return f"order {payment['order']} shipped"

    @workflow(name="bench_flow")
    async def flow(run: Any, order: dict[str, int]) -> str:
        return await ship(run, await charge(run, await reserve(run, order)))

    return flow


async def workflow_runs(target: Target, s: dict[str, Any]) -> dict[str, Any]:
    """`runs` triggered runs (not timed) of a 3-step decorated workflow, executed by `workers`
    poll loops through `handle_workflow` at default settings; the clock runs from starting the
    loops until the last run has returned from the workflow function."""
    runs, workers = s["workflow_runs"], s["workflow_workers"]
    async with installed(target) as store:
        await pgqrs.workflow().name("bench_flow").store(store).create()
        for order in range(runs):
            await (
                pgqrs.workflow().name("bench_flow").store(store).trigger({"order": order}).execute()
            )
        executed: Counter[tuple[int, str]] = Counter()
        flow = three_step_workflow(executed)
        finished = asyncio.Event()
        done = 0

        async def handler(run: Any) -> None:
            nonlocal done
            await flow(run)
            done += 1
            if done >= runs:
                finished.set()

        consumers = [await store.consumer("bench_flow") for _ in range(workers)]
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(pgqrs.dequeue().worker(c).handle_workflow(handler).poll(store))
            for c in consumers
        ]
        try:
            await asyncio.wait_for(finished.wait(), 600)
        finally:
            elapsed = time.perf_counter() - started
            await stop_loops(consumers, tasks)
        records = await (await store.get_workflow_runs()).list()
        if len(records) != runs or any(label(r.status) != "Success" for r in records):
            raise RuntimeError("not every run ended SUCCESS")
        if len(executed) != 3 * runs or set(executed.values()) != {1}:
            raise RuntimeError("a step was skipped or executed more than once")
    return support.result(
        "workflow", IMPL, target.backend, {"workers": workers, "steps": 3}, runs, elapsed
    )


async def backlog_scaling(target: Target, s: dict[str, Any], size: int) -> dict[str, Any]:
    """Claim latency with `size` visible messages and `size` archived ones beside them.

    The rows are bulk-loaded with one INSERT ... SELECT (support.bulk_load, not timed). Each
    sample is one dequeue(batch_size=10) + archive_many; after a few warm-up claims, up to
    `backlog_samples` samples or `backlog_budget_s` seconds (at least 20 samples when the
    budget runs out first; the sample count is reported).
    """
    samples, budget = s["backlog_samples"], s["backlog_budget_s"]
    async with installed(target) as store:
        queue = await store.queue(QUEUE)
        load_s = support.bulk_load(target, int(queue.id), visible=size, archived=size)
        consumer = await store.consumer(QUEUE)
        latencies: list[float] = []

        async def claim() -> float:
            t0 = time.perf_counter()
            messages = await consumer.dequeue(bench_config.BACKLOG_CLAIM)
            oks = await consumer.archive_many([m.id for m in messages])
            took = time.perf_counter() - t0
            if len(messages) != bench_config.BACKLOG_CLAIM or not all(oks):
                raise RuntimeError(f"claimed {len(messages)} of {bench_config.BACKLOG_CLAIM}")
            return took

        for _ in range(bench_config.BACKLOG_WARMUP):
            await claim()
        started = time.perf_counter()
        while len(latencies) < samples:
            latencies.append(await claim())
            if time.perf_counter() - started > budget and len(latencies) >= min(20, samples):
                break
        elapsed = time.perf_counter() - started
    return support.result(
        "backlog_scaling",
        IMPL,
        target.backend,
        {"visible": size, "archived": size},
        len(latencies) * bench_config.BACKLOG_CLAIM,
        elapsed,
        latencies=latencies,
        samples=len(latencies),
        load_seconds=round(load_s, 1),
    )


async def memory(target: Target, s: dict[str, Any]) -> dict[str, Any]:
    """RSS of this process while one poll loop (handle_batch, batch `memory_batch`) drains a
    bulk-loaded backlog; sampled from /proc every 50 ms on a thread."""
    count, batch = s["memory_messages"], s["memory_batch"]
    async with installed(target) as store:
        queue = await store.queue(QUEUE)
        support.bulk_load(target, int(queue.id), visible=count, archived=0)
        consumer = await store.consumer(QUEUE)
        progress = [0]
        drained = asyncio.Event()

        async def handler(messages: list[Any]) -> None:
            progress[0] += len(messages)
            if progress[0] >= count:
                drained.set()

        with support.RssSampler(progress) as sampler:
            started = time.perf_counter()
            task = asyncio.create_task(
                pgqrs.dequeue().worker(consumer).batch(batch).handle_batch(handler).poll(store)
            )
            try:
                await asyncio.wait_for(drained.wait(), 1800)
            finally:
                elapsed = time.perf_counter() - started
                await stop_loops([consumer], [task])
        if progress[0] != count or support.pending_count(target, int(queue.id)):
            raise RuntimeError(f"handled {progress[0]} of {count}, or some were not archived")
    return support.result(
        "memory",
        IMPL,
        target.backend,
        {"batch": batch, "consumers": 1},
        count,
        elapsed,
        **sampler.summary(count),
    )


class StepTally:
    """`tally[key] += 1` that keeps only the total: counting per run would itself grow the
    memory the scenario measures."""

    def __init__(self) -> None:
        self.total = 0

    def __getitem__(self, key: Any) -> int:
        return 0

    def __setitem__(self, key: Any, value: int) -> None:
        self.total += value


async def workflow_memory(target: Target, s: dict[str, Any]) -> dict[str, Any]:
    """RSS of this process while one workflow worker (handle_workflow, the 3-step workflow)
    finishes `workflow_memory_runs` runs whose triggers were enqueued in bulk (not timed):
    memory must stay flat in the number of runs finished (issue 10, defect 8)."""
    runs = s["workflow_memory_runs"]
    async with installed(target) as store:
        await pgqrs.workflow().name("bench_flow").store(store).create()
        producer = await store.producer("bench_flow")
        for first in range(0, runs, 500):
            last = min(first + 500, runs)
            await producer.enqueue_batch([{"input": {"order": n}} for n in range(first, last)])
        executed = StepTally()
        flow = three_step_workflow(executed)
        progress = [0]
        finished = asyncio.Event()

        async def handler(run: Any) -> None:
            await flow(run)
            progress[0] += 1
            if progress[0] >= runs:
                finished.set()

        consumer = await store.consumer("bench_flow")
        with support.RssSampler(progress) as sampler:
            started = time.perf_counter()
            task = asyncio.create_task(
                pgqrs.dequeue().worker(consumer).handle_workflow(handler).poll(store)
            )
            try:
                await asyncio.wait_for(finished.wait(), 1800)
            finally:
                elapsed = time.perf_counter() - started
                await stop_loops([consumer], [task])
        if executed.total != 3 * runs:
            raise RuntimeError(f"{executed.total} step executions for {runs} runs of 3 steps")
    return support.result(
        "workflow_memory",
        IMPL,
        target.backend,
        {"workers": 1, "steps": 3},
        runs,
        elapsed,
        **sampler.summary(runs),
    )


async def sync_enqueue(target: Target, s: dict[str, Any]) -> dict[str, Any]:
    """Single-message enqueues through the blocking API (`pgqrs.sync`, issue 12) against the
    same enqueues awaited, side by side in one process on one database: an async store and a
    sync store, rounds of `sync_enqueue_round` messages alternating between the two (which
    goes first alternates too), so both meet the same load and the same table. The line's
    msgs/s and latencies are the sync side's; `async_msgs_per_s` and `sync_over_async` (sync
    time over async time; target <= 1.3) compare. This library only: pgqrs 0.15.3 has no
    blocking API. The sync calls block this loop's thread, which is how a sync program's
    thread waits."""
    import pgqrs.sync  # this library's module, absent from pgqrs 0.15.3

    count, size = s["sync_enqueue"], s["sync_enqueue_round"]
    timed: dict[str, float] = {"sync": 0.0, "async": 0.0}
    latencies: dict[str, list[float]] = {"sync": [], "async": []}
    async with installed(target) as store:
        await store.queue(QUEUE)
        producer = await store.producer(QUEUE)
        blocking = pgqrs.sync.connect_with(config(target))
        try:
            sync_producer = blocking.producer(QUEUE)

            async def round_of(side: str, first: int, n: int) -> None:
                started = time.perf_counter()
                for i in range(first, first + n):
                    t0 = time.perf_counter()
                    if side == "sync":
                        sync_producer.enqueue(bench_config.payload(i))
                    else:
                        await producer.enqueue(bench_config.payload(i))
                    latencies[side].append(time.perf_counter() - t0)
                timed[side] += time.perf_counter() - started

            for turn, first in enumerate(range(0, count, size)):
                n = min(size, count - first)
                order = ("async", "sync") if turn % 2 == 0 else ("sync", "async")
                for side in order:
                    await round_of(side, first, n)
            sync_producer.shutdown()
        finally:
            blocking.close()
        if await (await store.get_messages()).count() != 2 * count:
            raise RuntimeError("not every message was stored")
    return support.result(
        "sync_enqueue",
        IMPL,
        target.backend,
        {"messages": count, "round": size},
        count,
        timed["sync"],
        latencies=latencies["sync"],
        async_msgs_per_s=round(count / timed["async"], 1),
        async_latency_ms=support.latency_ms(latencies["async"]),
        sync_over_async=round(timed["sync"] / timed["async"], 3),
    )


async def backlog_priority(target: Target, s: dict[str, Any], size: int) -> dict[str, Any]:
    """backlog_scaling with mixed priorities (issue 12): `size` visible messages whose
    priorities cycle through -3..3 in enqueue order, and `size` archived ones. Each sample is
    one dequeue(batch_size=10) + archive_many; claims must come in claim order (priority
    descending, then oldest first), which is checked. This library only: pgqrs 0.15.3 has no
    priorities."""
    samples, budget = s["backlog_samples"], s["backlog_budget_s"]
    kinds = bench_config.BACKLOG_PRIORITIES
    async with installed(target) as store:
        queue = await store.queue(QUEUE)
        load_s = support.bulk_load(
            target, int(queue.id), visible=size, archived=size, priorities=kinds
        )
        consumer = await store.consumer(QUEUE)
        latencies: list[float] = []
        last = (kinds, 0)  # (priority, row number) of the last message claimed

        async def claim() -> float:
            nonlocal last
            t0 = time.perf_counter()
            messages = await consumer.dequeue(bench_config.BACKLOG_CLAIM)
            oks = await consumer.archive_many([m.id for m in messages])
            took = time.perf_counter() - t0
            if len(messages) != bench_config.BACKLOG_CLAIM or not all(oks):
                raise RuntimeError(f"claimed {len(messages)} of {bench_config.BACKLOG_CLAIM}")
            for m in messages:  # priority = n % kinds - kinds // 2, higher first, then by n
                n = int(m.payload["n"])
                here = (n % kinds - kinds // 2, n)
                if (-here[0], here[1]) <= (-last[0], last[1]):
                    raise RuntimeError(f"claim order broken: {here} after {last}")
                last = here
            return took

        for _ in range(bench_config.BACKLOG_WARMUP):
            await claim()
        started = time.perf_counter()
        while len(latencies) < samples:
            latencies.append(await claim())
            if time.perf_counter() - started > budget and len(latencies) >= min(20, samples):
                break
        elapsed = time.perf_counter() - started
    return support.result(
        "backlog_priority",
        IMPL,
        target.backend,
        {"visible": size, "archived": size, "priorities": kinds},
        len(latencies) * bench_config.BACKLOG_CLAIM,
        elapsed,
        latencies=latencies,
        samples=len(latencies),
        load_seconds=round(load_s, 1),
    )


async def enqueue_dedup(target: Target, s: dict[str, Any]) -> dict[str, Any]:
    """Enqueues with deduplication keys against the same enqueues without (issue 12), side by
    side in one process on one queue: rounds of `enqueue_dedup_round` single enqueues
    alternating between plain and keyed (a new key each), then the same for batches of
    `enqueue_dedup_batch`, then every key enqueued again (all duplicates: nothing written). The
    line's msgs/s and latencies are the keyed single enqueues'; `plain_msgs_per_s`,
    `keyed_over_plain` (time ratio, single), `batch_keyed_over_plain` and
    `duplicate_over_plain` compare. This library only: pgqrs 0.15.3 has no keys."""
    count, size, batch = s["enqueue_dedup"], s["enqueue_dedup_round"], s["enqueue_dedup_batch"]
    timed: dict[str, float] = dict.fromkeys(
        ("plain", "keyed", "plain_batch", "keyed_batch", "duplicate"), 0.0
    )
    latencies: list[float] = []
    async with installed(target) as store:
        await store.queue(QUEUE)
        producer = await store.producer(QUEUE)

        async def single(side: str, first: int, n: int) -> None:
            started = time.perf_counter()
            for i in range(first, first + n):
                if side == "plain":
                    await producer.enqueue(bench_config.payload(i))
                else:
                    t0 = time.perf_counter()
                    found = await producer.enqueue(bench_config.payload(i), dedup_key=f"k{i}")
                    latencies.append(time.perf_counter() - t0)
                    if side == "keyed" and found.duplicate:
                        raise RuntimeError(f"key k{i} was new, not a duplicate")
                    if side == "duplicate" and not found.duplicate:
                        raise RuntimeError(f"key k{i} was enqueued twice")
            timed[side] += time.perf_counter() - started

        async def batches(side: str, first: int, n: int) -> None:
            started = time.perf_counter()
            for lo in range(first, first + n, batch):
                hi = min(lo + batch, first + n)
                payloads = [bench_config.payload(i) for i in range(lo, hi)]
                if side == "plain_batch":
                    await producer.enqueue_batch(payloads)
                else:
                    keys = [f"b{i}" for i in range(lo, hi)]
                    found = await producer.enqueue_batch(payloads, dedup_keys=keys)
                    if any(i.duplicate for i in found):
                        raise RuntimeError("a new key was answered as a duplicate")
            timed[side] += time.perf_counter() - started

        for turn, first in enumerate(range(0, count, size)):
            n = min(size, count - first)
            order = ("plain", "keyed") if turn % 2 == 0 else ("keyed", "plain")
            for side in order:
                await single(side, first, n)
        keyed_latencies = list(latencies)
        for turn, first in enumerate(range(0, count, size * batch // 10)):
            n = min(size * batch // 10, count - first)
            order = (
                ("plain_batch", "keyed_batch") if turn % 2 == 0 else ("keyed_batch", "plain_batch")
            )
            for side in order:
                await batches(side, first, n)
        await single("duplicate", 0, count)
        stored = await (await store.get_messages()).count()
        if stored != 4 * count:
            raise RuntimeError(f"{stored} messages stored, not {4 * count}")
    return support.result(
        "enqueue_dedup",
        IMPL,
        target.backend,
        {"messages": count, "round": size, "batch": batch},
        count,
        timed["keyed"],
        latencies=keyed_latencies,
        plain_msgs_per_s=round(count / timed["plain"], 1),
        keyed_over_plain=round(timed["keyed"] / timed["plain"], 3),
        batch_keyed_over_plain=round(timed["keyed_batch"] / timed["plain_batch"], 3),
        duplicate_over_plain=round(timed["duplicate"] / timed["plain"], 3),
    )


# drain_limited: the limits configured on the limited queue, none of them binding (issue 13).
LIMITED_KEYS = ("k0", "k1", "k2")
NOT_BINDING = 1_000_000


async def drain_limited(
    target: Target, s: dict[str, Any], batch: int, limits: str
) -> dict[str, Any]:
    """Drain throughput on a queue with limits that do not bind against a queue without
    (issue 13), side by side in one process on one database: two queues of `drain_limited`
    messages each (keys cycling through LIMITED_KEYS); the limited one has a queue-wide
    max_in_flight (`limits` "one"), also a rate ("queue"), and also a max_in_flight per key
    ("keys"), all far above what the drain reaches.
    Four consumers drain each queue explicitly (dequeue(B) + archive_many), in
    `drain_limited_rounds` rounds alternating which queue goes first. The line's msgs/s are the
    limited queue's; `plain_msgs_per_s` and `limited_over_plain` (throughput ratio, target
    >= 0.8) compare. This library only: pgqrs 0.15.3 has no limits."""
    count, rounds = s["drain_limited"], s["drain_limited_rounds"]
    timed = {"plain": 0.0, "limited": 0.0}
    async with installed(target) as store:
        admin = pgqrs.admin(store)
        for name in ("plain", "limited"):
            await store.queue(name)
        rate = None if limits == "one" else NOT_BINDING
        await admin.set_queue_limits("limited", max_in_flight=NOT_BINDING, rate_per_second=rate)
        for key in LIMITED_KEYS if limits == "keys" else ():
            await admin.set_key_limits("limited", key, max_in_flight=NOT_BINDING)

        async def one_drain(name: str) -> None:
            producer = await store.producer(name)
            for first in range(0, count, 100):
                for key in LIMITED_KEYS:
                    payloads = [
                        bench_config.payload(n) for n in range(first, min(first + 100, count))
                    ]
                    await producer.enqueue_batch(payloads[LIMITED_KEYS.index(key) :: 3], key=key)
            workers = [await store.consumer(name) for _ in range(4)]
            seen: list[int] = []
            timed[name] += await drain_explicitly(workers, batch, seen)
            if len(set(seen)) != count:
                raise RuntimeError(f"{name}: drained {len(set(seen))} messages, not {count}")

        for turn in range(rounds):
            for name in ("plain", "limited") if turn % 2 == 0 else ("limited", "plain"):
                await one_drain(name)
    total = count * rounds
    return support.result(
        "drain_limited",
        IMPL,
        target.backend,
        {"consumers": 4, "batch": batch, "limits": limits, "messages": count, "rounds": rounds},
        total,
        timed["limited"],
        plain_msgs_per_s=round(total / timed["plain"], 1),
        limited_over_plain=round(timed["plain"] / timed["limited"], 3),
    )


SCENARIOS = bench_config.SCENARIOS


def cases(scenario: str, s: dict[str, Any]) -> list[Callable[[Target], Any]]:
    """The cases of one scenario, each a coroutine function of a fresh target."""
    if scenario == "enqueue_single":
        return [lambda t: enqueue_single(t, s)]
    if scenario == "enqueue_batch":
        return [lambda t: enqueue_batch(t, s)]
    if scenario == "drain":
        return [
            lambda t, c=c, b=b, m=m: drain(t, s, c, b, m)
            for m in s["drain_modes"]
            for c in s["drain_consumers"]
            for b in s["drain_batches"]
        ]
    if scenario == "capacity":
        return [
            lambda t, c=c, b=b: capacity(t, s, c, b)
            for c in s["capacity_consumers"]
            for b in s["capacity_batches"]
        ]
    if scenario == "e2e_latency":
        return [lambda t: e2e_latency(t, s)]
    if scenario == "workflow":
        return [lambda t: workflow_runs(t, s)]
    if scenario == "backlog_scaling":
        return [lambda t, n=n: backlog_scaling(t, s, n) for n in s["backlog_sizes"]]
    if scenario == "backlog_priority":
        return [lambda t, n=n: backlog_priority(t, s, n) for n in s["backlog_sizes"]]
    if scenario == "enqueue_dedup":
        return [lambda t: enqueue_dedup(t, s)]
    if scenario == "memory":
        return [lambda t: memory(t, s)]
    if scenario == "workflow_memory":
        return [lambda t: workflow_memory(t, s)]
    if scenario == "sync_enqueue":
        return [lambda t: sync_enqueue(t, s)]
    if scenario == "drain_limited":
        return [
            lambda t, b=b, kind=kind: drain_limited(t, s, b, kind)
            for kind in s["drain_limited_kinds"]
            for b in s["drain_limited_batches"]
        ]
    raise ValueError(f"unknown scenario {scenario!r}")


async def main(argv: list[str] | None = None) -> None:
    args = bench_config.parse_args(argv, SCENARIOS, __doc__)
    for backend in args.backend:
        if REFERENCE and backend not in bench_config.REFERENCE_BACKENDS:
            print(f"skipped: {IMPL_VERSION} has no {backend} backend here", file=sys.stderr)
            continue
        for scenario in args.scenario:
            if not bench_config.runs_on(scenario, backend):
                print(f"skipped: {scenario} does not run on {backend}", file=sys.stderr)
                continue
            if REFERENCE and scenario in bench_config.THIS_ONLY_SCENARIOS:
                print(f"skipped: {IMPL_VERSION} has no {scenario} API", file=sys.stderr)
                continue
            for case in cases(scenario, args.sizes(backend)):
                with support.fresh_target(backend, args.dsn) as target:
                    line = await case(target)
                line["impl_version"] = IMPL_VERSION
                support.emit(line)


if __name__ == "__main__":
    asyncio.run(main())
