"""Helpers shared by the workflow tests: runs in a given state, raw row reads, time shifts."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from subprocess import Popen, TimeoutExpired
from typing import Any

import pgqrs
from pgqrs.tables import messages

WF = "wf"


async def new_run(store: pgqrs.Store, arg: Any = 1, name: str = WF) -> pgqrs.Run:
    """A QUEUED run with its own pending trigger message."""
    return await pgqrs.admin(store).create_workflow(name, arg)


async def run_in(store: pgqrs.Store, status: str, name: str = WF) -> pgqrs.Run:
    """A run brought to `status` through the public API only."""
    run = await new_run(store, name=name)
    if status == "QUEUED":
        pass
    elif status == "RUNNING":
        await run.start()
    elif status == "PAUSED":
        await run.start()
        await run.pause("later", 30)
    elif status == "CANCELLING":
        await run.cancel()
    elif status == "CANCELLED":
        await run.cancel()
        with _expect(pgqrs.WorkflowCancelledError):
            await run.acquire_step("any")  # acquisition finalises the cancellation
    elif status == "SUCCESS":
        await run.success({"done": True})
    elif status == "ERROR":
        await run.fail("broken")
    else:
        raise AssertionError(status)
    assert await run.status() == status
    return run


class _expect:
    def __init__(self, kind: type[BaseException]) -> None:
        self.kind = kind

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        assert kind is not None, f"expected {self.kind}"
        assert issubclass(kind, self.kind), f"expected {self.kind}, got {kind}"
        return True


async def message_of(store: pgqrs.Store, run: pgqrs.Run) -> pgqrs.QueueMessage:
    return await (await store.get_messages()).get(run.message_id)


async def message_row(store: pgqrs.Store, message_id: int) -> pgqrs.QueueMessage:
    db = store.db
    return (await store.messages.read(db, [await messages.get_row(db, message_id)]))[0]


async def step_row(store: pgqrs.Store, run: pgqrs.Run, name: str) -> pgqrs.StepRecord:
    rows = await (await store.get_workflow_steps()).list_by_run(run.id())
    [row] = [r for r in rows if r.step_name == name]
    return row


def at(moment: datetime, plus: float = 0.0) -> datetime:
    return moment + timedelta(seconds=plus)


def parse(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


# -- worker processes (tests/support/workflow_child.py) -----------------------------------------


def spawn_worker(env: dict[str, str], flow: str, directory: Path, lease: float) -> Popen[bytes]:
    """Start a workflow worker process polling the `flow` workflow's queue."""
    child_env = {
        **os.environ,
        **env,
        "PGQRS_CHILD_DIR": str(directory),
        "PGQRS_CHILD_LEASE": str(lease),
    }
    root = Path(__file__).resolve().parents[2]
    return Popen(
        [sys.executable, "-m", "tests.support.workflow_child", flow], cwd=root, env=child_env
    )


async def wait_for_exit(process: Popen[bytes], seconds: float) -> int:
    return await asyncio.to_thread(process.wait, seconds)


async def stop_worker(process: Popen[bytes], seconds: float = 10) -> int:
    """SIGTERM interrupts the worker's consumer; it exits once its loop has ended."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return await wait_for_exit(process, seconds)
    except TimeoutExpired:
        process.kill()
        raise


async def wait_until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """Poll `check` every 50 ms until it holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.05)


def effects(directory: Path) -> Counter[tuple[int, str]]:
    """Side effects logged by worker processes: how many times each (run id, what) happened."""
    path = directory / "effects.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter((int(run), what) for run, what in (line.split(" ", 1) for line in lines))
