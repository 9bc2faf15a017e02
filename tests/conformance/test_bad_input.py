"""Bad input: each case raises its specific exception, with a message that says what to fix, and
writes nothing (issue 2, "Bad input"; semantics.md §1, §4, §5, §6, §8)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

import pgqrs
from tests.support.raw_db import RawDb
from tests.support.target import StoreFactory, Target


@dataclass(frozen=True)
class Counts:
    queues: int
    workers: int
    messages: int


async def counts(store: pgqrs.Store) -> Counts:
    """Rows seen through the table handles: what a rejected call must leave unchanged."""
    return Counts(
        await (await store.get_queues()).count(),
        await (await store.get_workers()).count(),
        await (await store.get_messages()).count(),
    )


@dataclass
class Setup:
    store: pgqrs.Store
    producer: pgqrs.Producer
    consumer: pgqrs.Consumer
    message_id: int  # a message the consumer holds
    pending_id: int  # a message nobody holds


@pytest.fixture
async def setup(store: pgqrs.Store) -> Setup:
    await store.queue("jobs")
    producer = await store.producer("jobs")
    consumer = await store.consumer("jobs")
    held = await producer.enqueue({"n": 1})
    assert [m.id for m in await consumer.dequeue()] == [held]
    pending = await producer.enqueue({"n": 2})
    return Setup(store, producer, consumer, held, pending)


@pytest.fixture
async def unchanged(setup: Setup) -> AsyncIterator[None]:
    """Asserts, after the test, that the table handles count what they counted before, and
    that the held and pending messages are exactly as they were."""
    store = setup.store
    messages = await store.get_messages()
    before = (
        await counts(store),
        await messages.get(setup.message_id),
        await messages.get(setup.pending_id),
    )
    yield
    after = (
        await counts(store),
        await messages.get(setup.message_id),
        await messages.get(setup.pending_id),
    )
    assert after == before


# -- DSNs and schema names (ConfigError before anything happens) --------------------------------


async def test_unknown_dsn_scheme(target: Target) -> None:
    with pytest.raises(pgqrs.ConfigError) as caught:
        await pgqrs.connect("mongodb://localhost/db")
    assert str(caught.value) == (
        "Invalid configuration value for dsn: Unsupported DSN format: mongodb://localhost/db"
    )


async def test_unknown_dsn_scheme_hides_the_password() -> None:
    with pytest.raises(pgqrs.ConfigError) as caught:
        await pgqrs.connect("mysql://user:s3cret@localhost/db")
    assert "s3cret" not in str(caught.value)
    assert "mysql://user:***@localhost/db" in str(caught.value)


@pytest.mark.parametrize(
    "dsn",
    [
        "sqlite:",
        "sqlite://db.sqlite?journal=wal",
        "postgresql://postgres@127.0.0.1:0/test",
        "postgresql://postgres@127.0.0.1:5432/test?sslmode=sometimes&bogus",
    ],
)
async def test_malformed_dsn(dsn: str, target: Target) -> None:
    with pytest.raises(pgqrs.ConfigError, match=r"^Invalid configuration value for dsn: .+"):
        await pgqrs.connect(dsn)


async def test_schema_name_with_sql_in_it(target: Target) -> None:
    with pytest.raises(pgqrs.ConfigError) as caught:
        pgqrs.Config(target.dsn, schema="x; drop schema public")
    message = str(caught.value)
    assert message.startswith("Invalid configuration value for schema: 'x; drop schema public'")
    assert "allowed: ASCII letters, digits, _ $" in message
    if target.backend == "postgres":
        assert RawDb(target).query("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")


# -- queue names --------------------------------------------------------------------------------

BAD_QUEUE_NAMES = {
    "quote": ("it's", "contains '''"),
    "double-quote": ('say"hi"', "contains '\"'"),
    "space": ("two words", "contains ' '"),
    "semicolon": ("q; drop table pgqrs_messages", "contains ';'"),
    "300 characters": ("q" * 300, "must be 1-255 characters (got 300)"),
    "empty": ("", "must be 1-255 characters (got 0)"),
    "non-ASCII": ("café", "contains 'é'"),
}


def queue_calls(store: pgqrs.Store, name: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    admin = pgqrs.admin(store)

    async def queues_purge() -> Any:
        return await (await store.get_queues()).purge(name)

    async def from_queue() -> Any:
        return await pgqrs.dequeue().from_queue(name).handle(lambda m: None).execute(store)

    return {
        "admin.create_queue": lambda: admin.create_queue(name),
        "admin.create_queue(exist_ok)": lambda: admin.create_queue(name, exist_ok=True),
        "store.queue": lambda: store.queue(name),
        "store.get_queue": lambda: store.get_queue(name),
        "admin.get_queue": lambda: admin.get_queue(name),
        "store.producer": lambda: store.producer(name),
        "store.consumer": lambda: store.consumer(name),
        "admin.purge_queue": lambda: admin.purge_queue(name),
        "admin.delete_queue": lambda: admin.delete_queue(name),
        "queues.purge": queues_purge,
        "dequeue().from_queue": from_queue,
    }


@pytest.mark.parametrize("case", BAD_QUEUE_NAMES)
async def test_bad_queue_names(case: str, setup: Setup, unchanged: None) -> None:
    name, reason = BAD_QUEUE_NAMES[case]
    shown = name if len(name) <= 64 else name[:64] + "…"
    for call_name, call in queue_calls(setup.store, name).items():
        with pytest.raises(pgqrs.ValidationError) as caught:
            await call()
        message = str(caught.value)
        assert message.startswith(f"Validation failed: invalid queue name '{shown}': "), call_name
        assert reason in message, call_name


async def test_queue_names_that_are_not_str(setup: Setup, unchanged: None) -> None:
    for bad in (42, None, b"jobs"):
        for call in queue_calls(setup.store, bad).values():  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"queue name"):
                await call()


async def test_longest_valid_queue_name_is_accepted(store: pgqrs.Store) -> None:
    name = "a.b:c-d_" + "q" * 247
    assert len(name) == 255
    assert (await store.queue(name)).queue_name == name


# -- payloads -----------------------------------------------------------------------------------


class NotJson:
    pass


NON_JSON = {
    "set": {1, 2},
    "object": NotJson(),
    "nested set": {"tags": {"a"}},
    "bytes": b"raw",
    "datetime": {"at": datetime(2026, 1, 1, tzinfo=UTC)},
    "tuple key": {(1, 2): "x"},
    "NaN": float("nan"),
    "Infinity": {"x": float("inf")},
    "-Infinity": [1, float("-inf")],
}


def enqueue_calls(producer: pgqrs.Producer, payload: Any) -> dict[str, Awaitable[Any]]:
    """Every way a producer takes a payload; the batches have a good payload first."""
    return {
        "enqueue": producer.enqueue(payload),
        "enqueue_delayed": producer.enqueue_delayed(payload, 10),
        "enqueue_batch": producer.enqueue_batch([payload]),
        "enqueue_batch (second)": producer.enqueue_batch([{"ok": 1}, payload]),
        "pgqrs.enqueue": pgqrs.enqueue(producer, payload),
        "pgqrs.enqueue_batch": pgqrs.enqueue_batch(producer, [{"ok": 1}, payload]),
    }


@pytest.mark.parametrize("case", NON_JSON)
async def test_non_json_payloads(case: str, setup: Setup, unchanged: None) -> None:
    for call_name, call in enqueue_calls(setup.producer, NON_JSON[case]).items():
        with pytest.raises(pgqrs.SerializationError) as caught:
            await call
        message = str(caught.value)
        assert message.startswith("Serialization error: "), call_name
        if call_name.endswith("(second)") or call_name == "pgqrs.enqueue_batch":
            assert message.startswith("Serialization error: Payload at index 1: "), call_name
        # Still catchable as the builtins pgqrs raised.
        assert isinstance(caught.value, TypeError)
        assert isinstance(caught.value, ValueError)


async def test_nan_message_names_the_problem(setup: Setup, unchanged: None) -> None:
    with pytest.raises(pgqrs.SerializationError, match=r"Out of range float values"):
        await setup.producer.enqueue({"score": float("nan")})


async def test_json_edge_values_are_accepted(setup: Setup) -> None:
    payloads: list[Any] = [
        None,
        True,
        0,
        -1.5,
        "",
        [],
        {},
        (1, 2),
        {1: "int key", None: "null key"},
    ]
    ids = await setup.producer.enqueue_batch(payloads)
    messages = await setup.store.get_messages()
    stored = [(await messages.get(i)).payload for i in ids]
    assert stored == [None, True, 0, -1.5, "", [], {}, [1, 2], {"1": "int key", "null": "null key"}]


@pytest.fixture
async def small_store(make_store: StoreFactory, store: pgqrs.Store) -> pgqrs.Store:
    """A store over the installed database with a 64-byte payload limit."""
    small = await make_store(max_payload_size_bytes=64)
    await small.queue("small")
    return small


async def test_oversize_payload_single(small_store: pgqrs.Store) -> None:
    producer = await small_store.producer("small")
    before = await counts(small_store)
    payload = "x" * 100  # stored as 102 bytes with its quotes
    for call in (producer.enqueue(payload), producer.enqueue_delayed(payload, 1)):
        with pytest.raises(pgqrs.ValidationError) as caught:
            await call
        # pgqrs's message, then where the limit comes from (semantics.md §8.1).
        message, _, why = str(caught.value).partition(" (")
        assert message == "Payload size 102 exceeds limit 64"
        assert why.startswith("max_payload_size_bytes = 64 from this process's Config;")
    exact = "y" * 62  # 64 bytes stored: at the limit is fine
    await producer.enqueue(exact)
    after = await counts(small_store)
    assert after == Counts(before.queues, before.workers, before.messages + 1)


async def test_oversize_payload_utf8_bytes_count(
    make_store: StoreFactory, store: pgqrs.Store
) -> None:
    small = await make_store(max_payload_size_bytes=40)
    await small.queue("small")
    producer = await small.producer("small")
    before = await counts(small)
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue({"k": "é" * 20})  # {"k":"éé…"}: 8 + 40 bytes
    assert str(caught.value).partition(" (")[0] == "Payload size 48 exceeds limit 40"
    assert await counts(small) == before


async def test_oversize_payload_in_a_batch(small_store: pgqrs.Store) -> None:
    producer = await small_store.producer("small")
    before = await counts(small_store)
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue_batch([{"ok": 1}, "x" * 100, "y" * 200])
    assert str(caught.value).partition(" (")[0] == (
        "Validation failed: Payload at index 1 too large: 102 bytes exceeds limit 64"
    )
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue_batch(["x" * 100])
    assert str(caught.value).partition(" (")[0] == (
        "Validation failed: Payload at index 0 too large: 102 bytes exceeds limit 64"
    )
    assert await counts(small_store) == before


def nest(levels: int) -> Any:
    """The scalar 1 inside `levels` objects keyed a, b, c…"""
    value: Any = 1
    for level in reversed(range(levels)):
        value = {"abcdefghij"[level]: value}
    return value


async def test_too_deep_payload(setup: Setup, unchanged: None) -> None:
    producer = setup.producer
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue(nest(6))
    # pgqrs's message, then where the limit comes from (semantics.md §8.1).
    message, _, why = str(caught.value).partition(" (")
    assert message == "Validation failed: Object depth 6 exceeds limit 5 at $.a.b.c.d.e.f"
    assert why.startswith("max_object_depth = 5 from this process's Config, pgqrs's default;")
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue([[[[[[1]]]]]])
    assert str(caught.value).partition(" (")[0] == (
        "Validation failed: Object depth 6 exceeds limit 5 at $[0][0][0][0][0][0]"
    )
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue_batch([nest(5), nest(6)])
    assert str(caught.value).partition(" (")[0] == (
        "Validation failed: Payload at index 1: Object depth 6 exceeds limit 5 at $.a.b.c.d.e.f"
    )
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue_batch([nest(6)])
    assert str(caught.value).partition(" (")[0] == (
        "Validation failed: Object depth 6 exceeds limit 5 at $.a.b.c.d.e.f"
    )


async def test_five_levels_are_accepted(setup: Setup) -> None:
    mid = await setup.producer.enqueue(nest(5))
    assert (await (await setup.store.get_messages()).get(mid)).payload == nest(5)


async def test_forbidden_keys(setup: Setup, unchanged: None) -> None:
    producer = setup.producer
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue({"user": {"__proto__": {"admin": True}}})
    assert str(caught.value) == (
        "Validation failed: Forbidden key '__proto__' found in payload at $.user"
    )
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue_batch([{"ok": 1}, [{"constructor": 1}]])
    assert str(caught.value) == (
        "Validation failed: Payload at index 1: "
        "Forbidden key 'constructor' found in payload at $[0]"
    )


async def test_configured_forbidden_and_required_keys(
    make_store: StoreFactory, store: pgqrs.Store
) -> None:
    strict = await make_store(forbidden_keys=["password"], required_keys=["tenant"])
    await strict.queue("strict")
    producer = await strict.producer("strict")
    before = await counts(strict)
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue({"job": 1})
    assert str(caught.value) == "Validation failed: Required key 'tenant' missing from payload"
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue({"tenant": "a", "login": {"password": "x"}})
    assert str(caught.value) == (
        "Validation failed: Forbidden key 'password' found in payload at $.login"
    )
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue_batch([{"tenant": "a"}, {"job": 2}])
    assert str(caught.value) == (
        "Validation failed: Payload at index 1: Required key 'tenant' missing from payload"
    )
    assert await counts(strict) == before
    # Required keys apply to objects only; the defaults are replaced, not extended.
    await producer.enqueue(["no", "keys"])
    await producer.enqueue({"tenant": "a", "__proto__": 1})
    assert (await counts(strict)).messages == before.messages + 2


async def test_long_strings_and_keys(make_store: StoreFactory, store: pgqrs.Store) -> None:
    short = await make_store(max_string_length=8)
    await short.queue("short")
    producer = await short.producer("short")
    before = await counts(short)
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue({"a": ["ok", "123456789"]})
    message, _, why = str(caught.value).partition(" (")
    assert message == "Validation failed: String length 9 exceeds limit 8 at $.a[1]"
    assert why.startswith("max_string_length = 8 from this process's Config;")
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue({"a_long_key": 1})
    assert str(caught.value).partition(" (")[0] == (
        "Validation failed: Key 'a_long_key' length 10 exceeds limit 8 at $"
    )
    assert await counts(short) == before


async def test_serialization_is_checked_before_structure_and_size(
    small_store: pgqrs.Store,
) -> None:
    producer = await small_store.producer("small")
    # The oversize and too-deep payloads come first, the unencodable one last: encoding of every
    # payload is checked before any other rule (semantics.md §8.2).
    with pytest.raises(pgqrs.SerializationError, match=r"^Serialization error: Payload at index 2"):
        await producer.enqueue_batch(["x" * 100, nest(6), {1, 2}])
    with pytest.raises(pgqrs.ValidationError, match=r"Object depth"):
        await producer.enqueue_batch(["x" * 100, nest(6)])


# -- delays, leases, batch sizes, extensions ----------------------------------------------------


async def test_negative_delays(setup: Setup, unchanged: None) -> None:
    for bad in (-1, -0.001, float("nan"), float("-inf")):
        with pytest.raises(ValueError, match=r"delay_seconds must be a finite number >= 0"):
            await setup.producer.enqueue_delayed({"n": 1}, bad)
        with pytest.raises(ValueError, match=r"delay_seconds"):
            await pgqrs.enqueue_delayed(setup.producer, {"n": 1}, bad)
    with pytest.raises(TypeError, match=r"delay_seconds must be a number"):
        await setup.producer.enqueue_delayed({"n": 1}, "5")  # type: ignore[call-overload]


async def test_bad_lease_times(setup: Setup, unchanged: None) -> None:
    consumer = setup.consumer
    now = datetime.now(UTC)
    for bad in (0, -5, 0.5):
        with pytest.raises(ValueError, match=r"vt must be at least 1 second"):
            await consumer.dequeue_many_with_delay(1, vt=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"vt must be at least 1 second"):
            await consumer.dequeue_at(1, bad, now)  # type: ignore[arg-type]
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match=r"lease must be more than 0 seconds"):
            pgqrs.dequeue().lease(bad)
        with pytest.raises(ValueError, match=r"must be more than 0 seconds"):
            pgqrs.dequeue().with_vt(bad)


@pytest.mark.parametrize("bad", [0, -1])
async def test_batch_sizes_below_one(bad: int, setup: Setup, unchanged: None) -> None:
    consumer = setup.consumer
    now = datetime.now(UTC)
    for call in (
        consumer.dequeue(bad),
        consumer.dequeue_many_with_delay(bad, 10),
        consumer.dequeue_at(bad, 10, now),
        pgqrs.dequeue(consumer, bad),
        pgqrs.dequeue(consumer, batch_size=bad),
    ):
        with pytest.raises(ValueError, match=f"must be >= 1, got {bad}"):
            await call


async def test_batch_sizes_above_the_limit(setup: Setup, unchanged: None) -> None:
    consumer, store = setup.consumer, setup.store
    now = datetime.now(UTC)
    message = "Validation failed: batch size 101 exceeds default_max_batch_size 100"
    for call in (
        consumer.dequeue(101),
        consumer.dequeue_many_with_delay(101, 10),
        consumer.dequeue_at(101, 10, now),
        pgqrs.dequeue(consumer, 101),
        pgqrs.dequeue().worker(consumer).batch(101).fetch(store),
        pgqrs.dequeue().from_queue("jobs").batch(101).handle_batch(lambda ms: None).execute(store),
    ):
        with pytest.raises(pgqrs.ValidationError) as caught:
            await call
        assert str(caught.value) == message


async def test_batch_limit_follows_the_config(make_store: StoreFactory, setup: Setup) -> None:
    tight = await make_store(default_max_batch_size=2)
    consumer = await tight.consumer("jobs")
    with pytest.raises(
        pgqrs.ValidationError, match=r"batch size 3 exceeds default_max_batch_size 2"
    ):
        await consumer.dequeue(3)
    assert [m.id for m in await consumer.dequeue(2)] == [setup.pending_id]


async def test_non_int_batch_sizes(setup: Setup, unchanged: None) -> None:
    for bad in (1.5, "2", True):
        with pytest.raises(TypeError, match=r"must be an int"):
            await setup.consumer.dequeue(bad)  # type: ignore[arg-type]


async def test_extend_vt_with_negative_seconds(setup: Setup, unchanged: None) -> None:
    for bad in (-1, -0.5, float("nan")):
        with pytest.raises(ValueError, match=r"seconds must be a finite number >= 0"):
            await setup.consumer.extend_vt(setup.message_id, bad)


# -- times --------------------------------------------------------------------------------------

BAD_TIMES: dict[str, tuple[str | datetime, str, str]] = {
    "naive datetime": (datetime(2030, 1, 1, 12, 0), "2030-01-01T12:00:00", "no UTC offset"),
    "naive string": ("2030-01-01T12:00:00", "2030-01-01T12:00:00", "no UTC offset"),
    "not a time": ("tomorrow", "tomorrow", "Invalid isoformat"),
    "month 13": ("2030-13-01T00:00:00Z", "2030-13-01T00:00:00Z", "month must be in 1..12"),
    "empty": ("", "", "Invalid isoformat"),
}


@pytest.mark.parametrize("case", BAD_TIMES)
async def test_bad_times(case: str, setup: Setup, unchanged: None) -> None:
    value, shown, reason = BAD_TIMES[case]
    expected = f"Invalid ISO 8601 timestamp '{shown}': "
    consumer = setup.consumer

    async def builder_at() -> Any:
        return pgqrs.dequeue().at(value)

    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: consumer.dequeue_at(1, 10, value),
        lambda: consumer.release_with_visibility(setup.message_id, value),
        builder_at,
    ]
    for call in calls:
        with pytest.raises(ValueError) as caught:
            await call()
        assert str(caught.value).startswith(expected)
        assert reason in str(caught.value)


async def test_non_time_values(setup: Setup, unchanged: None) -> None:
    for bad in (1700000000, None):
        with pytest.raises(ValueError, match=r"Invalid ISO 8601 timestamp"):
            await setup.consumer.dequeue_at(1, 10, bad)  # type: ignore[arg-type]


# -- rate limit ---------------------------------------------------------------------------------


async def test_rate_limit(make_store: StoreFactory, store: pgqrs.Store) -> None:
    # One token per second: the test runs in far less than a second, so no token refills.
    limited = await make_store(max_enqueue_per_second=1, max_enqueue_burst=2)
    await limited.queue("limited")
    producer = await limited.producer("limited")
    before = await counts(limited)
    # Rejected payloads and batches over the burst take no tokens.
    with pytest.raises(pgqrs.SerializationError):
        await producer.enqueue(float("nan"))
    with pytest.raises(pgqrs.ValidationError, match=r"Object depth"):
        await producer.enqueue(nest(6))
    with pytest.raises(pgqrs.ValidationError) as caught:
        await producer.enqueue_batch([1, 2, 3])
    assert str(caught.value) == (
        "Validation failed: batch of 3 messages exceeds the enqueue burst limit of 2"
    )
    assert (await counts(limited)).messages == before.messages
    # The full bucket: two tokens.
    await producer.enqueue(1)
    await producer.enqueue(2)
    with pytest.raises(pgqrs.RateLimitedError) as limited_error:
        await producer.enqueue(3)
    retry_after = limited_error.value.retry_after
    assert isinstance(retry_after, float)
    assert 0 < retry_after <= 1.0
    assert str(limited_error.value) == f"Rate limit exceeded, retry after {round(retry_after, 3)}s"
    with pytest.raises(pgqrs.RateLimitedError):
        await producer.enqueue_batch([4, 5])
    assert (await counts(limited)).messages == before.messages + 2
    # Each producer has its own bucket.
    other = await limited.producer("limited")
    await other.enqueue_batch([6, 7])
    assert (await counts(limited)).messages == before.messages + 4


async def test_rate_limit_off_by_default(setup: Setup) -> None:
    assert setup.store.config.max_enqueue_per_second is None
    ids = [await setup.producer.enqueue(i) for i in range(60)]
    assert len(set(ids)) == 60


# -- a database that was never installed --------------------------------------------------------


async def test_operations_on_a_database_never_installed(
    make_store: StoreFactory, target: Target
) -> None:
    store = await make_store()
    admin = pgqrs.admin(store)

    async def handle_count(name: str) -> int:
        handle = await getattr(store, name)()
        count: int = await handle.count()
        return count

    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "store.queue": lambda: store.queue("q"),
        "store.get_queue": lambda: store.get_queue("q"),
        "store.producer": lambda: store.producer("q"),
        "store.consumer": lambda: store.consumer("q"),
        "store.worker": lambda: store.worker(1),
        "admin.create_queue": lambda: admin.create_queue("q"),
        "admin.purge_queue": lambda: admin.purge_queue("q"),
        "admin.delete_queue": lambda: admin.delete_queue("q"),
        "admin.list_workers": admin.list_workers,
        "admin.release_worker_messages": lambda: admin.release_worker_messages(1),
        "workers.count": lambda: handle_count("get_workers"),
        "queues.count": lambda: handle_count("get_queues"),
        "messages.count": lambda: handle_count("get_messages"),
        "produce": lambda: pgqrs.produce(store, "q", {"n": 1}),
    }
    for name, call in calls.items():
        with pytest.raises(pgqrs.PgqrsConnectionError) as caught:
            await call()
        message = str(caught.value)
        assert message.startswith("Database query failed: "), name
        assert "install()" in message, name
    raw = RawDb(target)
    if target.backend == "postgres":
        assert not raw.schema_exists()
    else:
        assert raw.tables() == set()


# -- durations past what any backend can store (issue 10, defect 11) --------------------------

HUGE = 1e12  # seconds: about 31,700 years


@pytest.mark.usefixtures("unchanged")
async def test_huge_durations_are_refused_before_any_write(setup: Setup) -> None:
    """Issue 10, defect 11: `enqueue_delayed(x, 1e12)` raised a bare OverflowError, and on
    PostgreSQL `extend_vt(id, 1e12)` stored a year-33715 time that no later read could load.
    Every duration is bounded by MAX_DURATION_SECONDS (pgqrs's u32 seconds) and refused with
    a ValueError naming the limit, before anything is written."""
    limit = str(pgqrs.validation.MAX_DURATION_SECONDS)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: setup.producer.enqueue_delayed({"n": 3}, HUGE),
        lambda: pgqrs.enqueue_delayed(setup.producer, {"n": 3}, HUGE),
        lambda: setup.consumer.extend_vt(setup.message_id, HUGE),
        lambda: setup.consumer.dequeue_many_with_delay(1, int(HUGE)),
        lambda: pgqrs.admin(setup.store).reclaim_messages(older_than_seconds=int(HUGE)),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=limit):
            await call()
    with pytest.raises(ValueError, match=limit):
        pgqrs.dequeue().lease(HUGE)
    with pytest.raises(pgqrs.ConfigError, match=limit):
        pgqrs.Config("sqlite://x.db", default_lock_time_seconds=int(HUGE))
    with pytest.raises(ValueError, match=limit):
        pgqrs.BackoffStrategy.fixed(int(HUGE))


async def test_the_longest_duration_stores_a_time_every_backend_reads(setup: Setup) -> None:
    longest = pgqrs.validation.MAX_DURATION_SECONDS
    assert await setup.consumer.extend_vt(setup.message_id, longest)
    message = await (await setup.store.get_messages()).get(setup.message_id)
    assert message.vt is not None
    assert message.vt.startswith("21")  # year 21xx
    await setup.consumer.release_messages([setup.message_id])
    [again] = await setup.consumer.dequeue()
    assert again.id == setup.message_id
