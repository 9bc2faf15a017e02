"""Docs are executable: every ```python block of the README and of every page under docs/ runs,
as written, as a program of its own in an empty directory, and exits 0 within 60 s.

Programs that work together (a worker beside a producer) and pages that compare what their
programs print have tests of their own (tests/support/docs.py names them); ```py blocks are
fragments and are not run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docs import (
    MULTI_PROGRAM_PAGES,
    OWN_TEST_PAGES,
    ROOT,
    name,
    pages,
    programs,
    python_blocks,
    read,
)


def standalone() -> list[pytest.ParameterSet]:
    found = []
    for page in pages():
        if name(page) in OWN_TEST_PAGES:
            continue
        for line, code in python_blocks(read(page)):
            if not code.startswith("# file: "):
                found.append(pytest.param(code, id=f"{name(page)}:{line}"))
    return found


@pytest.mark.parametrize("code", standalone())
def test_block_runs(code: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_docs_have_programs() -> None:
    assert len(standalone()) >= 15
    assert len(python_blocks(read("README.md"))) == 1  # the quickstart


def test_programs_that_run_together_have_a_test() -> None:
    """A `# file:` block is skipped above, so its page must be one whose test runs it."""
    grouped = {name(page) for page in pages() if programs(read(page))}
    assert grouped <= set(MULTI_PROGRAM_PAGES) | set(OWN_TEST_PAGES)
    for test in [*MULTI_PROGRAM_PAGES.values(), *OWN_TEST_PAGES.values()]:
        assert (ROOT / test).exists()


def test_the_readme_quickstart_is_short() -> None:
    [(_, quickstart)] = python_blocks(read("README.md"))
    assert len(quickstart.strip().splitlines()) <= 20
