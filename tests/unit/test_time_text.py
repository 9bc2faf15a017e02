"""Stored timestamps in every text form the backends return become the API form
(`_clock.db_to_api`) and the time they name (`_clock.from_db`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgqrs._clock import db_to_api, from_db

MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)


def postgres_text(at: datetime) -> str:
    """What PostgreSQL writes for a timestamptz in a UTC session: the fraction's trailing
    zeros trimmed, no fraction when it is zero, the offset in hours."""
    fraction = f"{at.microsecond:06d}".rstrip("0")
    return at.strftime("%Y-%m-%d %H:%M:%S") + (f".{fraction}" if fraction else "") + "+00"


@given(MOMENTS)
def test_every_form_reads_as_the_api_form(at: datetime) -> None:
    api = at.isoformat()
    for text in (
        postgres_text(at),
        at.strftime("%Y-%m-%d %H:%M:%S.%f"),  # SQLite's stored form
        api,
        at.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
    ):
        assert db_to_api(text) == api, text
        assert from_db(text) == at, text
    assert db_to_api(at) == api


@pytest.mark.parametrize(
    ("text", "api"),
    [
        ("2026-01-02 03:04:05.1+00", "2026-01-02T03:04:05.100000+00:00"),
        # As long as SQLite's fixed-width text (26 characters), which it must not be taken for.
        ("2000-01-01 00:00:00.001+00", "2000-01-01T00:00:00.001000+00:00"),
        ("2026-01-02 03:04:05.000000", "2026-01-02T03:04:05+00:00"),
        ("2026-01-02 03:04:05.123400", "2026-01-02T03:04:05.123400+00:00"),
        ("2026-01-02 03:04:05.000001+00", "2026-01-02T03:04:05.000001+00:00"),
        ("2026-01-02 03:04:05+00", "2026-01-02T03:04:05+00:00"),
        ("2026-01-02 04:04:05.5+01", "2026-01-02T03:04:05.500000+00:00"),
    ],
)
def test_postgres_text(text: str, api: str) -> None:
    assert db_to_api(text) == api


@given(MOMENTS, MOMENTS)
def test_postgres_text_sorts_as_time(a: datetime, b: datetime) -> None:
    """The claim sorts rows by the stored text (tables/messages.py, `sort_rows`)."""
    assert (postgres_text(a) < postgres_text(b)) == (a < b)
