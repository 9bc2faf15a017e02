"""The workflows guide (docs/guides/workflows.md) is executable: every snippet runs and prints
what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docs import read
from tests.support.target import Target

BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.S)


def snippets() -> list[tuple[str, str | None]]:
    """Each Python snippet with the `text` block that follows it, if any (its output)."""
    found = BLOCK.findall(read("docs/guides/workflows.md"))
    out: list[tuple[str, str | None]] = []
    for i, (kind, body) in enumerate(found):
        if kind == "python":
            following = found[i + 1] if i + 1 < len(found) else None
            out.append((body, following[1] if following and following[0] == "text" else None))
    return out


def run_snippet(code: str, directory: Path, env: dict[str, str]) -> str:
    script = directory / "snippet.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_guide_has_its_snippets() -> None:
    assert len(snippets()) >= 5


@pytest.mark.slow
# Not on S3: the guide's program is configured by a DSN alone; S3 also needs s3_cache_dir and
# the AWS_* variables.
@pytest.mark.backends("sqlite", "postgres", "turso")
def test_crash_and_resume_example(target: Target, tmp_path: Path) -> None:
    code, expected = snippets()[0]
    env = {"PATH": "/usr/bin:/bin", "PGQRS_DSN": target.dsn, "PGQRS_SCHEMA": target.schema}
    if target.backend == "sqlite":
        env["PGQRS_DSN"] = f"sqlite://{tmp_path / 'orders_demo.db'}"
    assert run_snippet(code, tmp_path, env) == expected


# Every snippet after the first (which needs a database of its own) runs in memory.
@pytest.mark.parametrize("index", range(1, len(snippets())))
def test_in_memory_examples(index: int, tmp_path: Path) -> None:
    code, expected = snippets()[index]
    output = run_snippet(code, tmp_path, {"PATH": "/usr/bin:/bin"})
    assert expected is None or output == expected
    assert output.strip()
