"""`pgqrs queue create|update|show|list|metrics|delete|purge`."""

from __future__ import annotations

import json

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


def test_payload_limits_are_set_shown_and_applied(cli: Cli) -> None:
    """Issue 12: a queue's own payload limits from the command line, for every producer."""
    created = cli.json("queue", "create", "docs", "--max-string-length", "4096", "--max-depth", "8")
    assert created["queue_name"] == "docs"
    shown = cli.json("queue", "show", "docs")
    assert shown["id"] == created["id"]
    assert shown["max_string_length"] == 4096
    assert shown["max_object_depth"] == 8
    assert shown["max_payload_size_bytes"] is None
    assert shown["effective"] == {
        "max_read_ct": {"value": 5, "source": "queue"},
        "max_payload_size_bytes": {"value": 1048576, "source": "config"},
        "max_string_length": {"value": 4096, "source": "queue"},
        "max_object_depth": {"value": 8, "source": "queue"},
    }
    text = cli.ok("queue", "show", "docs").stdout
    lines = {ln.split()[0]: ln.split(None, 1)[1].strip() for ln in text.splitlines()[1:] if ln}
    assert lines["max_string_length"] == "4096 (set on the queue)"
    assert lines["max_payload_size_bytes"] == "1048576 (Config, pgqrs's default)"

    cli.ok("send", "docs", json.dumps({"body": "x" * 4096}))  # past Config's 1024
    error = cli.fails("send", "docs", json.dumps({"body": "x" * 4097}))
    assert error.startswith("Validation failed: String length 4097 exceeds limit 4096 at $.body")
    assert "max_string_length = 4096 set on queue 'docs'" in error
    assert "pgqrs queue update docs --max-string-length N" in error

    # update: only what is given changes; `config` gives a limit back to each Config.
    updated = cli.json("queue", "update", "docs", "--max-string-length", "config")
    assert updated == {
        "queue_name": "docs",
        "max_read_ct": 5,
        "max_payload_size_bytes": None,
        "max_string_length": None,
        "max_object_depth": 8,
    }
    out = cli.ok("queue", "update", "docs", "--max-payload-bytes", "64", "--max-depth", "0")
    assert "Queue 'docs': max_payload_size_bytes = 64" in out.stdout
    assert "Queue 'docs': max_object_depth = 0" in out.stdout
    out = cli.ok("queue", "update", "docs", "--max-depth", "CONFIG")
    assert "Queue 'docs': max_object_depth from each producer's Config" in out.stdout
    error = cli.fails("send", "docs", json.dumps(["x" * 70]))
    assert error.startswith("Payload size 74 exceeds limit 64 (max_payload_size_bytes = 64 set")
    assert cli.json("queue", "metrics", "docs")["total_messages"] == 1


def test_bad_payload_limits_are_refused(cli: Cli) -> None:
    error = cli.fails("queue", "create", "docs", "--max-string-length", "0")
    assert error == "Validation failed: max_string_length must be between 1 and 2147483647, got 0"
    assert cli.json("queue", "list") == []  # nothing created
    cli.ok("queue", "create", "docs")
    error = cli.fails("queue", "update", "docs", "--max-depth", "-1")
    assert error.startswith("Validation failed: max_object_depth must be between 0 and")
    usage = cli("queue", "update", "docs", "--max-depth", "deep")
    assert usage.exit_code == 2
    assert "'deep' is neither a whole number nor 'config'" in usage.stderr
    usage = cli("queue", "update", "docs")
    assert usage.exit_code == 2
    assert "give at least one of --max-read-ct, --max-payload-bytes" in usage.stderr
    assert cli.fails("queue", "show", "nope") == "Queue 'nope' not found"
    assert cli.json("queue", "show", "docs")["max_string_length"] is None
