"""Handlers that `pgqrs run --processes` runs in tests/cli/test_run_processes.py.

Each writes what it did to files in $PGQRS_TEST_OUT, one line per event, naming its process, so
the test sees which child handled what and waits for events, not for time.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pgqrs

_barrier_passed: asyncio.Task[None] | None = None  # one wait per process, however many loops


def _out(name: str) -> Path:
    return Path(os.environ["PGQRS_TEST_OUT"]) / name


def _record(name: str, text: str) -> None:
    with _out(name).open("a") as f:
        f.write(text + "\n")


async def _barrier(processes: int) -> None:
    """Until `processes` processes have reached this point (at most 30 s): no child drains
    the backlog alone before another has started. Every loop of a process waits."""
    global _barrier_passed
    if processes < 2:
        return
    if _barrier_passed is None:
        _barrier_passed = asyncio.ensure_future(_arrive(processes))
    await asyncio.shield(_barrier_passed)


async def _arrive(processes: int) -> None:
    _record("arrived", str(os.getpid()))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(set(_out("arrived").read_text().split())) >= processes:
            return
        await asyncio.sleep(0.01)


async def record_pid(message: pgqrs.QueueMessage) -> None:
    """`PID ID` in `handled` once the message is done. The message "hold" is held forever by
    the first process to get it (`PID ID` in `held`), until that process is killed."""
    await _barrier(int(os.environ.get("PGQRS_TEST_PROCESSES", "1")))
    if message.payload == "hold" and not _out("held").exists():
        _record("held", f"{os.getpid()} {message.id}")
        await asyncio.Event().wait()
    await asyncio.sleep(float(os.environ.get("PGQRS_TEST_DELAY", "0")))
    _record("handled", f"{os.getpid()} {message.id}")
