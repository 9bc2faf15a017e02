"""The production guide (docs/guides/production.md) is executable: its programs run, in order,
as processes.

`worker.py` runs in the background until everything `enqueue.py` produced is archived, then
gets SIGTERM and must exit cleanly with its worker stopped. The programs use their default DSN,
a SQLite file in the working directory (a fresh temporary directory here).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

import pgqrs
from tests.support.docs import programs as page_programs
from tests.support.docs import python_blocks, read
from tests.support.processes import finished
from tests.support.waiting import eventually

PAGE = "docs/guides/production.md"


def programs() -> dict[str, str]:
    return page_programs(read(PAGE))


def test_every_snippet_is_a_program() -> None:
    blocks = len(python_blocks(read(PAGE)))
    assert list(programs()) == [
        "enqueue.py",
        "worker.py",
        "dead_letters.py",
        "metrics.py",
        "maintenance.py",
    ]
    assert blocks == len(programs())


async def run(path: Path, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(path),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.slow
@pytest.mark.backends("sqlite")
async def test_programs_run(backend: str, tmp_path: Path) -> None:
    for name, body in programs().items():
        (tmp_path / name).write_text(body)

    assert await finished(await run(tmp_path / "enqueue.py", tmp_path)) == 0
    store = await pgqrs.connect(f"sqlite://{tmp_path / 'jobs.db'}")
    try:
        admin = pgqrs.admin(store)
        worker = await run(tmp_path / "worker.py", tmp_path)

        async def drained() -> bool:
            return (await admin.queue_metrics("emails")).archived_messages == 3

        await eventually(drained, within=30)  # deadlines, not sleeps: generous for a loaded CI
        worker.send_signal(signal.SIGTERM)
        assert await finished(worker) == 0
        [stats] = await admin.worker_health_stats(60)
        # worker.py's consumer is stopped (and so is a producer row, if produce_batch made one)
        assert stats.stopped_workers >= 1
        assert (stats.ready_workers, stats.polling_workers) == (0, 0)

        for name in ("dead_letters.py", "metrics.py", "maintenance.py"):
            process = await run(tmp_path / name, tmp_path)
            out, err = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 0, err.decode()
            if name == "metrics.py":
                assert 'pgqrs_messages{queue="emails",state="pending"} 0' in out.decode()
    finally:
        await store.close()
