"""Each page shows the data of a real store (every backend), whole or as its live fragment."""

from __future__ import annotations

import httpx

import pgqrs
from pgqrs.dashboard.throughput import Throughput
from tests.support.clocks import OffsetClock

from .support import cell, row, seed


async def test_queues_page_counts_every_state(
    reader: httpx.AsyncClient, store: pgqrs.Store
) -> None:
    seeded = await seed(store)
    html = (await reader.get("/queues")).text
    assert (cell(html, "emails", "pending"), cell(html, "emails", "in-flight")) == (2, 1)
    assert cell(html, "emails", "delayed") == 1
    assert (cell(html, "payments", "dead"), cell(html, "payments", "archived")) == (1, 0)
    assert seeded.dead_letter_id > 0


async def test_fragment_is_the_live_part_only(
    reader: httpx.AsyncClient, store: pgqrs.Store
) -> None:
    await store.queue("jobs")
    producer = await store.producer("jobs")
    await producer.enqueue({"n": 1})
    whole = await reader.get("/queues")
    assert "<html" in whole.text
    assert 'id="live"' in whole.text
    await producer.enqueue({"n": 2})
    part = await reader.get("/queues", params={"partial": "1"})
    assert part.status_code == 200
    assert "<html" not in part.text
    assert "<nav" not in part.text
    assert cell(part.text, "jobs", "pending") == 2


async def test_throughput_chart_from_samples(reader: httpx.AsyncClient, store: pgqrs.Store) -> None:
    """Two refreshes ten seconds apart, twenty messages handled in between: 2/s processed."""
    now = [1000.0]
    app = reader._transport.app  # type: ignore[attr-defined]
    app.state.dashboard.throughput = Throughput(clock=lambda: now[0])
    await store.queue("jobs")
    producer = await store.producer("jobs")
    first = (await reader.get("/queues")).text
    assert "collecting samples" in row(first, "queue", "jobs")
    await producer.enqueue_batch([{"n": i} for i in range(30)])
    consumer = await store.consumer("jobs")
    for message in await consumer.dequeue(20):
        assert await consumer.archive(message.id)
    now[0] += 10.0
    chart = row((await reader.get("/queues", params={"partial": "1"})).text, "queue", "jobs")
    assert "<svg" in chart
    assert 'class="processed"' in chart
    assert "2.0 processed/s, 3.0 enqueued/s now" in chart


async def test_workers_page(reader: httpx.AsyncClient, store: pgqrs.Store) -> None:
    await store.queue("jobs")
    consumer = await store.consumer("jobs", "resizer-7")
    await consumer.suspend()
    polling = await store.consumer("jobs", "resizer-8")
    html = (await reader.get("/workers")).text
    line = row(html, "worker", consumer.worker_id)
    assert "resizer-7" in line
    assert "jobs" in line
    assert "suspended" in line
    assert "ago" in line  # the last heartbeat
    assert "stale" not in row(html, "worker", polling.worker_id)
    # An hour later by the store's clock, three heartbeats are long missed.
    store.clock = OffsetClock(3600)
    later = row((await reader.get("/workers")).text, "worker", polling.worker_id)
    assert "stale" in later
    assert "1h00m ago" in later


async def test_dead_letters_page_read_only(reader: httpx.AsyncClient, store: pgqrs.Store) -> None:
    seeded = await seed(store)
    html = (await reader.get("/dead-letters")).text
    line = row(html, "message", seeded.dead_letter_id)
    assert "payments" in line
    assert "poison" in line
    assert "42" in line
    assert "ValueError: cannot handle {&#39;invoice&#39;: 42}" in line
    assert "data-replay" not in html
    assert "data-archive" not in html
    assert 'name="csrf"' not in html
    assert "Log in" not in html
    refused = await reader.post(f"/dead-letters/{seeded.dead_letter_id}/replay")
    assert refused.status_code in (404, 405)
    assert (await reader.post("/dead-letters/archive", data={"queue": "payments"})).status_code in (
        404,
        405,
    )
    assert (await reader.get("/login")).status_code == 404
    assert len(await pgqrs.admin(store).dlq_list("payments")) == 1


async def test_runs_page_filters(reader: httpx.AsyncClient, store: pgqrs.Store) -> None:
    seeded = await seed(store)
    every = (await reader.get("/runs")).text
    assert "checkout" in row(every, "run", seeded.run_id)
    assert every.count("<tr data-run=") == 2
    running = (await reader.get("/runs", params={"status": "RUNNING"})).text
    assert running.count("<tr data-run=") == 1
    assert "RUNNING" in row(running, "run", seeded.run_id)
    future = (await reader.get("/runs", params={"since": "2999-01-01T00:00"})).text
    assert "No runs match." in future
    unknown = await reader.get("/runs", params={"workflow": "nope"})
    assert unknown.status_code == 404
    assert "nope" in unknown.text
    bad = await reader.get("/runs", params={"since": "yesterday"})
    assert bad.status_code == 400


async def test_run_page_timeline(reader: httpx.AsyncClient, store: pgqrs.Store) -> None:
    seeded = await seed(store)
    html = (await reader.get(f"/runs/{seeded.run_id}")).text
    assert "Run " in html
    assert "checkout" in html
    reserve = row(html, "step", "reserve_stock")
    assert "SUCCESS" in reserve
    assert "reserved" in reserve
    charge = row(html, "step", "charge_card")
    assert "ERROR" in charge
    assert "card_declined" in charge
    assert 'class="num">1</td>' in charge  # one attempt
    assert "approved" in html
    assert "alice" in html
    assert "progress" in html
    assert "percent" in html
    missing = await reader.get("/runs/999999")
    assert missing.status_code == 404


async def test_schedules_and_limits_pages(reader: httpx.AsyncClient, store: pgqrs.Store) -> None:
    await seed(store)
    schedule = row((await reader.get("/schedules")).text, "schedule", "nightly-report")
    assert "0 3 * * *" in schedule
    assert "emails" in schedule
    assert "active" in schedule
    limits = row((await reader.get("/limits")).text, "limit", "payments/")
    assert "4" in limits
    assert "2.5" in limits
    assert "5" in limits


async def test_metrics_endpoint(reader: httpx.AsyncClient, store: pgqrs.Store) -> None:
    await store.queue("jobs")
    producer = await store.producer("jobs")
    await producer.enqueue({"n": 1})
    answer = await reader.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert 'queue="jobs"' in answer.text


async def test_home_redirects_to_queues(reader: httpx.AsyncClient) -> None:
    answer = await reader.get("/")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("/queues")
