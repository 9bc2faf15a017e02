"""Long PostgreSQL statements are parsed once (store/postgres.py, `_native`): psycopg parses a
statement longer than its query cache keeps (4,096 bytes) again on every call, which cost the
limited claims ~200 us of CPU each while they were ~6 kB (under 4 kB now, even in a schema
with a 63-character name)."""

from __future__ import annotations

import pytest

from pgqrs.store.postgres import _native
from pgqrs.store.sql import PostgresSql, Sql, render, statement_names
from pgqrs.store.sql.spelling import notify_channel, schema_prefix

PAD = " " * 4100


def test_short_statements_are_left_to_psycopg() -> None:
    assert _native("SELECT %(a)s") is None


def test_long_statements_get_numbered_placeholders_once_per_name() -> None:
    native = _native(f"SELECT %(a)s, %(b)s, %(a)s, '50%%'{PAD}")
    assert native is not None
    query, names = native
    assert query.startswith(b"SELECT $1, $2, $1, '50%'")
    assert names == ("a", "b")


def test_a_placeholder_psycopg_must_judge_is_left_to_it() -> None:
    assert _native(f"SELECT %s{PAD}") is None
    assert _native(f"SELECT %(a)s, 5 % 2{PAD}") is None


def statements(sql: Sql) -> list[str]:
    found: list[str] = []
    for name in statement_names(PostgresSql):
        value = getattr(sql, name)
        found += list(value) if isinstance(value, tuple) else [value]
    return found


@pytest.mark.parametrize("schema", ["public", "s" * 63])
def test_every_long_statement_is_parsed_once(schema: str) -> None:
    """Every statement the PostgreSQL executor runs is either short enough for psycopg's cache
    or converted here (none falls back to a parse per call), whatever the schema's name."""
    sql = render(
        "postgres", schema_prefix=schema_prefix(schema), notify_channel=notify_channel(schema)
    )
    long_ones = [s for s in statements(sql) if len(s.encode()) > 4096]
    assert all(_native(s) is not None for s in long_ones)
