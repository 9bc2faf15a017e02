"""Handlers the command-line tests run, in-process and with `pgqrs run` in a real process.

`pgqrs run tests.support.cli_handlers:NAME` imports this module from the repository root (the
working directory of the child). What the handlers did is written to files in $PGQRS_TEST_OUT,
so the parent test waits for events, not for time.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pgqrs
from pgqrs.decorators import step, workflow


def _record(name: str, text: str) -> None:
    out = os.environ.get("PGQRS_TEST_OUT")
    if out:
        with (Path(out) / name).open("a") as f:
            f.write(text + "\n")


async def record(message: pgqrs.QueueMessage) -> None:
    _record("handled", str(message.id))


async def record_batch(messages: list[pgqrs.QueueMessage]) -> None:
    _record("batches", " ".join(str(m.id) for m in messages))


async def explode(message: pgqrs.QueueMessage) -> None:
    raise ValueError(f"cannot handle {message.payload}")


async def hang(message: pgqrs.QueueMessage) -> None:
    """Runs until cancelled: only a second signal stops the worker."""
    _record("started", str(message.id))
    await asyncio.Event().wait()


not_a_function = 42


@step
async def shout(run: pgqrs.Run, name: str) -> str:
    _record("steps", f"shout {run.id()}")
    return name.upper()


@workflow(name="greet")
async def greet(run: pgqrs.Run, who: dict[str, Any]) -> str:
    loud = await shout(run, who["name"])
    return f"hello {loud}"


@workflow(name="doomed")
async def doomed(run: pgqrs.Run, who: dict[str, Any]) -> str:
    raise RuntimeError("no greeting for you")


async def stop_self(message: pgqrs.QueueMessage) -> None:
    """SIGTERM to this very process (in-process tests), then finish once the worker has taken
    the signal: exactly one message is handled."""
    _record("handled", str(message.id))
    os.kill(os.getpid(), signal.SIGTERM)
    config = pgqrs.Config(os.environ["PGQRS_DSN"], schema=os.environ["PGQRS_SCHEMA"])
    if "PGQRS_S3_CACHE_DIR" in os.environ:  # an S3 store needs its local cache directory
        config.s3_cache_dir = os.environ["PGQRS_S3_CACHE_DIR"]
    async with await pgqrs.connect_with(config) as store:
        worker = await store.worker(message.consumer_worker_id or 0)
        for _ in range(500):
            if await worker.status() == "interrupted":
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the worker was never interrupted")
