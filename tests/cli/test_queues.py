"""`pgqrs queue create|list|metrics|delete|purge`."""

from __future__ import annotations

import pgqrs
from tests.support.cli import Cli


async def _leased_delayed_archived(store: pgqrs.Store) -> None:
    """jobs: 2 visible, 1 delayed, 1 leased, 1 archived."""
    producer = await store.producer("jobs")
    await producer.enqueue_batch([{"n": n} for n in range(4)])
    await producer.enqueue_delayed({"n": "later"}, 3600)
    consumer = await store.consumer("jobs")
    [done] = await consumer.dequeue()
    assert await consumer.archive(done.id)
    await consumer.dequeue()


def test_create_list_and_metrics(cli: Cli) -> None:
    created = cli.json("queue", "create", "jobs")
    assert created["queue_name"] == "jobs"
    assert cli.fails("queue", "create", "jobs") == "Queue 'jobs' already exists"
    assert cli.json("queue", "create", "jobs", "--exist-ok")["id"] == created["id"]
    cli.ok("queue", "create", "empty")
    cli.lib(_leased_delayed_archived)

    listed = {q["name"]: q for q in cli.json("queue", "list")}
    assert list(listed) == ["empty", "jobs"]
    jobs = listed["jobs"]
    counts = [
        jobs[k]
        for k in (
            "pending_messages",
            "delayed_messages",
            "locked_messages",
            "poison_messages",
            "archived_messages",
            "total_messages",
        )
    ]
    assert counts == [2, 1, 1, 0, 1, 5]
    assert jobs["oldest_pending_age_seconds"] >= 0
    assert listed["empty"]["oldest_pending_message"] is None
    assert listed["empty"]["oldest_pending_age_seconds"] is None
    metrics = cli.json("queue", "metrics", "jobs")
    del metrics["oldest_pending_age_seconds"], jobs["oldest_pending_age_seconds"]
    assert metrics == jobs

    table = cli.ok("queue", "list").stdout
    header = next(line for line in table.splitlines() if "Queue" in line).split()
    assert header == [
        "Queue", "Visible", "Delayed", "Leased", "Poison", "Archived", "Oldest", "visible"
    ]  # fmt: skip
    row = next(line for line in table.splitlines() if line.strip().startswith("jobs")).split()
    assert row[:6] == ["jobs", "2", "1", "1", "0", "1"]
    text = cli.ok("queue", "metrics", "jobs").stdout
    for label, value in (("visible", "2"), ("delayed", "1"), ("leased", "1"), ("archived", "1")):
        assert any(line.split()[:2] == [label, value] for line in text.splitlines())


def test_unknown_queue(cli: Cli) -> None:
    assert cli.fails("queue", "metrics", "nope") == "Queue 'nope' not found"
    assert cli.fails("queue", "delete", "nope") == "Queue 'nope' not found"
    assert cli.fails("queue", "purge", "nope", "--yes") == "Queue 'nope' not found"
    error = cli.fails("queue", "create", "bad name")
    assert error.startswith("Validation failed: invalid queue name 'bad name'")


def test_delete_refuses_a_queue_with_messages(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    cli.ok("send", "jobs", '{"a": 1}')
    error = cli.fails("queue", "delete", "jobs")
    assert error.startswith("Validation failed")
    assert "Purge data first" in error
    assert cli.json("queue", "purge", "jobs", "--yes") == {"queue": "jobs", "purged": 1}
    assert cli.json("queue", "delete", "jobs") == {"deleted": "jobs"}
    assert cli.json("queue", "list") == []
    assert "No queues yet" in cli.ok("queue", "list").stdout


def test_purge_asks_first(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    cli.ok("send", "jobs", '{"a": 1}')
    refused = cli("queue", "purge", "jobs", input="n\n")
    assert refused.exit_code == 1
    assert "Delete every message of queue 'jobs'?" in refused.stderr
    assert cli.json("queue", "metrics", "jobs")["total_messages"] == 1
    agreed = cli.ok("queue", "purge", "jobs", input="y\n")
    assert "Purged 1 message(s) from 'jobs'" in agreed.stdout
    assert cli.json("queue", "metrics", "jobs")["total_messages"] == 0
