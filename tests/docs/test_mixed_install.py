"""pgqrs-py and the Rust project's wheel `pgqrs` share the import name `pgqrs`: `import pgqrs`
and the command line refuse to run beside it and say what to run instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIX = "pip uninstall -y pgqrs pgqrs-py && pip install pgqrs-py"


@pytest.fixture
def rust_wheel_metadata(tmp_path: Path) -> Path:
    """A directory on sys.path holding what `pip install pgqrs==0.15.3` records."""
    info = tmp_path / "pgqrs-0.15.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pgqrs\nVersion: 0.15.3\n")
    return tmp_path


def python(code: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_import_refuses_a_mixed_install(rust_wheel_metadata: Path) -> None:
    done = python("import pgqrs", rust_wheel_metadata)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: pgqrs 0.15.3 (the Rust project's wheel)")
    assert FIX in last


def test_the_command_line_refuses_a_mixed_install(rust_wheel_metadata: Path) -> None:
    done = python("from pgqrs.cli.main import main; main()", rust_wheel_metadata)
    assert done.returncode == 1
    assert FIX in done.stderr.strip().splitlines()[-1]


def test_the_command_line_refuses_a_foreign_init() -> None:
    """Another wheel's `pgqrs/__init__.py` in place of ours: the CLI says so before failing on
    a missing name. (Simulated: a module named `pgqrs` without our names, then our CLI.)"""
    code = (
        "import importlib.util, sys, types\n"
        "ours = importlib.util.find_spec('pgqrs')\n"
        "foreign = types.ModuleType('pgqrs')\n"
        "foreign.__path__ = list(ours.submodule_search_locations)\n"
        "sys.modules['pgqrs'] = foreign\n"
        "import pgqrs.cli\n"
    )
    done = python(code)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "its __init__.py was overwritten or removed" in last
    assert FIX in last


def test_a_single_install_imports() -> None:
    done = python("import pgqrs, pgqrs.cli; print(pgqrs.__version__)")
    assert done.returncode == 0, done.stderr
