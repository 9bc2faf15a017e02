"""Dead letters (semantics.md §7.5, §14): poison messages, `dlq`, `dlq_list`, `replay_dlq`."""

from __future__ import annotations

from datetime import datetime

import pytest

import pgqrs
from tests.support.clocks import at

MAX_READ_CT = 5  # the default Config.max_read_ct


def boom(message: pgqrs.QueueMessage) -> None:
    raise RuntimeError(f"cannot handle {message.id}")


async def poison(store: pgqrs.Store, consumer: pgqrs.Consumer, start: datetime) -> None:
    """Fail the handler on the oldest visible message until it has been read `max_read_ct`
    times, each attempt at an injected time past the previous backoff (from `start` on)."""
    for attempt in range(MAX_READ_CT):
        when = start.timestamp() + attempt * 100
        builder = pgqrs.dequeue().worker(consumer).handle(boom).lease(1)
        with pytest.raises(RuntimeError, match="cannot handle"):
            await builder.at(datetime.fromtimestamp(when, start.tzinfo)).execute(store)


async def two_dead_letters(store: pgqrs.Store, queue: str) -> tuple[pgqrs.Producer, int, int]:
    """Two messages of `queue` made dead letters in turn; the producer and their ids."""
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    first, second = await producer.enqueue_batch([{"n": 1}, {"n": 2}])
    await poison(store, consumer, at(10))
    await poison(store, consumer, at(1000))
    return producer, first, second


async def test_round_trip(store: pgqrs.Store, queue: str) -> None:
    producer, first, second = await two_dead_letters(store, queue)
    consumer = await store.consumer(queue)
    admin = pgqrs.admin(store)
    healthy = await producer.enqueue({"n": 3})

    listed = await admin.dlq_list()
    assert [(m.id, m.read_ct, m.archived_at) for m in listed] == [
        (first, MAX_READ_CT, None),
        (second, MAX_READ_CT, None),
    ]
    assert await consumer.dequeue(5) != []  # poison is never claimed: only the healthy one
    await consumer.release_messages([healthy])

    assert await admin.dlq() == [first, second]
    assert await admin.dlq() == []
    messages = await store.get_messages()
    for mid in (first, second):
        dead = await messages.get(mid)
        assert dead.archived_at is not None
        assert dead.read_ct == MAX_READ_CT
    # Archived dead letters stay listed, with their read counts.
    assert [(m.id, m.read_ct) for m in await admin.dlq_list()] == [
        (first, MAX_READ_CT),
        (second, MAX_READ_CT),
    ]

    replayed = await admin.replay_dlq(first)
    assert replayed.id == first
    assert (replayed.read_ct, replayed.archived_at, replayed.consumer_worker_id) == (0, None, None)
    assert replayed.dequeued_at is None
    assert replayed.vt == replayed.enqueued_at
    assert replayed.payload == {"n": 1}

    seen: list[pgqrs.QueueMessage] = []
    await pgqrs.consume(store, queue, seen.append)  # oldest enqueue first: the healthy one
    await pgqrs.consume(store, queue, seen.append)
    assert [m.id for m in seen] == [healthy, first]
    done = await messages.get(first)
    assert done.archived_at is not None
    assert done.read_ct == 1
    assert [m.id for m in await admin.dlq_list()] == [second]


