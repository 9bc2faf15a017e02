"""Starting child programs and connecting them to the test's database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pgqrs

ROOT = Path(__file__).resolve().parents[2]


async def child_store(**fields: Any) -> pgqrs.Store:
    """In a child: connect to the database the parent test named in the environment."""
    config = pgqrs.Config(os.environ["PGQRS_CHILD_DSN"], **fields)
    if "PGQRS_CHILD_S3_CACHE_DIR" in os.environ and "s3_cache_dir" not in fields:
        config.s3_cache_dir = os.environ["PGQRS_CHILD_S3_CACHE_DIR"]
    if config.dsn.startswith(("postgres://", "postgresql://")):
        config.schema = os.environ["PGQRS_CHILD_SCHEMA"]
    return await pgqrs.connect_with(config)


def spawn(module: str, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """Start `python -m tests.support.<module> args...` with line-buffered text pipes."""
    return subprocess.Popen(
        [sys.executable, "-u", "-m", f"tests.support.{module}", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.asynccontextmanager
async def consumer_processes(
    store: pgqrs.Store, env: dict[str, str], count: int, *args: str
) -> AsyncIterator[list[int]]:
    """`count` drain_child processes (`args` as its arguments), yielding their worker ids once
    each has registered; on the way out each worker is interrupted and its process must end
    cleanly (any left is killed)."""
    children = [spawn("drain_child", env, *args) for _ in range(count)]
    try:
        worker_ids = []
        for child in children:
            assert child.stdout is not None
            line = await asyncio.to_thread(child.stdout.readline)
            assert line.strip(), child.stderr.read() if child.stderr else "no output"
            worker_ids.append(int(line))
        yield worker_ids
        for worker_id in worker_ids:
            await (await store.worker(worker_id)).interrupt()
        for child in children:
            assert await asyncio.to_thread(child.wait, 20) == 0, (
                child.stderr.read() if child.stderr else ""
            )
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
            for pipe in (child.stdin, child.stdout, child.stderr):
                if pipe is not None:
                    pipe.close()
