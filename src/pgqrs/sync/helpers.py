"""The module-level helpers of api.md §7, blocking: `pgqrs.sync.produce(store, queue, x)`,
`enqueue(producer, x)`, `dequeue(consumer)`, ..."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, Unpack, overload

from .. import shortcuts
from ..records import EnqueuedId, Event
from ..types import QueueMessage
from ..validation import require_type
from . import options as passed
from .caller import in_calling_thread
from .options import BatchEnqueueOptions, EnqueueOptions, MessageId
from .store import Store, sync_store
from .workers import Consumer, Producer


@overload
def produce(
    store: Store,
    queue: str,
    payload: Any,
    *,
    priority: int = 0,
    dedup_key: None = None,
    dedup_window_seconds: None = None,
    key: str | None = None,
    connection: object | None = None,
) -> MessageId: ...


@overload
def produce(
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


def produce(store: Store, queue: str, payload: Any, **options: Unpack[EnqueueOptions]) -> MessageId:
    """Enqueue one payload through the store's producer of `queue` (registered on first use,
    shared by every thread, stopped by `close()`): no worker row per call. With `connection=`,
    as `pgqrs.produce` does: no producer at all, in this thread (caller.py)."""
    owner = sync_store(store)
    connection = options.get("connection")
    if connection is None:
        return owner._call(owner._producers.produce(queue, payload, options))
    return in_calling_thread(
        owner, connection, lambda view: passed.produce(view, queue, payload, options)
    )


@overload
def produce_batch(
    store: Store,
    queue: str,
    payloads: list[Any],
    *,
    priority: int = 0,
    dedup_keys: None = None,
    dedup_window_seconds: None = None,
    key: str | None = None,
    connection: object | None = None,
) -> list[MessageId]: ...


@overload
def produce_batch(
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


def produce_batch(
    store: Store, queue: str, payloads: list[Any], **options: Unpack[BatchEnqueueOptions]
) -> list[MessageId] | list[EnqueuedId]:
    """`produce` for several payloads, in one statement; an empty list is `ValidationError`."""
    owner = sync_store(store)
    connection = options.get("connection")
    if connection is None:
        return owner._call(owner._producers.produce_batch(queue, payloads, options))
    return in_calling_thread(
        owner, connection, lambda view: passed.produce_batch(view, queue, payloads, options)
    )


SW = TypeVar("SW", Producer, Consumer)


def _sync_worker(value: object, kind: type[SW]) -> SW:
    return require_type(
        value, kind, f"expected a pgqrs.sync.{kind.__name__}, got {{type.__name__}}"
    )


@overload
def enqueue(
    producer: Producer,
    payload: Any,
    *,
    priority: int = 0,
    dedup_key: None = None,
    dedup_window_seconds: None = None,
    key: str | None = None,
    connection: object | None = None,
) -> MessageId: ...


@overload
def enqueue(
    producer: Producer,
    payload: Any,
    *,
    priority: int = 0,
    dedup_key: str,
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> EnqueuedId: ...


def enqueue(producer: Producer, payload: Any, **options: Unpack[EnqueueOptions]) -> MessageId:
    p = _sync_worker(producer, Producer)
    return p._enqueue(options, lambda a: passed.enqueue(a, payload, options))


@overload
def enqueue_batch(
    producer: Producer,
    payloads: list[Any],
    *,
    priority: int = 0,
    dedup_keys: None = None,
    dedup_window_seconds: None = None,
    key: str | None = None,
    connection: object | None = None,
) -> list[MessageId]: ...


@overload
def enqueue_batch(
    producer: Producer,
    payloads: list[Any],
    *,
    priority: int = 0,
    dedup_keys: Sequence[str | None],
    dedup_window_seconds: float | None = None,
    key: str | None = None,
    connection: object | None = None,
) -> list[EnqueuedId]: ...


def enqueue_batch(
    producer: Producer, payloads: list[Any], **options: Unpack[BatchEnqueueOptions]
) -> list[MessageId] | list[EnqueuedId]:
    p = _sync_worker(producer, Producer)
    return p._enqueue(options, lambda a: passed.enqueue_batch(a, payloads, options))


@overload
def enqueue_delayed(
    producer: Producer,
    payload: Any,
    delay_seconds: float,
    *,
    priority: int = 0,
    dedup_key: None = None,
    dedup_window_seconds: None = None,
    key: str | None = None,
    connection: object | None = None,
) -> MessageId: ...


@overload
def enqueue_delayed(
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


def enqueue_delayed(
    producer: Producer, payload: Any, delay_seconds: float, **options: Unpack[EnqueueOptions]
) -> MessageId:
    p = _sync_worker(producer, Producer)
    return p._enqueue(options, lambda a: passed.enqueue_delayed(a, payload, delay_seconds, options))


def dequeue(consumer: Consumer, batch_size: int = 1) -> list[QueueMessage]:
    """The legacy form `pgqrs.dequeue(consumer, n)`; poll loops are async (`pgqrs.dequeue()`)."""
    c = _sync_worker(consumer, Consumer)
    return c._call(shortcuts.dequeue(c.aio, batch_size))


def archive(consumer: Consumer, message: QueueMessage) -> bool:
    c = _sync_worker(consumer, Consumer)
    return c._call(shortcuts.archive(c.aio, message))


def archive_batch(consumer: Consumer, messages: list[QueueMessage]) -> bool:
    c = _sync_worker(consumer, Consumer)
    return c._call(shortcuts.archive_batch(c.aio, messages))


def delete(consumer: Consumer, message: QueueMessage) -> bool:
    c = _sync_worker(consumer, Consumer)
    return c._call(shortcuts.delete(c.aio, message))


def extend_vt(consumer: Consumer, message: QueueMessage, seconds: float) -> bool:
    c = _sync_worker(consumer, Consumer)
    return c._call(shortcuts.extend_vt(c.aio, message, seconds))


def send_signal(store: Store, run: object, topic: str, payload: Any) -> int:
    """`pgqrs.send_signal`, blocking (semantics.md §18.1)."""
    owner = sync_store(store)
    return owner._call(shortcuts.send_signal(owner.aio, run, topic, payload))


def get_event(store: Store, run: object, key: str, timeout: float | None = None) -> Event | None:
    """`pgqrs.get_event`, blocking (semantics.md §18.2)."""
    owner = sync_store(store)
    return owner._call(shortcuts.get_event(owner.aio, run, key, timeout))
