"""`pgqrs send`, `pgqrs messages list|show|cancel` and `pgqrs dlq list|replay|archive`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..admin import Admin
from ..client import Store
from ..errors import PgqrsError
from ..queue.workers import producer_without_row, queue_rules
from ..records import MessageError
from ..tables import failures
from ..tables import messages as message_rows
from ..tables import queues as queue_rows
from ..types import QueueMessage
from ..validation import (
    PLAIN,
    EnqueueOptions,
    PayloadRules,
    encode_payloads,
    enqueue_options,
    require_duration,
)
from .context import CliError, json_option, wants_json, with_store
from .output import (
    add_row,
    ago,
    compact,
    console,
    emit_json,
    fields_table,
    message_state,
    note,
    plain,
    pretty,
    print_table,
    table,
    until,
)

SEND_BATCH = 500  # rows per INSERT when loading a file


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(f"Invalid JSON {what}: {err}") from err


def read_jsonl(source: IO[str], rules: PayloadRules) -> list[str]:
    """Every payload of a JSON Lines file, checked like `enqueue` checks them, as stored text.

    The whole file is read and checked before anything is written: a bad line stops the load
    with its line number. Blank lines are skipped.
    """
    name = getattr(source, "name", "<stdin>")
    texts: list[str] = []
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            payload = json.loads(line)
        except json.JSONDecodeError as err:
            raise CliError(f"{name} line {number}: invalid JSON: {err.msg}") from err
        try:
            texts.extend(encode_payloads([payload], rules, batch=False))
        except (PgqrsError, ValueError) as err:
            raise CliError(f"{name} line {number}: {err}") from err
    return texts


async def write_payloads(
    store: Store,
    queue: str,
    texts: list[str],
    delay: float,
    advance: Callable[[int], None] = lambda n: None,
    options: EnqueueOptions = PLAIN,
) -> list[int]:
    """Enqueue stored texts in batches, with no worker row (semantics.md §9.5)."""
    ids: list[int] = []
    producer = await producer_without_row(store, queue)
    for start in range(0, len(texts), SEND_BATCH):
        chunk = texts[start : start + SEND_BATCH]
        ids.extend(await producer.write(chunk, delay, options))
        advance(len(chunk))
    return ids


def progress_bar() -> Progress:
    # On stderr, so that stdout carries only the result (and stays valid JSON with --json).
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=wants_json(),
    )


@click.command()
@click.argument("queue")
@click.argument("payload", required=False, metavar="[PAYLOAD_JSON]")
@click.option(
    "--file",
    "-f",
    "source",
    type=click.File("r", encoding="utf-8"),
    help="Send every line of a JSON Lines file (- for stdin), in batches.",
)
@click.option(
    "--delay", type=float, default=0.0, help="Seconds before the message(s) become visible."
)
@click.option("--key", default=None, help="The key whose limits the message(s) count against.")
@json_option
def send(
    queue: str, payload: str | None, source: IO[str] | None, delay: float, key: str | None
) -> None:
    """Send PAYLOAD_JSON, or every line of --file, to QUEUE."""
    if (payload is None) == (source is None):
        raise click.UsageError("give either PAYLOAD_JSON or --file F.jsonl")
    require_duration("--delay", delay)
    options = enqueue_options(0, None, None, 1, batch=False, key=key)
    value = None if payload is None else parse_json(payload, "payload")

    async def work(store: Store) -> list[int]:
        await queue_rows.get_by_name(store.db, queue)  # an unknown queue before reading a file
        rules = await queue_rules(store, queue)  # the queue's own limits, else Config's
        if source is None:
            texts = encode_payloads([value], rules, batch=False)
            return await write_payloads(store, queue, texts, delay, options=options)
        texts = read_jsonl(source, rules)
        with progress_bar() as progress:
            task = progress.add_task(f"sending to {queue}", total=len(texts))
            return await write_payloads(
                store, queue, texts, delay, lambda n: progress.advance(task, n), options
            )

    ids = with_store(work)
    if source is None:
        if wants_json():
            emit_json({"queue": queue, "id": ids[0]})
        else:
            note(f"Sent message {ids[0]} to '{queue}'")
        return
    if wants_json():
        emit_json({"queue": queue, "sent": len(ids), "ids": ids})
    else:
        span = f" (ids {min(ids)}..{max(ids)})" if ids else ""
        note(f"Sent {len(ids)} message(s) to '{queue}'{span}")


# -- browsing --------------------------------------------------------------------------------
def _message_json(message: QueueMessage, queue: str, state: str) -> dict[str, Any]:
    data: dict[str, Any] = plain(message)
    data["queue"] = queue
    data["state"] = state
    return data


@dataclass(frozen=True)
class View:
    """What showing messages needs besides the messages: queue names, each queue's poison
    threshold (stored with the queue, else the store's default), the time, last errors."""

    names: dict[int, str]
    limits: dict[int, int]
    default_limit: int
    now: datetime
    errors: dict[int, MessageError] = field(default_factory=dict)

    def queue(self, m: QueueMessage) -> str:
        return self.names.get(m.queue_id, "")

    def state(self, m: QueueMessage) -> str:
        return message_state(m, self.now, self.limits.get(m.queue_id, self.default_limit))


async def view_of(
    store: Store, found: Sequence[QueueMessage] = (), *, errors: bool = False
) -> View:
    settings = [
        (q.id, q.queue_name, await queue_rows.settings(store.db, q.id))
        for q in await queue_rows.list_all(store.db)
    ]
    default = store.settings.max_read_ct
    return View(
        names={qid: name for qid, name, _ in settings},
        limits={qid: s.max_read_ct for qid, _, s in settings if s.max_read_ct is not None},
        default_limit=default,
        now=store.clock.now(),
        errors=await failures.of(store.db, [m.id for m in found]) if errors else {},
    )


def _when(message: QueueMessage, state: str, now: datetime) -> str:
    """The time that matters in this state: archive time, lease end, or delay end."""
    if state == "archived":
        return ago(message.archived_at, now)
    if state in ("leased", "delayed"):
        return until(message.vt, now)
    return ago(message.enqueued_at, now)


def _error_text(error: MessageError | None) -> str:
    if error is None:
        return "-"
    first = error.error_message.splitlines()[0] if error.error_message else ""
    return f"{error.error_type.rsplit('.', 1)[-1]}: {first}"


def _message_table(found: list[QueueMessage], view: View, *, errors: bool = False) -> None:
    columns = ["ID", "Queue", "State", "Since", "Reads", "Enqueued", "Worker", "Payload"]
    if errors:
        columns.append("Last error")
    out = table(
        *columns,
        right=("ID", "Reads", "Worker"),
        flex=("Queue", "Payload", "Last error") if errors else ("Queue", "Payload"),
    )
    for m in found:
        state = view.state(m)
        cells: list[Any] = [
            m.id,
            view.names.get(m.queue_id, m.queue_id),
            state,
            _when(m, state, view.now),
            m.read_ct,
            ago(m.enqueued_at, view.now),
            m.consumer_worker_id,
            compact(m.payload),
        ]
        if errors:
            cells.append(_error_text(view.errors.get(m.id)))
        add_row(out, *cells)
    print_table(out, "No messages.")


def _emit_messages(found: list[QueueMessage], view: View, *, errors: bool = False) -> None:
    if wants_json():
        out = []
        for m in found:
            data = _message_json(m, view.queue(m), view.state(m))
            if errors:
                error = view.errors.get(m.id)
                data["last_error"] = None if error is None else plain(error)
            out.append(data)
        emit_json(out)
    else:
        _message_table(found, view, errors=errors)


@click.group()
def messages() -> None:
    """Look at the messages of a queue."""


@messages.command("list")
@click.argument("queue")
@click.option("--archived", is_flag=True, help="Archived messages, most recent first.")
@click.option("--leased", is_flag=True, help="Only messages a worker holds right now.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
def list_messages(queue: str, archived: bool, leased: bool, limit: int) -> None:
    """The messages of QUEUE: unarchived ones by id, or --archived / --leased ones."""
    if archived and leased:
        raise click.UsageError("--archived and --leased exclude each other")
    which = "archived" if archived else "leased" if leased else "live"

    async def work(store: Store) -> tuple[list[QueueMessage], View]:
        info = await queue_rows.get_by_name(store.db, queue)
        now = store.clock.now()
        rows = await message_rows.browse_rows(store.db, info.id, which=which, now=now, limit=limit)
        found = await store.messages.read(store.db, rows)
        return found, await view_of(store)

    found, view = with_store(work)
    _emit_messages(found, view)


@messages.command("show")
@click.argument("message_id", type=int, metavar="ID")
@json_option
def show(message_id: int) -> None:
    """Every field of the message ID and its payload."""

    async def work(store: Store) -> tuple[QueueMessage, View, tuple[int, str | None, str | None]]:
        message = await (await store.get_messages()).get(message_id)
        options = await message_rows.options(store.db, message_id)
        return message, await view_of(store, [message], errors=True), options

    m, view, (priority, key, cancelled_at) = with_store(work)
    queue, now = view.queue(m), view.now
    state = "cancelled" if cancelled_at else view.state(m)
    error = view.errors.get(m.id)
    if wants_json():
        emit_json(
            {
                **_message_json(m, queue, state),
                "priority": priority,
                "dedup_key": key,
                "cancelled_at": cancelled_at,
                "last_error": plain(error) if error else None,
            }
        )
        return
    rows = [
        ("queue", f"{queue} (id {m.queue_id})"),
        ("state", state),
        ("priority", priority),
        ("dedup key", key),
        ("cancelled", cancelled_at),
        ("read count", m.read_ct),
        ("enqueued", f"{m.enqueued_at} ({ago(m.enqueued_at, now)})"),
        ("visible at", None if m.vt is None else f"{m.vt} ({until(m.vt, now)})"),
        ("first dequeued", m.dequeued_at),
        ("archived", m.archived_at),
        ("producer worker", m.producer_worker_id),
        ("consumer worker", m.consumer_worker_id),
        ("last error", None if error is None else _error_text(error)),
    ]
    console().print(fields_table(rows, title=f"Message {m.id}"))
    console().print(pretty(m.payload), markup=False)


@messages.command("cancel")
@click.argument("message_id", type=int, metavar="[ID]", required=False)
@click.option("--key", "key", help="Cancel the queued message holding this deduplication key.")
@click.option("--queue", "-q", "queue", help="The message's queue (required with --key).")
@json_option
def cancel(message_id: int | None, key: str | None, queue: str | None) -> None:
    """Cancel the queued message ID (or the one holding --key in --queue): it is archived,
    marked cancelled, and never delivered. Refused while a worker holds it under a lease."""
    if (message_id is None) == (key is None):
        raise click.UsageError("give either ID or --key KEY --queue QUEUE")
    if key is not None and queue is None:
        raise click.UsageError("--key needs --queue")

    async def work(store: Store) -> str:
        admin = Admin(store)
        if key is not None:
            assert queue is not None
            if not await admin.cancel_message_key(queue, key):
                raise CliError(f"No queued message of '{queue}' holds key '{key}'")
            return queue
        assert message_id is not None
        name = queue
        if name is None:  # the message's own queue
            row = await message_rows.get_row(store.db, message_id)
            found = await queue_rows.find_by_id(store.db, int(row[1]))
            name = "" if found is None else found.queue_name
        if not await admin.cancel_message(name, message_id):
            raise CliError(f"Message {message_id} is archived already: nothing to cancel")
        return name

    name = with_store(work)
    what = f"message {message_id}" if key is None else f"the message with key '{key}'"
    if wants_json():
        emit_json({"queue": name, "id": message_id, "key": key, "cancelled": True})
    else:
        note(f"Cancelled {what} of '{name}'")


# -- dead letters ----------------------------------------------------------------------------
@click.group()
def dlq() -> None:
    """Dead letters: messages whose handler failed max_read_ct times."""


@dlq.command("list")
@click.argument("queue", required=False)
@json_option
def dlq_list(queue: str | None) -> None:
    """Dead letters of QUEUE (or of every queue), including those already archived, with the
    last error their handler raised."""

    async def work(store: Store) -> tuple[list[QueueMessage], View]:
        found = await Admin(store).dlq_list(queue)
        return found, await view_of(store, found, errors=True)

    found, view = with_store(work)
    if wants_json() or found:
        _emit_messages(found, view, errors=True)
    else:
        note("No dead letters.")


@dlq.command("replay")
@click.argument("message_id", type=int, metavar="ID")
@json_option
def replay(message_id: int) -> None:
    """Put the dead letter ID back in its queue as a fresh message (read count 0)."""
    message = with_store(lambda store: Admin(store).replay_dlq(message_id))
    if wants_json():
        emit_json(plain(message))
    else:
        note(f"Message {message.id} is visible again (read count reset)")


@dlq.command("archive")
@click.argument("queue", required=False)
@click.option(
    "--id",
    "message_id",
    type=int,
    metavar="ID",
    help="Archive only the dead letter ID instead of a whole queue's.",
)
@json_option
def archive(queue: str | None, message_id: int | None) -> None:
    """Archive every poison message of QUEUE (or of every queue), or only the dead letter
    --id ID; they stay listed."""
    if queue is not None and message_id is not None:
        raise CliError("Give a QUEUE or --id, not both")

    async def work(store: Store) -> list[int]:
        admin = Admin(store)
        if message_id is None:
            return await admin.dlq(queue)
        return [message_id] if await admin.archive_dead_letter(message_id) else []

    ids = with_store(work)
    if wants_json():
        emit_json({"archived": ids})
    else:
        note(f"Archived {len(ids)} dead letter(s)")


COMMANDS = [send, messages, dlq]
