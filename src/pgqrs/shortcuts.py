"""Module-level shortcuts (api.md §7): one-call produce/consume and thin worker wrappers."""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, overload

from .queue.loop import Handler
from .queue.workers import (
    Consumer,
    Producer,
    prepare_payloads,
    queue_rules,
    write_messages,
)
from .records import EnqueuedId, Event
from .store.borrowed import borrow
from .types import QueueMessage
from .validation import (
    EnqueueOptions,
    check_payload_list,
    check_payloads_given,
    enqueue_options,
    require_duration,
    require_type,
)
from .workflows import messaging
from .workflows.dequeue import DequeueBuilder

if TYPE_CHECKING:
    from .client import Store


async def _produce(
    store: Store,
    queue: str,
    payloads: list[Any],
    options: EnqueueOptions,
    *,
    batch: bool,
    connection: object | None,
) -> list[EnqueuedId]:
    """Enqueue with no producer row (semantics.md §9.5), on the store or on a connection the
    application holds (semantics.md §7.7)."""
    db = None if connection is None else await borrow(connection, store.db)
    rules = await queue_rules(store, queue)  # the queue's own limits (semantics.md §7.6)
    texts = prepare_payloads(store, payloads, batch=batch, rules=rules)  # refuse before writes
    info = await store.get_queue(queue)
    return await write_messages(store, info.id, None, texts, 0.0, options, db, queue)


@overload
async def produce(
    store: Store,
    queue: str,
    payload: Any,
    *,
    priority: int = 0,
    dedup_key: None = None,
    dedup_window_seconds: None = None,
    key: str | None = None,
    connection: object | None = None,
) -> int: ...


