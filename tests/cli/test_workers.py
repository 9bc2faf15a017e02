"""`pgqrs worker list|health|reclaim|purge-stopped`."""

from __future__ import annotations

import pgqrs
from tests.support.cli import Cli


async def _workers(store: pgqrs.Store) -> dict[str, int]:
    """jobs: a consumer holding a message, a suspended one, a stopped one; mail: a producer."""
    admin = pgqrs.admin(store)
    await admin.create_queue("jobs")
    await admin.create_queue("mail")
    await pgqrs.produce(store, "jobs", {"n": 1})  # writes no worker row
    holding = await store.consumer("jobs", "holding")
    await holding.dequeue()
    suspended = await store.consumer("jobs", "suspended")
    await suspended.suspend()
    stopped = await store.consumer("jobs", "stopped")
    await stopped.shutdown()
    producer = await store.producer("mail", "mailer")
    return {
        "holding": holding.worker_id,
        "suspended": suspended.worker_id,
        "stopped": stopped.worker_id,
        "mailer": producer.worker_id,
    }


def test_list(cli: Cli) -> None:
    ids = cli.lib(_workers)
    running = cli.json("worker", "list")
    assert [(w["name"], w["status"], w["queue"]) for w in running] == [
        ("mailer", "ready", "mail"),
        ("suspended", "suspended", "jobs"),
        ("holding", "ready", "jobs"),
    ]
    assert running[0]["id"] == ids["mailer"]
    every = cli.json("worker", "list", "--all")
    assert len(every) == 4  # and the stopped consumer
    assert [w["name"] for w in cli.json("worker", "list", "--queue", "mail")] == ["mailer"]
    stopped = cli.json("worker", "list", "--status", "stopped")
    assert {w["id"] for w in stopped} >= {ids["stopped"]}
    assert all(w["status"] == "stopped" for w in stopped)
    table = cli.ok("worker", "list").stdout
    assert "holding" in table
    assert "stopped" not in table
    assert cli.fails("worker", "list", "--queue", "nope") == "Queue 'nope' not found"


def test_health_reclaim_and_purge(cli: Cli) -> None:
    cli.lib(_workers)
    health = {h["queue_name"]: h for h in cli.json("worker", "health")}
    jobs = health["jobs"]
    assert (jobs["total_workers"], jobs["ready_workers"], jobs["suspended_workers"]) == (3, 1, 1)
    assert jobs["stopped_workers"] == 1
    assert jobs["stale_workers"] == 0
    [overall] = cli.json("worker", "health", "--global")
    assert (overall["queue_name"], overall["total_workers"]) == ("Global", 4)
    stale = {h["queue_name"]: h for h in cli.json("worker", "health", "--timeout", "0")}
    assert stale["jobs"]["stale_workers"] == 1  # ready, silent since it registered
    assert "Interrupted" in cli.ok("worker", "health").stdout

    assert cli.json("worker", "reclaim", "--queue", "jobs") == {"released": 0}  # all fresh
    # The holding consumer's lease still runs: without --force its message would stay with it
    # until the lease ends (tests/conformance/test_recovery.py); the operator says it is dead.
    forced = cli.json("worker", "reclaim", "--queue", "jobs", "--older-than", "0", "--force")
    assert forced == {"released": 1}
    assert cli.json("queue", "metrics", "jobs")["pending_messages"] == 1
    statuses = {w["name"]: w["status"] for w in cli.json("worker", "list", "--all")}
    # Every worker of jobs that was not stopped is; the other queue's are left alone.
    assert (statuses["holding"], statuses["suspended"], statuses["mailer"]) == (
        "stopped",
        "stopped",
        "ready",
    )

    # The three consumers hold nothing now: purgeable.
    assert cli.json("worker", "purge-stopped") == {"deleted": 3}
    names = [w["name"] for w in cli.json("worker", "list", "--all")]
    assert names == ["mailer"]
    assert "Deleted 0 stopped worker(s)" in cli.ok("worker", "purge-stopped").stdout


async def _archived_by_a_stopped_consumer(store: pgqrs.Store) -> None:
    consumer = await store.consumer("jobs", "done")
    for message in await consumer.dequeue(5):
        assert await consumer.archive(message.id)
    await consumer.shutdown()


def test_send_leaves_no_worker_and_purge_removes_what_it_says(cli: Cli) -> None:
    cli.lib(lambda store: pgqrs.admin(store).create_queue("jobs"))
    cli.ok("send", "jobs", '{"n": 1}')
    cli.ok("send", "jobs", "--file", "-", input='{"n": 2}\n{"n": 3}\n')
    assert cli.json("worker", "list", "--all") == []
    assert cli.json("queue", "metrics", "jobs")["pending_messages"] == 3

    # A consumer that archived what it took, then stopped: archived messages name it, and
    # purge-stopped deletes it all the same.
    cli.lib(_archived_by_a_stopped_consumer)
    assert [w["name"] for w in cli.json("worker", "list", "--all")] == ["done"]
    assert cli.json("worker", "purge-stopped") == {"deleted": 1}
    assert cli.json("worker", "list", "--all") == []
    assert cli.json("queue", "metrics", "jobs")["archived_messages"] == 3