async def test_replay_a_poison_message_directly(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    mid = await producer.enqueue("x")
    await poison(store, consumer, at(10))
    replayed = await pgqrs.admin(store).replay_dlq(mid)
    assert (replayed.read_ct, replayed.archived_at) == (0, None)
    [again] = await consumer.dequeue()
    assert (again.id, again.read_ct) == (mid, 1)


async def test_replay_an_ordinary_archived_message(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    mid = await producer.enqueue("done once")
    await consumer.dequeue()
    await consumer.archive(mid)
    assert await pgqrs.admin(store).dlq_list() == []  # archived on success: not a dead letter
    replayed = await pgqrs.admin(store).replay_dlq(mid)
    assert (replayed.read_ct, replayed.archived_at) == (0, None)


async def test_replay_refusals(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    admin = pgqrs.admin(store)
    with pytest.raises(pgqrs.MessageNotFoundError, match="Message with id '424242' not found"):
        await admin.replay_dlq(424242)
    pending = await producer.enqueue("pending")
    with pytest.raises(pgqrs.ValidationError, match="neither archived nor poison"):
        await admin.replay_dlq(pending)
    # Leased on its last allowed attempt: not poison while the lease runs.
    for attempt in range(MAX_READ_CT):
        claimed = await consumer.dequeue_at(1, 3600 if attempt == 4 else 1, at(10 + attempt * 200))
        assert [m.id for m in claimed] == [pending]
    with pytest.raises(pgqrs.ValidationError, match="neither archived nor poison"):
        await admin.replay_dlq(pending)
    assert await admin.dlq() == []
    assert await admin.dlq_list() == []
    with pytest.raises(TypeError):
        await admin.replay_dlq("1")  # type: ignore[arg-type]


async def test_archive_dead_letter_takes_one(store: pgqrs.Store, queue: str) -> None:
    _, first, second = await two_dead_letters(store, queue)
    admin = pgqrs.admin(store)
    assert await admin.archive_dead_letter(second) is True
    assert await admin.archive_dead_letter(second) is False  # archived already
    listed = await admin.dlq_list()
    assert [(m.id, m.archived_at is None) for m in listed] == [(first, True), (second, False)]
    archived = await (await store.get_messages()).get(second)
    assert (archived.read_ct, archived.archived_at is not None) == (MAX_READ_CT, True)
    assert await admin.dlq() == [first]  # the other one was left alone


async def test_archive_dead_letter_refusals(store: pgqrs.Store, queue: str) -> None:
    producer = await store.producer(queue)
    consumer = await store.consumer(queue)
    admin = pgqrs.admin(store)
    with pytest.raises(pgqrs.MessageNotFoundError, match="Message with id '424242' not found"):
        await admin.archive_dead_letter(424242)
    pending = await producer.enqueue("pending")
    with pytest.raises(pgqrs.ValidationError, match=f"message {pending} is not a dead letter"):
        await admin.archive_dead_letter(pending)
    # Leased on its last allowed attempt: not a dead letter while the lease runs.
    for attempt in range(MAX_READ_CT):
        claimed = await consumer.dequeue_at(1, 3600 if attempt == 4 else 1, at(10 + attempt * 200))
        assert [m.id for m in claimed] == [pending]
    with pytest.raises(pgqrs.ValidationError, match="is not a dead letter"):
        await admin.archive_dead_letter(pending)
    assert (await (await store.get_messages()).get(pending)).archived_at is None
    with pytest.raises(pgqrs.ValidationError, match="message_id must be an int"):
        await admin.archive_dead_letter("1")  # type: ignore[arg-type]


async def test_queue_filter(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    dead: dict[str, int] = {}
    for name in ("a", "b"):
        await store.queue(name)
        dead[name] = await (await store.producer(name)).enqueue(name)
        await poison(store, await store.consumer(name), at(10))
    assert [m.id for m in await admin.dlq_list("b")] == [dead["b"]]
    assert await admin.dlq("a") == [dead["a"]]
    assert [m.archived_at is None for m in await admin.dlq_list()] == [False, True]
    assert await admin.dlq("b") == [dead["b"]]
    for call in (admin.dlq, admin.dlq_list):
        with pytest.raises(pgqrs.QueueNotFoundError, match="Queue 'c' not found"):
            await call("c")
        with pytest.raises(pgqrs.ValidationError):
            await call("bad name")


# -- dead letters say why (issue 10) -----------------------------------------------------------


async def test_dead_letters_say_why(
    store: pgqrs.Store, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed handler's last error (type, message, traceback, attempt) is kept with the
    message, shown by `dead_letters()` / `last_error()` and `pgqrs dlq list`, and the moment
    a message becomes a dead letter is logged."""
    [mid] = await (await store.producer(queue)).enqueue_batch([{"card": "4242"}])
    consumer = await store.consumer(queue)
    with caplog.at_level("WARNING", logger="pgqrs"):
        await poison(store, consumer, at(10))
    [dead] = await pgqrs.admin(store).dead_letters(queue)
    assert dead.message.id == mid
    error = dead.last_error
    assert error is not None
    assert (error.message_id, error.attempt, error.error_type) == (mid, MAX_READ_CT, "RuntimeError")
    assert error.error_message == f"cannot handle {mid}"
    assert error.traceback is not None
    assert "raise RuntimeError" in error.traceback
    assert "RuntimeError: cannot handle" in error.traceback
    assert error.failed_at
    assert await pgqrs.admin(store).last_error(mid) == error
    dead_lines = [r.getMessage() for r in caplog.records if "is a dead letter" in r.getMessage()]
    assert dead_lines == [
        f"message {mid} is a dead letter after {MAX_READ_CT} deliveries; "
        f"last error: RuntimeError: cannot handle {mid}"
    ]


async def test_an_error_is_bounded_in_size(store: pgqrs.Store, queue: str) -> None:
    [mid] = await (await store.producer(queue)).enqueue_batch(["huge"])
    consumer = await store.consumer(queue)

    def huge(message: pgqrs.QueueMessage) -> None:
        raise ValueError("x" * 100_000)

    builder = pgqrs.dequeue().worker(consumer).handle(huge).at(at(10))
    with pytest.raises(ValueError):
        await builder.execute(store)
    error = await pgqrs.admin(store).last_error(mid)
    assert error is not None
    assert len(error.error_message) == 2000
    assert error.traceback is not None
    assert len(error.traceback) <= 8000
