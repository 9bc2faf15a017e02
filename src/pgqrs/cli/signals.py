"""`pgqrs workflow signal|event`: talk to a running workflow run from a shell (semantics.md
§18.1-18.2)."""

from __future__ import annotations

import click

from ..client import Store
from ..records import Event
from ..validation import encode_json
from ..workflows import messaging
from .context import CliError, json_option, wants_json, with_store
from .messages import parse_json
from .output import emit_json, note, plain


@click.command("signal")
@click.argument("run_id", type=int)
@click.argument("topic")
@click.argument("payload", default="null")
@json_option
def signal(run_id: int, topic: str, payload: str) -> None:
    """Send PAYLOAD (JSON, default null) to run RUN_ID on TOPIC; `run.recv(TOPIC)` gets it."""
    value = parse_json(payload, "payload")

    async def work(store: Store) -> int:
        return await messaging.send_signal(store, run_id, topic, value)

    signal_id = with_store(work)
    if wants_json():
        emit_json({"signal_id": signal_id, "run_id": run_id, "topic": topic})
    else:
        note(f"Signal {signal_id} sent to run {run_id} on '{topic}'")


@click.command("event")
@click.argument("run_id", type=int)
@click.argument("key")
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Seconds to wait for the event to be set.",
)
@json_option
def event(run_id: int, key: str, wait: float) -> None:
    """Print the value run RUN_ID published under KEY (exit 1 when it is not set)."""

    async def work(store: Store) -> Event | None:
        return await messaging.get_event(store, run_id, key, wait)

    found = with_store(work)
    if found is None:
        raise CliError(f"Run {run_id} has no event '{key}'")
    if wants_json():
        emit_json(plain(found))
    else:
        click.echo(encode_json(found.value))
