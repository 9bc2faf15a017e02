"""Module-level shortcuts (api.md §7): one-call produce/consume and thin worker wrappers."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, overload

from .queue.loop import Handler
from .queue.workers import Consumer, Producer, ephemeral_producer, prepare_payloads
from .types import QueueMessage
from .validation import check_payloads_given, require_type
from .workflows.dequeue import DequeueBuilder

if TYPE_CHECKING:
    from .client import Store


async def _produce(store: Store, queue: str, payloads: list[Any], *, batch: bool) -> list[int]:
    """Enqueue through a producer that lives for this call only (semantics.md §9.5)."""
    texts = prepare_payloads(store, payloads, batch=batch)  # refuse before any write
    async with ephemeral_producer(store, queue) as producer:
        return await producer.write(texts)


async def produce(store: Store, queue: str, payload: Any) -> int:
    """Enqueue one payload through a producer that lives for this call only."""
    return (await _produce(store, queue, [payload], batch=False))[0]


async def produce_batch(store: Store, queue: str, payloads: list[Any]) -> list[int]:
    check_payloads_given(payloads)
    return await _produce(store, queue, list(payloads), batch=True)


async def consume(store: Store, queue: str, handler: Handler) -> None:
    """Claim one message and handle it: archived on success, released with backoff on failure
    (the handler's exception is re-raised). Returns at once when nothing is visible."""
    await DequeueBuilder().from_queue(queue).handle(handler).execute(store)


async def consume_batch(store: Store, queue: str, batch_size: int, handler: Handler) -> None:
    await DequeueBuilder().from_queue(queue).batch(batch_size).handle_batch(handler).execute(store)


async def enqueue(producer: Producer, payload: Any) -> int:
    return await producer.enqueue(payload)


async def enqueue_batch(producer: Producer, payloads: list[Any]) -> list[int]:
    return await producer.enqueue_batch(payloads)


async def enqueue_delayed(producer: Producer, payload: Any, delay_seconds: float) -> int:
    return await producer.enqueue_delayed(payload, delay_seconds)


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
