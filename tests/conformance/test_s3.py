"""What is special about S3 (semantics.md §15): several stores on one object, conflicts, a writer
killed before its upload, remote deletion, network failure, and the S3 configuration errors.

Every test runs against moto's S3 server on loopback (tests/support/s3server.py).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pgqrs
from pgqrs import DurabilityMode, SyncState
from tests.support.process import spawn
from tests.support.s3server import S3Server
from tests.support.target import StoreFactory, Target

pytestmark = pytest.mark.backends("s3")

LOCAL = DurabilityMode.Local


def bucket_and_key(target: Target) -> tuple[str, str]:
    bucket, _, key = target.dsn.removeprefix("s3://").partition("/")
    return bucket, key


def conflict(err: BaseException) -> bool:
    return type(err) is pgqrs.PgqrsError and "conflict" in str(err).lower()


async def payloads(target: Target, tmp_path: Path) -> list[Any]:
    """Every unarchived payload in the remote object, read by a store that starts afresh."""
    fresh = await target.connect(s3_cache_dir=str(tmp_path / "fresh-reader"))
    try:
        consumer = await fresh.consumer("jobs")
        messages = await consumer.dequeue_many_with_delay(100, 30)
        return sorted((m.payload for m in messages), key=repr)
    finally:
        await fresh.close()


async def test_a_durable_writer_and_a_reader_see_each_others_writes(
    store: pgqrs.Store, queue: str, make_store: StoreFactory
) -> None:
    reader = await make_store()
    producer = await store.producer(queue)
    first = await producer.enqueue({"n": 1})
    # The reader's next call sees the new ETag and switches to a fresh download.
    assert await (await reader.get_messages()).count() == 1
    consumer = await reader.consumer(queue)
    [message] = await consumer.dequeue()
    assert message.id == first
    assert await consumer.archive(first) is True
    # ...and the writer sees what the reader wrote.
    assert await (await store.get_messages()).count() == 0
    second = await producer.enqueue({"n": 2})
    assert [m.id for m in await consumer.dequeue()] == [second]
    assert await pgqrs.as_s3(store).state() == SyncState.RemoteChanges  # the reader wrote last
    assert await pgqrs.as_s3(reader).state() == SyncState.InSync


async def test_a_local_reader_sees_remote_writes_after_a_snapshot(
    store: pgqrs.Store, queue: str, make_store: StoreFactory, tmp_path: Path
) -> None:
    local = await make_store(s3_mode=LOCAL, s3_cache_dir=str(tmp_path / "local"))
    handle = pgqrs.as_s3(local)
    assert handle.mode == LOCAL
    assert await handle.state() == SyncState.RemoteChanges  # never synced: last_etag is None
    await handle.snapshot()
    assert await handle.state() == SyncState.InSync
    await (await store.producer(queue)).enqueue("hello")
    assert await handle.state() == SyncState.RemoteChanges
    assert await (await local.get_messages()).count() == 0  # Local mode reads its own cache
    await handle.snapshot()
    assert await (await local.get_messages()).count() == 1
    await handle.sync()  # nothing to upload: changes nothing
    assert await handle.state() == SyncState.InSync


async def test_cache_files_are_named_after_bucket_key_and_etag(
    store: pgqrs.Store, target: Target, make_store: StoreFactory, tmp_path: Path
) -> None:
    cache = tmp_path / "named"
    local = await make_store(s3_mode=LOCAL, s3_cache_dir=str(cache))
    bucket, key = bucket_and_key(target)
    stem = f"{bucket}_{key}".replace("/", "_")
    assert (cache / f"{stem}.local.sqlite").exists()
    await pgqrs.as_s3(local).snapshot()
    etag = _etag(local)
    sanitised = "".join(c if c.isalnum() or c in "._-" else "_" for c in etag)
    assert (cache / f"{stem}.{sanitised}.sqlite").exists()


def _etag(store: pgqrs.Store) -> str:
    """The ETag a store last saw (internal: the handle does not expose it)."""
    etag = store.db.last_etag  # type: ignore[attr-defined]
    assert isinstance(etag, str)
    return etag


async def test_two_durable_writers_racing_never_lose_or_merge_writes(
    store: pgqrs.Store, queue: str, make_store: StoreFactory, target: Target, tmp_path: Path
) -> None:
    other = await make_store()
    producers = {"a": await store.producer(queue), "b": await other.producer(queue)}
    acknowledged: list[dict[str, Any]] = []
    conflicts = 0
    for round_ in range(6):
        attempts = [{"by": name, "round": round_} for name in producers]
        outcomes = await asyncio.gather(
            *(producers[str(p["by"])].enqueue(p) for p in attempts), return_exceptions=True
        )
        for payload, outcome in zip(attempts, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                assert conflict(outcome), repr(outcome)
                conflicts += 1
            else:
                acknowledged.append(payload)
    assert conflicts >= 1, "the writers never raced"
    assert len(acknowledged) >= 6, "every round has a winner"
    # Exactly the acknowledged writes are in the object: nothing lost, nothing merged in.
    assert await payloads(target, tmp_path) == sorted(acknowledged, key=repr)


async def test_two_local_writers_one_sync_wins_the_other_conflicts(
    store: pgqrs.Store, queue: str, make_store: StoreFactory, target: Target, tmp_path: Path
) -> None:
    a = await make_store(s3_mode=LOCAL, s3_cache_dir=str(tmp_path / "a"))
    b = await make_store(s3_mode=LOCAL, s3_cache_dir=str(tmp_path / "b"))
    for writer in (a, b):
        await pgqrs.as_s3(writer).snapshot()
    await (await a.producer(queue)).enqueue("from a")
    await (await b.producer(queue)).enqueue("from b")
    assert await pgqrs.as_s3(a).state() == SyncState.LocalChanges
    await pgqrs.as_s3(a).sync()
    assert await pgqrs.as_s3(a).state() == SyncState.InSync
    assert await pgqrs.as_s3(b).state() == SyncState.ConcurrentChanges
    with pytest.raises(pgqrs.PgqrsError, match="Conflict: sync conflict") as err:
        await pgqrs.as_s3(b).sync()
    assert conflict(err.value)
    with pytest.raises(pgqrs.PgqrsError, match="unsynced writes"):
        await pgqrs.as_s3(b).snapshot()
    assert await payloads(target, tmp_path) == ["from a"]


@pytest.mark.slow
async def test_a_writer_killed_between_local_commit_and_upload(
    store: pgqrs.Store, queue: str, target: Target, make_store: StoreFactory
) -> None:
    """The killed call never returned, so its write was never acknowledged: after a restart a
    Durable store starts from the remote object, which does not have it. Nothing is half
    uploaded (the remote holds what the child acknowledged: its producer's registration), and
    the next writers are not in conflict."""
    producer = await store.producer(queue)
    kept = await producer.enqueue("acknowledged")
    child = spawn("s3_crash_child", target.env(), queue)
    try:
        assert child.stdout is not None
        assert (await asyncio.to_thread(child.stdout.readline)).strip() == "committing"
        assert await asyncio.to_thread(child.wait, 10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pipe in (child.stdin, child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
    # A restart on the same cache directory: the dead store's file is replaced by the remote.
    restarted = await make_store()
    assert await pgqrs.as_s3(restarted).state() == SyncState.InSync
    consumer = await restarted.consumer(queue)
    assert [m.payload for m in await consumer.dequeue_many_with_delay(10, 30)] == ["acknowledged"]
    assert await consumer.archive(kept) is True  # writing goes on without a conflict
    assert await (await store.get_messages()).count() == 0  # the first store follows along


async def test_remote_deleted_under_a_local_store_with_unsynced_writes(
    store: pgqrs.Store,
    queue: str,
    make_store: StoreFactory,
    target: Target,
    tmp_path: Path,
    s3_server: S3Server,
) -> None:
    local = await make_store(s3_mode=LOCAL, s3_cache_dir=str(tmp_path / "local"))
    handle = pgqrs.as_s3(local)
    await handle.snapshot()
    await (await local.producer(queue)).enqueue("only here")
    assert await handle.state() == SyncState.LocalChanges
    bucket, key = bucket_and_key(target)
    await asyncio.to_thread(s3_server.client().delete_object, Bucket=bucket, Key=key)
    assert await handle.state() == SyncState.RemoteMissingDirty
    with pytest.raises(pgqrs.NotFoundError, match=f"S3 object 's3://{bucket}/{key}' not found"):
        await pgqrs.as_s3(store).snapshot()
    await handle.sync()  # the cache recreates the object
    assert await handle.state() == SyncState.InSync
    assert await payloads(target, tmp_path) == ["only here"]


async def test_remote_deleted_under_a_clean_local_store(
    store: pgqrs.Store,
    make_store: StoreFactory,
    target: Target,
    tmp_path: Path,
    s3_server: S3Server,
) -> None:
    local = await make_store(s3_mode=LOCAL, s3_cache_dir=str(tmp_path / "local"))
    await pgqrs.as_s3(local).snapshot()
    bucket, key = bucket_and_key(target)
    await asyncio.to_thread(s3_server.client().delete_object, Bucket=bucket, Key=key)
    assert await pgqrs.as_s3(local).state() == SyncState.RemoteMissingClean
    with pytest.raises(pgqrs.NotFoundError):
        await pgqrs.as_s3(local).snapshot()


async def test_remote_deleted_under_a_durable_store(
    store: pgqrs.Store, queue: str, target: Target, tmp_path: Path, s3_server: S3Server
) -> None:
    """A clean Durable store cannot follow a deleted object: its calls raise NotFoundError
    until the application uploads the cache again with `sync()`."""
    await (await store.producer(queue)).enqueue("kept")
    bucket, key = bucket_and_key(target)
    await asyncio.to_thread(s3_server.client().delete_object, Bucket=bucket, Key=key)
    with pytest.raises(pgqrs.NotFoundError, match="not found"):
        await (await store.get_messages()).count()
    assert await pgqrs.as_s3(store).state() == SyncState.RemoteMissingClean
    await pgqrs.as_s3(store).sync()
    assert await pgqrs.as_s3(store).state() == SyncState.InSync
    assert await payloads(target, tmp_path) == ["kept"]


@pytest.fixture
def own_server(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[S3Server, str]]:
    """A second moto server this test may stop; stores connected meanwhile use it."""
    server = S3Server()
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    bucket = f"pgqrs-outage-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=bucket)
    yield server, f"s3://{bucket}/queue.sqlite"
    server.stop()


async def producing(
    dsn: str, tmp_path: Path, connect_timeout: int
) -> tuple[pgqrs.Store, pgqrs.Producer]:
    """A Durable store on `dsn` (installed, queue "jobs") and a producer that sent "before"."""
    config = pgqrs.Config(
        dsn, s3_cache_dir=str(tmp_path / "c"), connection_timeout_seconds=connect_timeout
    )
    store = await pgqrs.connect_with(config)
    await pgqrs.admin(store).install()
    await store.queue("jobs")
    producer = await store.producer("jobs")
    await producer.enqueue("before")
    return store, producer


@pytest.mark.slow
async def test_network_failure_then_retry(
    backend: str, own_server: tuple[S3Server, str], tmp_path: Path
) -> None:
    server, dsn = own_server
    store, producer = await producing(dsn, tmp_path, connect_timeout=5)
    try:
        port = server.get_host_and_port()[1]
        server.stop()
        with pytest.raises(pgqrs.PgqrsConnectionError):
            await producer.enqueue("during")  # fails at the ETag check, before writing
        with pytest.raises(pgqrs.PgqrsConnectionError):
            await (await store.get_messages()).count()
        restarted = S3Server(port)  # same port, same in-process data
        restarted.start()
        try:
            await producer.enqueue("after")
            assert await pgqrs.as_s3(store).state() == SyncState.InSync
            consumer = await store.consumer("jobs")
            got = [m.payload for m in await consumer.dequeue_many_with_delay(10, 30)]
            assert got == ["before", "after"]
        finally:
            restarted.stop()
    finally:
        await store.close()


@pytest.mark.slow
async def test_an_upload_that_lands_after_its_timeout_is_no_conflict(
    backend: str, own_server: tuple[S3Server, str], tmp_path: Path
) -> None:
    """Issue 10, defect 5: an upload that went through while its caller had stopped waiting
    (a timeout, or a cancellation) left the store's recorded ETag behind; the next operation
    took the store's own upload for another writer's and reported a sync conflict (a poll
    loop on that store then stopped). A single writer never conflicts with itself."""
    server, dsn = own_server
    store, producer = await producing(dsn, tmp_path, connect_timeout=1)
    try:
        server.late_put_replies = 1.5
        with pytest.raises(pgqrs.TimeoutError):
            await producer.enqueue("slow")  # committed and uploaded; the reply came too late
        server.late_put_replies = 0.0
        await producer.enqueue("after")
        assert await pgqrs.as_s3(store).state() == SyncState.InSync
        consumer = await store.consumer("jobs")
        got = [m.payload for m in await consumer.dequeue_many_with_delay(10, 30)]
        assert got == ["before", "slow", "after"]
    finally:
        server.late_put_replies = 0.0
        await store.close()


@pytest.mark.slow
async def test_a_silent_endpoint_times_out(
    backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        config = pgqrs.Config(
            "s3://silent-bucket/q.sqlite",
            s3_mode=LOCAL,  # connecting in Local mode makes no request
            s3_cache_dir=str(tmp_path / "c"),
            connection_timeout_seconds=1,
        )
        store = await pgqrs.connect_with(config)
        try:
            with pytest.raises(pgqrs.TimeoutError, match="Operation timeout"):
                await asyncio.wait_for(pgqrs.as_s3(store).state(), 10)
        finally:
            await store.close()


async def test_s3_config_errors(target: Target, tmp_path: Path) -> None:
    with pytest.raises(pgqrs.ConfigError, match="cache dir cannot be empty"):
        pgqrs.Config(target.dsn, s3_cache_dir="  ")
    with pytest.raises(pgqrs.ConfigError) as err:
        await pgqrs.connect(target.dsn)
    assert str(err.value) == (
        "Invalid configuration value for s3_cache_dir: cache_dir must be set for s3 stores"
    )
    cache = str(tmp_path / "c")
    for dsn, missing in (("s3://only-bucket", "key"), ("s3:///key.sqlite", "bucket")):
        with pytest.raises(pgqrs.ConfigError, match=missing):
            await pgqrs.connect_with(pgqrs.Config(dsn, s3_cache_dir=cache))


async def test_missing_boto3_is_a_config_error(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` fail
    monkeypatch.delitem(sys.modules, "pgqrs.store.s3_remote", raising=False)
    with pytest.raises(pgqrs.ConfigError) as err:
        await target.connect()
    assert str(err.value) == (
        "Invalid configuration value for dsn: s3 backend needs the 'boto3' package"
    )


@pytest.mark.backends("sqlite", "postgres", "turso")
async def test_as_s3_refuses_other_backends(store: pgqrs.Store, backend: str) -> None:
    with pytest.raises(TypeError) as err:
        pgqrs.as_s3(store)
    assert str(err.value) == f"store backend is '{backend}', expected 's3'"
