"""`pgqrs queue limit`, the limits in `pgqrs queue show`, and `pgqrs send --key`."""

from __future__ import annotations

import pytest

import pgqrs
from tests.support.cli import Cli


@pytest.mark.serial  # the bucket refills a token in 0.25 s: not beside another worker's load
def test_concurrency_limit_commands(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    made = cli.json("queue", "limit", "jobs", "--key", "t1", "--max-in-flight", "2")
    assert [(x["key"], x["max_in_flight"], x["in_flight"]) for x in made["limits"]] == [
        ("t1", 2, 0)
    ]
    both = cli.json("queue", "limit", "jobs", "--rate", "4", "--burst", "8")["limits"]
    assert [(x["key"], x["rate_per_second"], x["burst"], x["tokens"]) for x in both] == [
        (None, 4.0, 8, 8.0),
        ("t1", None, None, None),
    ]
    cli.ok("send", "jobs", '{"n": 1}', "--key", "t1")
    cli.ok("send", "jobs", '{"n": 2}', "--key", "t1")
    cli.ok("send", "jobs", '{"n": 3}', "--key", "t1")

    async def claim(store: pgqrs.Store) -> int:
        return len(await (await store.consumer("jobs")).dequeue(10))

    assert cli.lib(claim) == 2  # the key's limit holds for what the CLI sent

    shown = cli.json("queue", "show", "jobs")["limits"]
    assert [(x["key"], x["in_flight"]) for x in shown] == [(None, 2), ("t1", 2)]
    assert 6.0 <= shown[0]["tokens"] < 7.0  # two spent, a little refilled since
    text = cli.ok("queue", "show", "jobs").stdout
    assert "Limits" in text
    assert "(queue)" in text
    cli.ok("queue", "limit", "jobs", "--clear")
    assert [x["key"] for x in cli.json("queue", "limit", "jobs")["limits"]] == ["t1"]


def test_concurrency_limit_command_refusals(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    assert "max_in_flight must be from 1" in cli.fails(
        "queue", "limit", "jobs", "--max-in-flight", "0"
    )
    assert "burst applies to a rate limit" in cli.fails("queue", "limit", "jobs", "--burst", "3")
    assert "key must not be empty" in cli.fails("queue", "limit", "jobs", "--key", "")
    assert "not found" in cli.fails("queue", "limit", "missing", "--max-in-flight", "1")
    assert "key must not be empty" in cli.fails("send", "jobs", "{}", "--key", "")
    assert cli.json("queue", "limit", "jobs")["limits"] == []
