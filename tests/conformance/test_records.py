"""Records returned by a real store: their fields and types, immutability, equality, and the
RFC 3339 UTC form of every timestamp (api.md §0, §9; semantics.md §5.1)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import pgqrs


def assert_timestamp(value: Any) -> datetime:
    """`value` is an RFC 3339 string in UTC that `datetime.fromisoformat` reads back exactly."""
    assert isinstance(value, str), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value
    assert value.endswith("+00:00"), value
    assert "T" in value, value
    assert parsed.isoformat() == value  # canonical: no stray spaces, no "Z", no padding
    return parsed


def assert_fields(record: Any, expected: dict[str, type | tuple[type, ...]]) -> None:
    """Exactly these fields, in this order, each holding a value of its type."""
    assert [f.name for f in dataclasses.fields(record)] == list(expected)
    for name, kind in expected.items():
        value = getattr(record, name)
        assert isinstance(value, kind), (name, value)
        if kind is int or kind == (int, type(None)):
            assert not isinstance(value, bool), name


OPT_INT = (int, type(None))
OPT_STR = (str, type(None))


async def test_queue_info(store: pgqrs.Store) -> None:
    before = datetime.now(UTC)
    info = await store.queue("jobs")
    assert_fields(info, {"id": int, "queue_name": str, "created_at": str})
    assert info.queue_name == "jobs"
    created = assert_timestamp(info.created_at)
    assert before - timedelta(seconds=5) <= created <= datetime.now(UTC) + timedelta(seconds=5)
    # Every way of reading the queue gives an equal record.
    assert await store.get_queue("jobs") == info
    assert await pgqrs.admin(store).get_queue("jobs") == info
    assert await pgqrs.admin(store).create_queue("jobs", exist_ok=True) == info
    assert (await (await store.get_queues()).list()) == [info]
    assert hash(info) == hash(await store.get_queue("jobs"))


async def test_worker_info(store: pgqrs.Store) -> None:
    info = await store.queue("jobs")
    consumer = await store.consumer("jobs", name="worker-1")
    record = await (await store.get_workers()).get(consumer.worker_id)
    assert_fields(
        record,
        {
            "id": int,
            "name": str,
            "status": pgqrs.WorkerStatus,
            "queue_id": OPT_INT,
            "heartbeat_at": str,
            "started_at": str,
            "shutdown_at": OPT_STR,
        },
    )
    assert (record.id, record.name, record.queue_id) == (consumer.worker_id, "worker-1", info.id)
    assert record.status is pgqrs.WorkerStatus.Ready
    assert record.status == "READY"  # type: ignore[comparison-overlap]  # equals its name
    assert record.shutdown_at is None
    assert assert_timestamp(record.started_at) == assert_timestamp(record.heartbeat_at)
    await consumer.shutdown()
    stopped = await (await store.get_workers()).get(consumer.worker_id)
    assert stopped.status is pgqrs.WorkerStatus.Stopped
    assert assert_timestamp(stopped.shutdown_at) >= assert_timestamp(stopped.started_at)
    assert stopped != record
    assert await pgqrs.admin(store).list_workers() == [stopped]


async def test_queue_message(store: pgqrs.Store) -> None:
    info = await store.queue("jobs")
    producer = await store.producer("jobs")
    consumer = await store.consumer("jobs")
    mid = await producer.enqueue({"task": "x", "n": [1, 2.5, None, True]})
    messages = await store.get_messages()
    fresh = await messages.get(mid)
    expected: dict[str, type | tuple[type, ...]] = {
        "id": int,
        "queue_id": int,
        "payload": object,
        "raw_payload": object,
        "vt": OPT_STR,
        "enqueued_at": str,
        "read_ct": int,
        "dequeued_at": OPT_STR,
        "producer_worker_id": OPT_INT,
        "consumer_worker_id": OPT_INT,
        "archived_at": OPT_STR,
        "trace_context": OPT_STR,  # beyond pgqrs (issue 15): None, no trace was current
    }
    assert_fields(fresh, expected)
    assert (fresh.id, fresh.queue_id, fresh.read_ct) == (mid, info.id, 0)
    assert fresh.payload == fresh.raw_payload == {"task": "x", "n": [1, 2.5, None, True]}
    assert (fresh.producer_worker_id, fresh.consumer_worker_id) == (producer.worker_id, None)
    assert (fresh.dequeued_at, fresh.archived_at) == (None, None)
    assert assert_timestamp(fresh.vt) == assert_timestamp(fresh.enqueued_at)

    [claimed] = await consumer.dequeue()
    assert_fields(claimed, expected)
    assert claimed == await messages.get(mid)  # what the claim returned is what is stored
    assert claimed != fresh
    assert (claimed.read_ct, claimed.consumer_worker_id) == (1, consumer.worker_id)
    leased_until = assert_timestamp(claimed.vt)
    dequeued = assert_timestamp(claimed.dequeued_at)
    assert leased_until - dequeued == timedelta(seconds=30)  # default_lock_time_seconds

    assert await consumer.archive(mid)
    archived = await messages.get(mid)
    assert_fields(archived, expected)
    assert_timestamp(archived.archived_at)
    assert archived.consumer_worker_id == consumer.worker_id  # archived rows keep their owner
    assert (await messages.list_archived_by_queue(info.id)) == [archived]


async def test_records_are_frozen(store: pgqrs.Store) -> None:
    info = await store.queue("jobs")
    producer = await store.producer("jobs")
    mid = await producer.enqueue(1)
    message = await (await store.get_messages()).get(mid)
    worker = await (await store.get_workers()).get(producer.worker_id)
    for record, field in ((info, "queue_name"), (message, "payload"), (worker, "status")):
        with pytest.raises(AttributeError):
            setattr(record, field, "changed")
        with pytest.raises(AttributeError):
            record.extra = 1  # type: ignore[union-attr]
    assert (await store.get_queue("jobs")).queue_name == "jobs"


async def test_records_compare_by_value(store: pgqrs.Store) -> None:
    await store.queue("jobs")
    producer = await store.producer("jobs")
    mid = await producer.enqueue({"a": 1})
    messages = await store.get_messages()
    one, two = await messages.get(mid), await messages.get(mid)
    assert one is not two
    assert one == two
    assert dataclasses.replace(one, read_ct=9) != one
    assert repr(one).startswith("QueueMessage(id=")
    assert f"id={mid}" in repr(one)


@pytest.mark.parametrize(
    ("given", "claimed_at", "lease_end"),
    [
        # Offsets are converted to UTC; microseconds are kept; zero microseconds are omitted.
        ("2030-01-01T12:00:00+02:00", "2030-01-01T10:00:00+00:00", "2030-01-01T10:00:30+00:00"),
        (
            "2030-06-30T23:59:45.123456Z",
            "2030-06-30T23:59:45.123456+00:00",
            "2030-07-01T00:00:15.123456+00:00",
        ),
        (
            datetime(2030, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=-5))),
            "2030-01-01T05:30:00+00:00",
            "2030-01-01T05:30:30+00:00",
        ),
    ],
)
async def test_injected_times_read_back_in_utc(
    store: pgqrs.Store, given: Any, claimed_at: str, lease_end: str
) -> None:
    await store.queue("jobs")
    producer = await store.producer("jobs")
    consumer = await store.consumer("jobs")
    await producer.enqueue(1)
    [message] = await consumer.dequeue_at(1, 30, given)
    assert (message.dequeued_at, message.vt) == (claimed_at, lease_end)
    stored = await (await store.get_messages()).get(message.id)
    assert (stored.dequeued_at, stored.vt) == (claimed_at, lease_end)


async def test_non_utc_offsets_are_converted(store: pgqrs.Store) -> None:
    await store.queue("jobs")
    producer = await store.producer("jobs")
    consumer = await store.consumer("jobs")
    mid = await producer.enqueue(1)
    [message] = await consumer.dequeue_at(1, 10, "2030-01-01T00:00:00-05:00")
    assert message.dequeued_at == "2030-01-01T05:00:00+00:00"
    visible = datetime(2031, 1, 1, 3, 0, 0, 250, tzinfo=timezone(timedelta(hours=3)))
    assert await consumer.release_with_visibility(mid, visible)
    released = await (await store.get_messages()).get(mid)
    assert released.vt == "2031-01-01T00:00:00.000250+00:00"
    assert released.consumer_worker_id is None