@overload
async def produce(
    store: Store,
    queue: str,
    payload: Any,
    *,
    priority: int = 0,
    dedup_key: str,
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> EnqueuedId: ...


async def produce(
    store: Store,
    queue: str,
    payload: Any,
    *,
    priority: int = 0,
    dedup_key: str | None = None,
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> int:
    """Enqueue one payload; no worker row is written (semantics.md §9.5)."""
    options = enqueue_options(priority, dedup_key, dedup_window_seconds, 1, batch=False, key=key)
    return (await _produce(store, queue, [payload], options, batch=False, connection=connection))[0]


@overload
async def produce_batch(
    store: Store,
    queue: str,
    payloads: list[Any],
    *,
    priority: int = 0,
    dedup_keys: None = None,
    dedup_window_seconds: None = None,
    key: str | None = None,
    connection: object | None = None,
) -> list[int]: ...


@overload
async def produce_batch(
    store: Store,
    queue: str,
    payloads: list[Any],
    *,
    priority: int = 0,
    dedup_keys: Sequence[str | None],
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> list[EnqueuedId]: ...


async def produce_batch(
    store: Store,
    queue: str,
    payloads: list[Any],
    *,
    priority: int = 0,
    dedup_keys: Sequence[str | None] | None = None,
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> list[int] | list[EnqueuedId]:
    check_payloads_given(payloads)
    options = enqueue_options(
        priority, dedup_keys, dedup_window_seconds, len(payloads), batch=True, key=key
    )
    return await _produce(store, queue, list(payloads), options, batch=True, connection=connection)


async def consume(store: Store, queue: str, handler: Handler) -> None:
    """Claim one message and handle it: archived on success, released with backoff on failure
    (the handler's exception is re-raised). Returns at once when nothing is visible."""
    await DequeueBuilder().from_queue(queue).handle(handler).execute(store)


async def consume_batch(store: Store, queue: str, batch_size: int, handler: Handler) -> None:
    await DequeueBuilder().from_queue(queue).batch(batch_size).handle_batch(handler).execute(store)


@overload
async def enqueue(
    producer: Producer,
    payload: Any,
    *,
    priority: int = 0,
    dedup_key: None = None,
    dedup_window_seconds: None = None,
    key: str | None = None,
    connection: object | None = None,
) -> int: ...


@overload
async def enqueue(
    producer: Producer,
    payload: Any,
    *,
    priority: int = 0,
    dedup_key: str,
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> EnqueuedId: ...


async def enqueue(
    producer: Producer,
    payload: Any,
    *,
    priority: int = 0,
    dedup_key: str | None = None,
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> int:
    options = enqueue_options(priority, dedup_key, dedup_window_seconds, 1, batch=False, key=key)
    return (await producer._insert([payload], 0.0, options, batch=False, connection=connection))[0]


@overload
async def enqueue_batch(
    producer: Producer,
    payloads: list[Any],
    *,
    priority: int = 0,
    dedup_keys: None = None,
    dedup_window_seconds: None = None,
    key: str | None = None,
    connection: object | None = None,
) -> list[int]: ...


@overload
async def enqueue_batch(
    producer: Producer,
    payloads: list[Any],
    *,
    priority: int = 0,
    dedup_keys: Sequence[str | None],
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> list[EnqueuedId]: ...


async def enqueue_batch(
    producer: Producer,
    payloads: list[Any],
    *,
    priority: int = 0,
    dedup_keys: Sequence[str | None] | None = None,
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> list[int] | list[EnqueuedId]:
    # The checks of `Producer.enqueue_batch`, then its insert (the overloads of the method
    # cannot take a key list that may be None).
    check_payload_list(payloads)
    options = enqueue_options(
        priority, dedup_keys, dedup_window_seconds, len(payloads), batch=True, key=key
    )
    if not payloads:
        return []
    return await producer._insert(payloads, 0.0, options, batch=True, connection=connection)


@overload
async def enqueue_delayed(
    producer: Producer,
    payload: Any,
    delay_seconds: float,
    *,
    priority: int = 0,
    dedup_key: None = None,
    dedup_window_seconds: None = None,
    key: str | None = None,
    connection: object | None = None,
) -> int: ...


@overload
async def enqueue_delayed(
    producer: Producer,
    payload: Any,
    delay_seconds: float,
    *,
    priority: int = 0,
    dedup_key: str,
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> EnqueuedId: ...


async def enqueue_delayed(
    producer: Producer,
    payload: Any,
    delay_seconds: float,
    *,
    priority: int = 0,
    dedup_key: str | None = None,
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> int:
    require_duration("delay_seconds", delay_seconds)
    options = enqueue_options(priority, dedup_key, dedup_window_seconds, 1, batch=False, key=key)
    delay = float(delay_seconds)
    return (await producer._insert([payload], delay, options, batch=False, connection=connection))[
        0
    ]


@overload
def dequeue() -> DequeueBuilder: ...


@overload
def dequeue(consumer: Consumer, batch_size: int = 1) -> Coroutine[Any, Any, list[QueueMessage]]: ...


def dequeue(
    consumer: Consumer | None = None, batch_size: int = 1
) -> DequeueBuilder | Coroutine[Any, Any, list[QueueMessage]]:
    """`dequeue()` gives the poll-loop builder; `dequeue(consumer, n)` claims (legacy form)."""
    if consumer is None:
        return DequeueBuilder()
    return consumer.dequeue(batch_size)


def dequeue_builder() -> DequeueBuilder:
    return DequeueBuilder()


def _message_id(message: object) -> int:
    return require_type(
        message, QueueMessage, "expected a pgqrs.QueueMessage, got {type.__name__}"
    ).id


async def archive(consumer: Consumer, message: QueueMessage) -> bool:
    return await consumer.archive(_message_id(message))


async def archive_batch(consumer: Consumer, messages: list[QueueMessage]) -> bool:
    """True only if every message was archived."""
    ids = [_message_id(m) for m in messages]
    return all(await consumer.archive_many(ids))


async def delete(consumer: Consumer, message: QueueMessage) -> bool:
    return await consumer.delete(_message_id(message))


async def extend_vt(consumer: Consumer, message: QueueMessage, seconds: float) -> bool:
    return await consumer.extend_vt(_message_id(message), seconds)


# -- runs that wait and talk (beyond pgqrs; api.md §24) ----------------------------------------
async def send_signal(store: Store, run: object, topic: str, payload: Any) -> int:
    """Send `payload` to a workflow run on `topic` (semantics.md §18.1); the signal's id.

    `run` is a run id, a `pgqrs.Run` or the run's trigger message (its run is created if the
    message was not delivered yet). A run that has finished refuses it (`StateTransitionError`).
    """
    return await messaging.send_signal(store, run, topic, payload)


async def get_event(
    store: Store,
    run: object,
    key: str,
    timeout: float | None = None,  # noqa: ASYNC109 (api.md §24, like `result(timeout)`)
) -> Event | None:
    """The event `key` a run published (semantics.md §18.2), waiting up to `timeout` seconds
    (None: until it is set); None when the time ran out first."""
    return await messaging.get_event(store, run, key, timeout)
