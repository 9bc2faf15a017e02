"""Starting child programs and connecting them to the test's database."""

from __future__ import annotations

import os
import subprocess
import sys
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
