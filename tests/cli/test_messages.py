"""`pgqrs messages list|show` and `pgqrs dlq list|replay|archive`."""

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
