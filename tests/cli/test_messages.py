"""`pgqrs messages list|show|cancel` and `pgqrs dlq list|replay|archive`."""

from __future__ import annotations

import pgqrs
from tests.support.cli import Cli


async def _one_of_each(store: pgqrs.Store) -> dict[str, int]:
    """jobs: message ids by state (visible, delayed, leased, archived, poison)."""
    await pgqrs.admin(store).create_queue("jobs")
    producer = await store.producer("jobs")
    archived, leased, poison, visible = await producer.enqueue_batch(
        [{"n": "archived"}, {"n": "leased"}, {"n": "poison"}, {"n": "visible"}]
    )
    delayed = await producer.enqueue_delayed({"n": "delayed"}, 3600)
    consumer = await store.consumer("jobs")
    await consumer.dequeue_many_with_delay(2, 600)  # archived, leased
    assert await consumer.archive(archived)
    for _ in range(store.config.max_read_ct):  # fails every time: a dead letter
        [m] = await consumer.dequeue()
        assert m.id == poison
        assert await consumer.release_messages([m.id]) == 1
    return {
        "archived": archived,
        "leased": leased,
        "poison": poison,
        "visible": visible,
        "delayed": delayed,
    }


def test_list_and_show(cli: Cli) -> None:
    ids = cli.lib(_one_of_each)
    live = cli.json("messages", "list", "jobs")
    assert [(m["id"], m["state"]) for m in live] == [
        (ids["leased"], "leased"),
        (ids["poison"], "poison"),
        (ids["visible"], "visible"),
        (ids["delayed"], "delayed"),
    ]
    assert live[0]["queue"] == "jobs"
    assert live[0]["payload"] == {"n": "leased"}
    assert live[1]["read_ct"] == 5
    assert [m["id"] for m in cli.json("messages", "list", "jobs", "--limit", "2")] == [
        ids["leased"],
        ids["poison"],
    ]
    leased = cli.json("messages", "list", "jobs", "--leased")
    assert [m["id"] for m in leased] == [ids["leased"]]
    assert leased[0]["consumer_worker_id"] is not None
    archived = cli.json("messages", "list", "jobs", "--archived")
    assert [(m["id"], m["state"]) for m in archived] == [(ids["archived"], "archived")]

    table = cli.ok("messages", "list", "jobs").stdout
    row = next(line for line in table.splitlines() if '{"n":"delayed"}' in line).split()
    assert row[:4] == [str(ids["delayed"]), "jobs", "delayed", "in"]

    shown = cli.json("messages", "show", str(ids["visible"]))
    assert shown["state"] == "visible"
    assert shown["payload"] == {"n": "visible"}
    assert shown["queue"] == "jobs"
    text = cli.ok("messages", "show", str(ids["delayed"])).stdout
    assert f"Message {ids['delayed']}" in text
    assert '"n": "delayed"' in text


