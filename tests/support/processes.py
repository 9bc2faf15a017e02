"""Starting the child programs of tests/support as real processes."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def spawn(module: str, *args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """`python -m tests.support.<module> args...` from the repository root."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"tests.support.{module}",
        *args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finished(process: asyncio.subprocess.Process, within: float = 30.0) -> int:
    """The exit code, within `within` seconds (the process is killed otherwise)."""
    try:
        _, err = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"child still running after {within}s") from None
    code = process.returncode
    assert code is not None
    if code not in (0, -9):
        raise AssertionError(f"child exited with {code}:\n{err.decode(errors='replace')}")
    return code
