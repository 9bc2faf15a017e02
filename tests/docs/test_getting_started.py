"""Getting started's first worker: `produce.py` enqueues, `worker.py` handles every message
until SIGTERM and then exits 0 with its worker stopped (the page's other blocks run in
test_doc_snippets.py)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

import pgqrs
from tests.support.docs import programs, read
from tests.support.processes import finished
from tests.support.waiting import eventually

PAGE = "docs/getting-started.md"


def test_the_worker_programs_are_there() -> None:
    assert list(programs(read(PAGE))) == ["produce.py", "worker.py"]


async def start(path: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(path),
        cwd=path.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.slow
@pytest.mark.backends("sqlite")
async def test_the_worker_handles_what_was_produced(backend: str, tmp_path: Path) -> None:
    for name, body in programs(read(PAGE)).items():
        (tmp_path / name).write_text(body)
    assert await finished(await start(tmp_path / "produce.py")) == 0

    store = await pgqrs.connect(f"sqlite://{tmp_path / 'start.db'}")
    try:
        admin = pgqrs.admin(store)
        worker = await start(tmp_path / "worker.py")

        async def drained() -> bool:
            return (await admin.queue_metrics("emails")).archived_messages == 5

        await eventually(drained, within=30)
        worker.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(worker.communicate(), 30)
        assert worker.returncode == 0, err.decode()
        assert sorted(out.decode().splitlines()) == [
            f"sending to user{n}@example.com" for n in range(5)
        ]
        [stats] = await admin.worker_health_stats(60)
        assert (stats.stopped_workers, stats.polling_workers) == (1, 0)
    finally:
        await store.close()
