"""Docs are executable: every Python block of the README runs, as written, as a program.

Sections whose programs work together (a worker beside a producer, a crash and a resume) have
tests of their own, which also compare what they print: test_readme_production.py and
test_readme_workflows.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docs import sections

BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
OWN_TESTS = {"## Running workers in production", "## Durable workflows"}


def blocks() -> list[pytest.ParameterSet]:
    found = []
    for heading, body in sections():
        if heading in OWN_TESTS:
            continue
        for n, match in enumerate(BLOCK.finditer(body), 1):
            found.append(pytest.param("README.md", n, match.group(1), id=f"{heading[3:]}#{n}"))
    return found


@pytest.mark.parametrize(("doc", "line", "code"), blocks())
def test_snippet_runs(doc: str, line: int, code: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{doc}:{line} failed:\n{result.stderr}"
