"""Payload limits: pgqrs's defaults, a queue's own limits shared by every process, and how a
change reaches running producers (semantics.md §7.6, §8.1; issue 12).

Time is injected (`store.clock`) to step past the producers' refresh interval instead of
waiting for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import pgqrs
from pgqrs.queue.workers import LIMITS_REFRESH
from pgqrs.validation import encode_json
from tests.support.clocks import FixedClock
from tests.support.raw_db import RawDb
from tests.support.target import StoreFactory, Target


def nested(depth: int) -> Any:
    """A scalar inside `depth` containers: its depth is `depth` (semantics.md §8.1)."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def sized(size: int) -> list[str]:
    """A payload whose stored text is exactly `size` bytes, every string within 1,000."""
    strings = ["x" * 1000 for _ in range(size // 1003)]
    short = size - len(encode_json(strings)) - 3  # `,""` for one more string
    payload = [*strings, "x" * short]
    assert len(encode_json(payload).encode()) == size
    return payload


async def written(store: pgqrs.Store) -> tuple[int, int]:
    """How many messages and worker rows the database holds."""
    messages = await (await store.get_messages()).count()
    workers = await (await store.get_workers()).count()
    return messages, workers


async def refused(
    store: pgqrs.Store, call: Callable[[], Awaitable[Any]], match: str
) -> pgqrs.ValidationError:
    """`call` raises ValidationError matching `match` and writes nothing at all."""
    before = await written(store)
    with pytest.raises(pgqrs.ValidationError, match=match) as caught:
        await call()
    assert await written(store) == before
    return caught.value


# -- pgqrs's defaults ------------------------------------------------------------------------


async def test_the_defaults_are_pgqrs_and_refusals_say_where_they_come_from(
    store: pgqrs.Store, queue: str
) -> None:
    producer = await store.producer(queue)
    await producer.enqueue({"s": "x" * 1024, "d": nested(4)})  # at every boundary: accepted
    await producer.enqueue(nested(5))
    await producer.enqueue(sized(1048576))

    error = await refused(
        store,
        lambda: producer.enqueue({"s": "x" * 1025}),
        r"^Validation failed: String length 1025 exceeds limit 1024 at \$\.s ",
    )
    text = str(error)
    # The limit, its value, where it comes from, and how to change it (per queue and process).
    assert "max_string_length = 1024 from this process's Config, pgqrs's default" in text
    assert 'Admin.update_queue("jobs", max_string_length=N)' in text
    assert "`pgqrs queue update jobs --max-string-length N`" in text
    assert "Config.max_string_length" in text

    error = await refused(
        store,
        lambda: producer.enqueue(nested(6)),
        r"^Validation failed: Object depth 6 exceeds limit 5 at \$\.a\.a\.a\.a\.a\.a ",
    )
    assert "max_object_depth = 5 from this process's Config, pgqrs's default" in str(error)
    assert "--max-depth N" in str(error)

    error = await refused(
        store,
        lambda: producer.enqueue(sized(1048577)),
        r"^Payload size 1048577 exceeds limit 1048576 \(max_payload_size_bytes = 1048576 ",
    )
    assert "--max-payload-bytes N" in str(error)
    await refused(
        store,
        lambda: producer.enqueue_batch([{"ok": 1}, {"s": "y" * 1025}]),
        r"^Validation failed: Payload at index 1: String length 1025 exceeds limit 1024",
    )


async def test_a_config_of_its_own_is_named_as_such(make_store: StoreFactory) -> None:
    store = await make_store(max_string_length=8)
    await pgqrs.admin(store).install()
    await store.queue("jobs")
    producer = await store.producer("jobs")
    error = await refused(store, lambda: producer.enqueue("x" * 9), "String length 9")
    assert "max_string_length = 8 from this process's Config;" in str(error)
    assert "pgqrs's default" not in str(error)


# -- the queue's own limits ------------------------------------------------------------------


async def test_create_queue_stores_the_limits_and_queue_settings_reads_them(
    store: pgqrs.Store,
) -> None:
    admin = pgqrs.admin(store)
    await admin.create_queue(
        "big", max_payload_size_bytes=4 << 20, max_string_length=65536, max_object_depth=12
    )
    assert await admin.queue_settings("big") == pgqrs.QueueSettings(
        queue_name="big",
        max_read_ct=5,
        max_payload_size_bytes=4 << 20,
        max_string_length=65536,
        max_object_depth=12,
    )
    await admin.create_queue("plain")
    assert await admin.queue_settings("plain") == pgqrs.QueueSettings("plain", 5)
    # exist_ok on an existing queue changes nothing, limits included.
    await admin.create_queue("big", exist_ok=True, max_string_length=1)
    assert (await admin.queue_settings("big")).max_string_length == 65536
    # Zero is a depth (only scalars), not a length.
    await admin.create_queue("flat", max_object_depth=0)
    assert (await admin.queue_settings("flat")).max_object_depth == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_string_length": 0}, pgqrs.ValidationError, "max_string_length must be between 1"),
        ({"max_payload_size_bytes": 0}, pgqrs.ValidationError, "max_payload_size_bytes must be"),
        ({"max_object_depth": -1}, pgqrs.ValidationError, "max_object_depth must be between 0"),
        ({"max_string_length": 2**31}, pgqrs.ValidationError, "and 2147483647, got 2147483648"),
        ({"max_object_depth": True}, TypeError, "max_object_depth must be an int or None"),
        ({"max_string_length": "4096"}, TypeError, "max_string_length must be an int or None"),
    ],
)
async def test_bad_limits_are_refused_before_any_write(
    store: pgqrs.Store, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    admin = pgqrs.admin(store)
    with pytest.raises(error, match=match):
        await admin.create_queue("jobs", **kwargs)
    assert await admin.list_workers() == []
    assert [q.queue_name for q in await (await store.get_queues()).list()] == []
    await admin.create_queue("jobs")
    with pytest.raises(error, match=match):
        await admin.update_queue("jobs", max_read_ct=9, **kwargs)
    assert await admin.queue_settings("jobs") == pgqrs.QueueSettings("jobs", 5)


async def test_update_queue_changes_what_it_is_given_and_none_gives_back_to_config(
    store: pgqrs.Store,
) -> None:
    admin = pgqrs.admin(store)
    await admin.create_queue("jobs", max_read_ct=7, max_string_length=100)
    updated = await admin.update_queue("jobs", max_object_depth=2)
    assert updated == pgqrs.QueueSettings("jobs", 7, None, 100, 2)
    updated = await admin.update_queue("jobs", max_string_length=None, max_payload_size_bytes=64)
    assert updated == pgqrs.QueueSettings("jobs", 7, 64, None, 2)
    assert await admin.queue_settings("jobs") == updated
    assert await admin.update_queue("jobs", max_read_ct=3) == pgqrs.QueueSettings(
        "jobs", 3, 64, None, 2
    )
    with pytest.raises(pgqrs.ValidationError, match="nothing to update"):
        await admin.update_queue("jobs")
    with pytest.raises(pgqrs.QueueNotFoundError):
        await admin.update_queue("missing", max_string_length=5)
    with pytest.raises(pgqrs.QueueNotFoundError):
        await admin.queue_settings("missing")


async def test_a_queue_limit_is_shared_by_every_process(
    store: pgqrs.Store, make_store: StoreFactory
) -> None:
    """Issue 12: a queue made for big documents works for every producer, whatever its
    Config; a queue kept small refuses them for everyone."""
    await pgqrs.admin(store).create_queue("documents", max_string_length=8192)
    await pgqrs.admin(store).create_queue("tiny", max_string_length=10, max_object_depth=1)
    other = await make_store()  # another process, pgqrs's defaults in its Config
    assert other.config.max_string_length == 1024
    documents = await other.producer("documents")
    await documents.enqueue({"body": "x" * 8192})
    error = await refused(
        other, lambda: documents.enqueue({"body": "x" * 8193}), "String length 8193"
    )
    assert "max_string_length = 8192 set on queue 'documents'" in str(error)
    assert "Config.max_string_length" not in str(error)  # the queue's value is what to change

    tiny = await other.producer("tiny")
    await tiny.enqueue({"a": "x" * 10})
    await refused(other, lambda: tiny.enqueue({"a": "x" * 11}), "set on queue 'tiny'")
    error = await refused(other, lambda: tiny.enqueue({"a": [1]}), "Object depth 2 exceeds limit 1")
    assert "max_object_depth = 1 set on queue 'tiny'" in str(error)
    # A limit the queue leaves unset is the producer's own Config's.
    strict = await make_store(max_payload_size_bytes=20)
    producer = await strict.producer("tiny")
    error = await refused(strict, lambda: producer.enqueue(["x" * 10, "y" * 5]), "Payload size 22")
    assert "max_payload_size_bytes = 20 from this process's Config" in str(error)


async def test_queues_without_limits_use_each_process_config(
    store: pgqrs.Store, target: Target, make_store: StoreFactory
) -> None:
    """A queue created by pgqrs (or before migration 12) has NULL limits."""
    RawDb(target).query("INSERT INTO {s}pgqrs_queues (queue_name) VALUES ('legacy')")
    other = await make_store(max_string_length=2048)
    assert await pgqrs.admin(other).queue_settings("legacy") == pgqrs.QueueSettings("legacy", None)
    await (await other.producer("legacy")).enqueue("x" * 2048)
    producer = await store.producer("legacy")
    await refused(store, lambda: producer.enqueue("x" * 2048), "exceeds limit 1024")


# -- freshness: how a change reaches a running producer ---------------------------------------


async def test_an_update_reaches_a_running_producer_after_the_refresh_interval(
    store: pgqrs.Store, make_store: StoreFactory
) -> None:
    """A producer reads its queue's limits at its first enqueue and again once they are
    LIMITS_REFRESH old by its store's clock: an update never costs an enqueue a read."""
    start = datetime.now(UTC)
    store.clock = FixedClock(start)
    await pgqrs.admin(store).create_queue("jobs", max_string_length=100)
    producer = await store.producer("jobs")
    await producer.enqueue("x" * 100)  # reads the limits

    operator = await make_store()  # `pgqrs queue update` in another process
    await pgqrs.admin(operator).update_queue("jobs", max_string_length=10)
    store.clock = FixedClock(start + LIMITS_REFRESH - timedelta(microseconds=1))
    await producer.enqueue("x" * 100)  # the limits it read are still fresh
    store.clock = FixedClock(start + LIMITS_REFRESH)
    await refused(store, lambda: producer.enqueue("x" * 11), "max_string_length = 10 set on")
    # Raised again (here: back to Config's 1024): accepted once the producer reads it.
    await pgqrs.admin(operator).update_queue("jobs", max_string_length=None)
    await refused(store, lambda: producer.enqueue("x" * 11), "max_string_length = 10 set on")
    store.clock = FixedClock(start + 2 * LIMITS_REFRESH)
    await producer.enqueue("x" * 1024)
    # A clock that went back (an injected one) reads them again too.
    await pgqrs.admin(operator).update_queue("jobs", max_object_depth=0)
    store.clock = FixedClock(start)
    await refused(store, lambda: producer.enqueue([1]), "max_object_depth = 0 set on")


async def test_a_new_producer_applies_the_current_limits_at_once(store: pgqrs.Store) -> None:
    admin = pgqrs.admin(store)
    await admin.create_queue("jobs")
    first = await store.producer("jobs")
    await first.enqueue("x" * 50)
    await admin.update_queue("jobs", max_string_length=10)
    second = await store.producer("jobs")
    await refused(store, lambda: second.enqueue("x" * 50), "String length 50 exceeds limit 10")
    await first.enqueue("x" * 50)  # read less than LIMITS_REFRESH ago (real clock)


# -- module helpers and workflow triggers ------------------------------------------------------


async def test_module_helpers_apply_the_queue_limits_before_registering(
    store: pgqrs.Store,
) -> None:
    admin = pgqrs.admin(store)
    await admin.create_queue("tiny", max_string_length=10)
    await admin.create_queue("documents", max_string_length=4096)
    await refused(store, lambda: pgqrs.produce(store, "tiny", "x" * 11), "set on queue 'tiny'")
    await refused(
        store,
        lambda: pgqrs.produce_batch(store, "tiny", ["ok", "x" * 11]),
        r"^Validation failed: Payload at index 1: String length 11 exceeds limit 10",
    )
    # Looser than Config: what the queue allows is accepted, by the helpers too.
    assert await pgqrs.produce(store, "documents", "x" * 4096) > 0
    assert len(await pgqrs.produce_batch(store, "documents", ["x" * 4096] * 2)) == 2
    # Changes apply at the next call: a helper's producer lives for one call.
    await admin.update_queue("tiny", max_string_length=None)
    assert await pgqrs.produce(store, "tiny", "x" * 11) > 0
    with pytest.raises(pgqrs.QueueNotFoundError):
        await pgqrs.produce(store, "missing", 1)


async def test_workflow_triggers_apply_the_queue_limits(store: pgqrs.Store) -> None:
    await pgqrs.workflow().name("flow").store(store).create()
    admin = pgqrs.admin(store)
    await admin.update_queue("flow", max_string_length=10, max_object_depth=2)
    # The trigger is stored as {"input": X}: the wrapper takes one level (semantics.md §8.1).
    await pgqrs.workflow().name("flow").store(store).trigger({"a": "x" * 10}).execute()
    await refused(
        store,
        lambda: pgqrs.workflow().name("flow").store(store).trigger("x" * 11).execute(),
        "max_string_length = 10 set on queue 'flow'",
    )
    await refused(
        store,
        lambda: pgqrs.workflow().name("flow").store(store).trigger({"a": [1]}).execute(),
        r"Object depth 3 exceeds limit 2 at \$\.input\.a\[0\]",
    )
    await refused(store, lambda: admin.create_workflow("flow", "x" * 11), "set on queue 'flow'")
    # Looser than Config: accepted.
    await admin.update_queue("flow", max_string_length=4096)
    run = await admin.create_workflow("flow", "x" * 2000)
    assert run.input == {"input": "x" * 2000}
    message = await pgqrs.workflow().name("flow").store(store).trigger("x" * 2000).execute()
    assert message.payload == "x" * 2000


async def test_a_workflow_created_with_its_trigger_uses_config(store: pgqrs.Store) -> None:
    """Admin.create_workflow makes the queue when it is missing: Config's limits apply."""
    await refused(
        store,
        lambda: pgqrs.admin(store).create_workflow("new", "x" * 1025),
        "max_string_length = 1024 from this process's Config, pgqrs's default",
    )
    await pgqrs.admin(store).create_workflow("new", "x" * 1024)