def test_message_errors(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    assert cli.fails("messages", "show", "999") == "Message with id '999' not found"
    assert cli.fails("messages", "list", "nope") == "Queue 'nope' not found"
    both = cli("messages", "list", "jobs", "--archived", "--leased")
    assert both.exit_code == 2
    assert "No messages." in cli.ok("messages", "list", "jobs").stdout


def test_dead_letters(cli: Cli) -> None:
    ids = cli.lib(_one_of_each)
    [dead] = cli.json("dlq", "list")
    assert (dead["id"], dead["state"], dead["read_ct"]) == (ids["poison"], "poison", 5)
    assert [m["id"] for m in cli.json("dlq", "list", "jobs")] == [ids["poison"]]
    assert "poison" in cli.ok("dlq", "list").stdout

    assert cli.json("dlq", "archive", "jobs") == {"archived": [ids["poison"]]}
    [kept] = cli.json("dlq", "list")  # archived dead letters stay listed
    assert (kept["id"], kept["state"]) == (ids["poison"], "archived")
    assert cli.json("dlq", "archive") == {"archived": []}

    replayed = cli.json("dlq", "replay", str(ids["poison"]))
    assert (replayed["id"], replayed["read_ct"], replayed["archived_at"]) == (
        ids["poison"],
        0,
        None,
    )
    assert cli.json("messages", "show", str(ids["poison"]))["state"] == "visible"
    assert cli.json("dlq", "list") == []
    assert "No dead letters." in cli.ok("dlq", "list").stdout
    assert cli.fails("dlq", "list", "nope") == "Queue 'nope' not found"
    assert cli.fails("dlq", "replay", "999").startswith("Message with id '999' not found")


def test_archive_one_dead_letter(cli: Cli) -> None:
    ids = cli.lib(_one_of_each)
    refused = cli.fails("dlq", "archive", "--id", str(ids["visible"]))
    assert refused.startswith(f"Validation failed: message {ids['visible']} is not a dead letter")
    assert cli.fails("dlq", "archive", "jobs", "--id", "1") == "Give a QUEUE or --id, not both"
    assert cli.json("dlq", "archive", "--id", str(ids["poison"])) == {"archived": [ids["poison"]]}
    assert cli.json("dlq", "archive", "--id", str(ids["poison"])) == {"archived": []}
    assert (
        "Archived 0 dead letter(s)" in cli.ok("dlq", "archive", "--id", str(ids["poison"])).stdout
    )
    [kept] = cli.json("dlq", "list")
    assert (kept["id"], kept["state"]) == (ids["poison"], "archived")
    assert cli.json("messages", "show", str(ids["visible"]))["state"] == "visible"


# -- cancelling queued messages (issue 12) -----------------------------------------------------
async def _to_cancel(store: pgqrs.Store) -> dict[str, int]:
    """jobs: a queued message, one with a key and a priority, and one under a running lease."""
    await pgqrs.admin(store).create_queue("jobs")
    producer = await store.producer("jobs")
    leased = await producer.enqueue({"n": "leased"})
    [held] = await (await store.consumer("jobs")).dequeue_many_with_delay(1, 600)
    assert held.id == leased
    queued = await producer.enqueue({"n": "queued"})
    keyed = await producer.enqueue({"n": "keyed"}, priority=7, dedup_key="order-7")
    return {"queued": queued, "keyed": keyed, "leased": leased}


def test_cancel_message_cli_by_id_and_by_key(cli: Cli) -> None:
    ids = cli.lib(_to_cancel)
    shown = cli.json("messages", "show", str(ids["keyed"]))
    assert (shown["priority"], shown["dedup_key"], shown["cancelled_at"]) == (7, "order-7", None)
    text = cli.ok("messages", "show", str(ids["keyed"])).stdout
    assert "priority" in text
    assert "order-7" in text

    out = cli.ok("messages", "cancel", str(ids["queued"])).stdout
    assert out.strip() == f"Cancelled message {ids['queued']} of 'jobs'"
    done = cli.json("messages", "cancel", "--key", "order-7", "--queue", "jobs")
    assert done == {"queue": "jobs", "id": None, "key": "order-7", "cancelled": True}
    shown = cli.json("messages", "show", str(ids["keyed"]))
    assert shown["state"] == "cancelled"
    assert shown["cancelled_at"] is not None
    assert [m["id"] for m in cli.json("messages", "list", "jobs")] == [ids["leased"]]


def test_cancel_message_cli_errors(cli: Cli) -> None:
    ids = cli.lib(_to_cancel)
    leased = cli.fails("messages", "cancel", str(ids["leased"]))
    assert leased.startswith(f"Message {ids['leased']} is leased by worker ")
    assert cli.fails("messages", "cancel", "999") == "Message with id '999' not found"
    assert cli.fails("messages", "cancel", "999", "--queue", "jobs") == (
        "Message with id '999' not found in queue 'jobs'"
    )
    assert cli.fails("messages", "cancel", "--key", "nope", "--queue", "jobs") == (
        "No queued message of 'jobs' holds key 'nope'"
    )
    cli.ok("messages", "cancel", str(ids["queued"]))
    assert cli.fails("messages", "cancel", str(ids["queued"])) == (
        f"Message {ids['queued']} is archived already: nothing to cancel"
    )
    assert cli.fails("messages", "cancel", "--key", "", "--queue", "jobs") == (
        "Validation failed: dedup_key must not be empty (pass None for no key)"
    )
    for usage in (
        ("messages", "cancel"),
        ("messages", "cancel", "1", "--key", "k", "--queue", "jobs"),
        ("messages", "cancel", "--key", "k"),
    ):
        assert cli(*usage).exit_code == 2
