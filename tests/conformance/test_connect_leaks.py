"""A connect that fails leaves nothing open: no file descriptor, no connection for the collector
(which Python 3.13 reports as a ResourceWarning, an error under this suite's settings)."""

from __future__ import annotations

import gc
import os
import warnings
from pathlib import Path

import pytest

import pgqrs
from tests.support.target import Target


def open_descriptors_of(path: Path) -> list[str]:
    """This process's file descriptors open on `path` (Linux /proc)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                found.append(fd)
        except OSError:  # the descriptor listdir itself used, closed meanwhile
            continue
    return found


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("query", ["", "?mode=rw", "?mode=ro"])
async def test_a_file_that_is_not_a_database_leaves_no_connection_open(
    target: Target, tmp_path: Path, query: str
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"certainly not SQLite\n" * 200)
    with pytest.raises(pgqrs.PgqrsConnectionError, match="file is not a database") as caught:
        await pgqrs.connect(f"sqlite://{path}{query}")
    # The error's traceback still references the frame that opened the connection: a
    # connection left open there would still hold the file now.
    assert caught.value.__cause__ is not None
    assert open_descriptors_of(path) == []
    del caught
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        gc.collect()
    assert [w for w in seen if issubclass(w.category, ResourceWarning)] == []
    assert path.read_bytes() == b"certainly not SQLite\n" * 200
