"""`run_worker` in a real process: SIGTERM mid-handler lets the handler finish and stops the
worker; a second SIGTERM releases the message and exits at once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import pgqrs
from tests.support.processes import finished, spawn
from tests.support.target import Target
from tests.support.waiting import eventually, file_appears

pytestmark = pytest.mark.slow


async def test_sigterm_lets_the_handler_finish(
    store: pgqrs.Store, target: Target, queue: str, tmp_path: Path
) -> None:
    mid = await (await store.producer(queue)).enqueue("work")
    child = await spawn("child_consumer", "graceful", queue, str(tmp_path), env=target.env())
    assert int(await file_appears(tmp_path / "started")) == mid
    child.send_signal(signal.SIGTERM)
    assert await finished(child) == 0

    assert int((tmp_path / "finished").read_text()) == mid
    assert (tmp_path / "returned").exists()
    message = await (await store.get_messages()).get(mid)
    assert message.archived_at is not None
    worker = await store.worker(int((tmp_path / "worker").read_text()))
    assert await worker.status() == "stopped"
    assert await pgqrs.admin(store).get_worker_messages(worker.worker_id) == []


async def test_second_sigterm_releases_and_exits(
    store: pgqrs.Store, target: Target, queue: str, tmp_path: Path
) -> None:
    mid = await (await store.producer(queue)).enqueue("work")
    child = await spawn("child_consumer", "stubborn", queue, str(tmp_path), env=target.env())
    assert int(await file_appears(tmp_path / "started")) == mid
    worker = await store.worker(int((tmp_path / "worker").read_text()))
    child.send_signal(signal.SIGTERM)

    async def interrupted() -> bool:
        return await worker.status() == "interrupted"

    await eventually(interrupted)  # the first signal was taken; the handler still runs
    child.send_signal(signal.SIGTERM)
    assert await finished(child) == 0

    assert not (tmp_path / "finished").exists()
    assert (tmp_path / "returned").exists()
    assert await worker.status() == "stopped"
    message = await (await store.get_messages()).get(mid)
    assert (message.archived_at, message.consumer_worker_id, message.read_ct) == (None, None, 1)
    [again] = await (await store.consumer(queue)).dequeue()  # visible again at once
    assert again.id == mid
