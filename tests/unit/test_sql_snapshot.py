"""docs/sql/ holds every statement of every backend as the code renders it: review it there."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from pgqrs.store.s3 import S3Executor
from pgqrs.store.sql import STATEMENTS, statement_names
from pgqrs.store.sql.snapshot import FILES, layout, rendered, snapshot
from pgqrs.store.sql.spelling import Dialect
from pgqrs.store.sqlite import SqliteExecutor
from pgqrs.store.turso import TursoExecutor

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sql"
REGENERATE = "python -m pgqrs.store.sql.snapshot docs/sql (or: make sql-snapshot)"


@pytest.mark.parametrize(("file", "dialect"), FILES.items())
def test_the_snapshot_is_what_the_code_renders(file: str, dialect: Dialect) -> None:
    path = DOCS / file
    expected = snapshot(dialect)
    if not path.exists():
        pytest.fail(f"{path} is missing; write it with: {REGENERATE}")
    found = path.read_text(encoding="utf-8")
    if found != expected:
        diff = "".join(
            difflib.unified_diff(
                found.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                f"{file} (checked in)",
                f"{file} (rendered now)",
                n=1,
            )
        )
        pytest.fail(
            f"{path} differs from the statements the code renders. If the change is meant, "
            f"regenerate it with: {REGENERATE}, review and commit the diff.\n{diff[:4000]}"
        )


def test_the_files_cover_every_dialect_and_s3_runs_sqlites_statements() -> None:
    assert sorted(FILES.values()) == sorted(STATEMENTS)
    assert SqliteExecutor.dialect == S3Executor.dialect == "sqlite"  # as sqlite.sql says
    assert TursoExecutor.dialect == "turso"
    assert "The S3 backend\n-- runs these same statements" in snapshot("sqlite")


@pytest.mark.parametrize("dialect", sorted(STATEMENTS))
def test_every_statement_is_in_its_snapshot_once_changed_in_whitespace_only(
    dialect: Dialect,
) -> None:
    text = snapshot(dialect)
    statements = rendered(dialect)
    for name in statement_names(STATEMENTS[dialect]):
        value = getattr(statements, name)
        parts = value if isinstance(value, tuple) else (value,)
        for i, part in enumerate(parts, 1):
            header = f"-- {name} ({i} of {len(parts)})" if len(parts) > 1 else f"-- {name}"
            assert text.count(f"\n{header}\n") + text.count(f"\n{header}  [") == 1, header
            shown = layout(part)
            assert f"{shown};" in text
            assert _squeezed(shown) == _squeezed(part), name


def _squeezed(text: str) -> str:
    """`text` with whitespace runs made one space and none just inside parentheses."""
    return " ".join(text.split()).replace("( ", "(").replace(" )", ")")


def test_layout_changes_whitespace_only_and_never_inside_quotes() -> None:
    text = "SELECT 'x  FROM y WHERE z' FROM u WHERE a = 1 AND b = 2"
    shown = layout(text)
    assert "'x  FROM y WHERE z'" in shown
    assert shown.count("\n") >= 2
    assert _squeezed(shown) == _squeezed(text)
