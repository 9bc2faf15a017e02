"""`pgqrs send`: one payload, or a JSON Lines file validated whole before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pgqrs
from tests.support.cli import Cli


async def _messages(store: pgqrs.Store) -> list[pgqrs.QueueMessage]:
    handle = await store.get_messages()
    count = await handle.count()
    return [await handle.get(n) for n in range(1, count + 1)]


def test_send_one(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    sent = cli.json("send", "jobs", '{"to": "ada@example.com", "n": [1, 2]}')
    assert sent == {"queue": "jobs", "id": 1}
    assert "Sent message 2 to 'jobs'" in cli.ok("send", "jobs", '"plain text"').stdout
    delayed = cli.json("send", "jobs", "42", "--delay", "3600")
    [first, second, third] = cli.lib(_messages)
    assert first.payload == {"to": "ada@example.com", "n": [1, 2]}
    assert second.payload == "plain text"
    assert (third.id, third.payload) == (delayed["id"], 42)
    metrics = cli.json("queue", "metrics", "jobs")
    assert (metrics["pending_messages"], metrics["delayed_messages"]) == (2, 1)


def test_send_errors(cli: Cli) -> None:
    cli.ok("queue", "create", "jobs")
    error = cli.fails("send", "jobs", "{bad")
    assert error.startswith("Invalid JSON payload: Expecting property name")
    assert cli.fails("send", "nope", "{}") == "Queue 'nope' not found"
    assert cli.fails("send", "jobs", "NaN").startswith("Serialization error:")
    assert cli.fails("send", "jobs", "1", "--delay", "-1") == (
        "--delay must be a finite number >= 0, got -1.0"
    )
    usage = cli("send", "jobs")
    assert usage.exit_code == 2
    assert "give either PAYLOAD_JSON or --file F.jsonl" in usage.stderr
    assert cli.json("queue", "metrics", "jobs")["total_messages"] == 0


def test_send_file_in_batches(cli: Cli, tmp_path: Path) -> None:
    cli.ok("queue", "create", "jobs")
    path = tmp_path / "jobs.jsonl"
    lines = [json.dumps({"job": n}) for n in range(1203)]
    lines.insert(7, "")  # blank lines are skipped
    path.write_text("\n".join(lines) + "\n")
    sent = cli.json("send", "jobs", "--file", str(path))
    assert sent["sent"] == 1203
    assert sorted(sent["ids"]) == list(range(1, 1204))
    assert cli.json("queue", "metrics", "jobs")["pending_messages"] == 1203

    text = cli.ok("send", "jobs", "-f", "-", input='{"a": 1}\n{"a": 2}\n')
    assert "Sent 2 message(s) to 'jobs' (ids 1204..1205)" in text.stdout
    assert cli.json("queue", "metrics", "jobs")["pending_messages"] == 1205


def test_malformed_line_stops_before_anything_is_written(cli: Cli, tmp_path: Path) -> None:
    cli.ok("queue", "create", "jobs")
    path = tmp_path / "jobs.jsonl"
    good = [json.dumps({"job": n}) for n in range(600)]
    path.write_text("\n".join([*good[:3], '{"job": 3,', *good[4:]]) + "\n")
    error = cli.fails("send", "jobs", "--file", str(path))
    assert error.startswith(f"{path} line 4: invalid JSON: ")
    path.write_text("\n".join([*good[:599], '{"bad": NaN}']) + "\n")
    error = cli.fails("send", "jobs", "--file", str(path))
    assert error.startswith(f"{path} line 600: Serialization error:")
    deep = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}
    path.write_text("\n".join([*good[:9], json.dumps(deep)]) + "\n")
    error = cli.fails("send", "jobs", "--file", str(path))
    assert error.startswith(f"{path} line 10: Validation failed")
    assert cli.json("queue", "metrics", "jobs")["total_messages"] == 0
    missing = cli("send", "jobs", "--file", str(tmp_path / "missing.jsonl"))
    assert missing.exit_code == 2
