"""`make demo` tells its story: examples/demo.py, smaller, in a directory of its own."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.serial  # a minute of real processes; beside a parallel suite it can outrun its timeout
@pytest.mark.timeout(180)
@pytest.mark.backends("sqlite")
def test_demo_story(backend: str, tmp_path: Path) -> None:
    demo = [sys.executable, str(ROOT / "examples" / "demo.py"), "--jobs", "300"]
    # A PGQRS_DSN in the user's shell must not take the demo off its embedded default.
    env = {**os.environ, "PGQRS_DSN": "postgresql://nobody@127.0.0.1:1/none", "COLUMNS": "120"}
    done = subprocess.run(
        [*demo, "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
        env=env,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert (tmp_path / "pgqrs.db").exists()
    assert "Sent 300 message(s) to 'jobs'" in out
    assert "pgqrs run: handled 300, failed 0, released 0" in out
    assert "SIGKILL" in out
    # The first worker ran create_account and was killed in send_welcome_email; the second
    # resumed there: create_account ran once, send_welcome_email twice, start_trial once.
    assert out.count("create_account: ada@example.com") == 1
    assert out.count("send_welcome_email: to ada@example.com") == 2
    assert out.count("start_trial: account") == 1
    assert '"trial": "trial started for account' in out
    assert "Run 1: SUCCESS" in out


def test_the_demos_need_no_extra() -> None:
    """`make demo` installs the package without extras: the demos import the standard
    library, pgqrs and its own dependencies only."""
    allowed = set(sys.stdlib_module_names) | {"pgqrs", "rich", "examples", "__future__"}
    for program in ("demo.py", "tasks.py", "basic_queue.py"):
        tree = ast.parse((ROOT / "examples" / program).read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 0
        }
        assert imported <= allowed, (program, imported - allowed)
