"""`scrape(store)`: the database's gauges equal the admin's numbers; the process's counters move
when handlers run. Every backend; the text is read by prometheus_client's parser."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

import pgqrs
from pgqrs.observability import prometheus
from pgqrs.observability.prometheus import CONTENT_TYPE, scrape
from tests.observability.conftest import Scraped

MESSAGE_STATUSES = {
    "pending": "pending_messages",
    "delayed": "delayed_messages",
    "in_flight": "locked_messages",
    "dead_letter": "poison_messages",
}
WORKER_STATUSES = ("ready", "polling", "interrupted", "suspended", "stopped")


def unique(prefix: str) -> str:
    """A queue name of this test alone: the process counters are shared by every test."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def test_gauges_equal_the_admin_numbers(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    await store.queue("jobs")
    await store.queue("empty")
    producer = await store.producer("jobs")
    for n in range(4):
        await producer.enqueue({"n": n})
    await producer.enqueue_delayed({"n": "later"}, 3600)
    consumer = await store.consumer("jobs")
    held = await consumer.dequeue(1)  # in flight
    assert len(held) == 1
    await admin.update_queue("jobs", max_read_ct=1)
    dead = await consumer.dequeue(1)
    await consumer.release_messages([dead[0].id])  # delivered once: a dead letter now
    done = await consumer.dequeue(1)
    await consumer.archive(done[0].id)
    idle = await store.consumer("jobs")
    await idle.suspend()

    scraped = Scraped(await scrape(store))

    for queue in ("jobs", "empty"):
        metrics = await admin.queue_metrics(queue)
        for status, field in MESSAGE_STATUSES.items():
            assert scraped.value("pgqrs_queue_messages", queue=queue, status=status) == getattr(
                metrics, field
            ), (queue, status)
        archived = scraped.value("pgqrs_queue_archived_messages", queue=queue)
        assert archived == metrics.archived_messages
    jobs = await admin.queue_metrics("jobs")
    assert (jobs.pending_messages, jobs.delayed_messages, jobs.locked_messages) == (1, 1, 1)
    assert (jobs.poison_messages, jobs.archived_messages) == (1, 1)
    # The oldest pending message is not older than the test.
    assert 0 <= scraped.value("pgqrs_queue_oldest_pending_age_seconds", queue="jobs") < 60
    assert scraped.value("pgqrs_queue_oldest_pending_age_seconds", queue="empty") == 0

    health = await admin.worker_health_stats(15, group_by_queue=True)
    (workers,) = [h for h in health if h.queue_name == "jobs"]
    for status in WORKER_STATUSES:
        found = scraped.value("pgqrs_workers", queue="jobs", status=status)
        assert found == getattr(workers, f"{status}_workers"), status
    assert scraped.value("pgqrs_workers", queue="jobs", status="suspended") == 1
    assert scraped.value("pgqrs_workers", queue="jobs", status="ready") == 2  # producer too
    assert scraped.families["pgqrs_queue_messages"].type == "gauge"


async def test_a_deleted_queue_leaves_no_series(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    await store.queue("gone")
    assert ("pgqrs_queue_archived_messages", (("queue", "gone"),)) in Scraped(
        await scrape(store)
    ).samples
    await admin.delete_queue("gone")
    scraped = Scraped(await scrape(store))
    assert not [key for key in scraped.samples if ("queue", "gone") in key[1]]
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


async def test_counters_move_when_handlers_run(store: pgqrs.Store) -> None:
    queue = unique("counted")
    await store.queue(queue)
    await pgqrs.admin(store).update_queue(queue, max_read_ct=2)
    before = Scraped(await scrape(store))
    ok = await pgqrs.produce_batch(store, queue, ["a", "b"])
    consumer = await store.consumer(queue)

    async def handle(message: pgqrs.QueueMessage) -> None:
        if message.payload == "fail":
            raise ValueError("fail")

    for _ in ok:
        assert await pgqrs.dequeue().worker(consumer).handle(handle).execute(store) == 1
    await pgqrs.produce(store, queue, "fail")
    later = datetime.now(UTC)
    for _ in range(2):  # the second delivery is its last: a dead letter
        later += timedelta(minutes=5)  # past the backoff of the delivery before
        with pytest.raises(ValueError, match="fail"):
            await pgqrs.dequeue().worker(consumer).at(later).handle(handle).execute(store)

    after = Scraped(await scrape(store))

    def moved(name: str, **labels: str) -> float:
        return after.value(name, queue=queue, **labels) - before.value(name, queue=queue, **labels)

    assert moved("pgqrs_messages_claimed_total") == 4
    assert moved("pgqrs_messages_handled_total", outcome="archived") == 2
    assert moved("pgqrs_messages_handled_total", outcome="retried") == 1
    assert moved("pgqrs_messages_handled_total", outcome="dead_lettered") == 1
    assert moved("pgqrs_handler_duration_seconds_count") == 4
    assert moved("pgqrs_handler_duration_seconds_bucket", le="+Inf") == 4
    # End-to-end latency: the two archived messages and the dead letter.
    assert moved("pgqrs_message_latency_seconds_count") == 3
    assert after.families["pgqrs_messages_handled"].type == "counter"
    assert after.families["pgqrs_handler_duration_seconds"].type == "histogram"
    assert after.value("pgqrs_queue_messages", queue=queue, status="dead_letter") == 1


async def test_workflow_outcomes_are_counted(store: pgqrs.Store) -> None:
    name = unique("wf")

    async def flow(run: pgqrs.Run) -> int:
        if run.input == {"input": "fail"}:
            raise ValueError("fail")
        return 1

    before = Scraped(await scrape(store))
    await pgqrs.admin(store).create_workflow(name, "ok")
    await pgqrs.admin(store).create_workflow(name, "fail")
    consumer = await store.consumer(name)
    assert await pgqrs.dequeue().worker(consumer).handle_workflow(flow).execute(store) == 1
    with pytest.raises(ValueError, match="fail"):  # one-shot runs re-raise
        await pgqrs.dequeue().worker(consumer).handle_workflow(flow).execute(store)
    after = Scraped(await scrape(store))

    def moved(outcome: str) -> float:
        labels = {"queue": name, "outcome": outcome}
        return after.value("pgqrs_messages_handled_total", **labels) - before.value(
            "pgqrs_messages_handled_total", **labels
        )

    assert (moved("archived"), moved("retried")) == (1, 1)


def test_an_observer_that_fails_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    from pgqrs import instrument

    class Broken:
        def claimed(self, queue: str, count: int) -> None:
            raise RuntimeError("broken")

        def settled(self, *args: object) -> None:
            raise RuntimeError("broken")

    unregister = instrument.register(Broken())
    try:
        instrument.claimed("q", 1)
    finally:
        unregister()
    assert "instrumentation observer" in caplog.text
    assert prometheus.OBSERVER in instrument.observers
    assert not [o for o in instrument.observers if isinstance(o, Broken)]
