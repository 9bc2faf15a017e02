"""The keyword-only arguments of the async calls that the blocking ones hand on unchanged,
declared once: a delegate takes `**options` of one of these types, so an argument added to an
async method is one line here (and one in each overload of the delegate)."""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any, TypedDict

from .. import shortcuts
from ..client import Store as AsyncStore
from ..queue.workers import Producer as AsyncProducer
from ..records import EnqueuedId


class EnqueueOptions(TypedDict, total=False):
    """Keyword-only arguments of `Producer.enqueue` and `enqueue_delayed` (and `produce`)."""

    priority: int
    dedup_key: str | None
    dedup_window_seconds: float | None
    key: str | None
    connection: object | None


class BatchEnqueueOptions(TypedDict, total=False):
    """Keyword-only arguments of `Producer.enqueue_batch` (and `produce_batch`)."""

    priority: int
    dedup_keys: Sequence[str | None] | None
    dedup_window_seconds: float | None
    key: str | None
    connection: object | None


class LimitOptions(TypedDict, total=False):
    """Keyword-only arguments of `Admin.set_queue_limits` and `set_key_limits`."""

    max_in_flight: int | None
    rate_per_second: float | None
    burst: int | None


class QueueOptions(TypedDict, total=False):
    """Keyword-only arguments of `Admin.create_queue`."""

    max_read_ct: int | None
    max_payload_size_bytes: int | None
    max_string_length: int | None
    max_object_depth: int | None


class QueueChanges(TypedDict, total=False):
    """Keyword-only arguments of `Admin.update_queue`: the settings to change (None sets a
    payload limit back to each producer's Config value)."""

    max_read_ct: int
    max_payload_size_bytes: int | None
    max_string_length: int | None
    max_object_depth: int | None


# What an enqueue returns: the async methods' return type, named once. With a deduplication
# key the overloads say `pgqrs.EnqueuedId` (an int); at run time every id is one.
MessageId = int


# The async enqueues are overloaded on whether a key is given (the result type differs), and
# `options` may hold either, which no single overload accepts: these calls are where the values
# pass on unchecked by mypy (the names are checked). The delegates' own overloads state the
# types.
def enqueue(
    producer: AsyncProducer, payload: Any, options: EnqueueOptions
) -> Coroutine[Any, Any, MessageId]:
    return producer.enqueue(payload, **options)  # type: ignore[arg-type]


def enqueue_delayed(
    producer: AsyncProducer, payload: Any, delay_seconds: float, options: EnqueueOptions
) -> Coroutine[Any, Any, MessageId]:
    return producer.enqueue_delayed(payload, delay_seconds, **options)  # type: ignore[arg-type]


def enqueue_batch(
    producer: AsyncProducer, payloads: list[Any], options: BatchEnqueueOptions
) -> Coroutine[Any, Any, list[MessageId] | list[EnqueuedId]]:
    return producer.enqueue_batch(payloads, **options)  # type: ignore[arg-type]


def produce(
    store: AsyncStore, queue: str, payload: Any, options: EnqueueOptions
) -> Coroutine[Any, Any, MessageId]:
    return shortcuts.produce(store, queue, payload, **options)  # type: ignore[arg-type]


def produce_batch(
    store: AsyncStore, queue: str, payloads: list[Any], options: BatchEnqueueOptions
) -> Coroutine[Any, Any, list[MessageId] | list[EnqueuedId]]:
    return shortcuts.produce_batch(store, queue, payloads, **options)  # type: ignore[arg-type]
