"""Time: the clock behind every "now", and the conversions between the forms time takes.

Every store starts with a `DatabaseClock`: statements read the database's own clock when they
run (the server's on PostgreSQL, the one clock a fleet shares; the local one on SQLite, Turso and
S3, whose files live on one machine), so leases, visibility, heartbeats and staleness never
depend on a client's clock (docs/guarantees.md, "Time"). Assigning another clock to
`store.clock` injects time instead (tests); so do `at`, `with_time` and `dequeue_at`, which
arrive as `Time` values (an aware datetime or an RFC 3339 string with an offset). The API returns
RFC 3339 UTC strings; SQLite stores fixed-width UTC text (semantics.md §5).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeAlias

Time: TypeAlias = str | datetime

UTC = UTC


class Clock(Protocol):
    def now(self) -> datetime: ...


def local_now() -> datetime:
    """This machine's clock, in UTC: the one place the library reads it."""
    return datetime.now(UTC)


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        return local_now()


class FixedClock:
    """A clock that always answers the same time (what `at(t)` installs)."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at


SYSTEM_CLOCK = SystemClock()


class DatabaseClock:
    """The clock of the database a store is connected to (every store's default).

    Statements given `now = None` read that clock themselves when they run (`sql_now`);
    `now()` is the local estimate of it for the few decisions made in Python: the local
    clock plus the offset the PostgreSQL executor measures against the server.
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return local_now() + self.offset


def sql_now(clock: Clock) -> datetime | None:
    """A statement's `now`: None (the database's clock as it runs) for a store's own clock,
    the injected clock's time otherwise."""
    return None if isinstance(clock, DatabaseClock) else clock.now()


def parse_time(value: Time) -> datetime:
    """An injected time as an aware UTC datetime; naive or unparsable values raise ValueError."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"Invalid ISO 8601 timestamp '{value.isoformat()}': no UTC offset")
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError(f"Invalid ISO 8601 timestamp '{value!r}': expected a string or datetime")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError as err:
        raise ValueError(f"Invalid ISO 8601 timestamp '{value}': {err}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"Invalid ISO 8601 timestamp '{value}': no UTC offset")
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """The API form: `2026-11-25T11:49:53.163753+00:00`."""
    return value.astimezone(UTC).isoformat()


def to_sqlite_text(value: datetime) -> str:
    """The SQLite stored form: `YYYY-MM-DD HH:MM:SS.ffffff`, UTC, always six fraction digits."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def from_db(value: datetime | str | None) -> datetime | None:
    """A stored timestamp (text from PostgreSQL and SQLite; a datetime from a connection the
    library did not set up) as an aware datetime.

    Text without a fraction, with a `T`, or with an offset or `Z` is accepted too: rows written
    by column defaults or other programs look like that.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_ZERO = timedelta(0)


def db_to_api(value: datetime | str | None) -> str | None:
    """A stored timestamp in the API form, or None.

    The forms the library itself reads take a shortcut, since every claimed message carries
    four timestamps: PostgreSQL's UTC text (`2026-01-02 03:04:05.123456+00`, with the
    fraction's trailing zeros trimmed: store/pg_types.py) and SQLite's fixed-width UTC text
    are rearranged as text, and a datetime already in UTC is formatted without a conversion.
    """
    if value is None:
        return None
    if type(value) is str:
        size = len(value)
        if value[10:11] == " ":
            if value[-3:] == "+00":  # PostgreSQL's
                if size == 29 or size == 22:  # six fraction digits, or none
                    return value.replace(" ", "T") + ":00"
                return f"{value[:10]}T{value[11:19]}.{value[20:-3]:0<6}+00:00"
            if size == 26 and value[19] == ".":  # SQLite's
                if value.endswith("000000"):
                    return value[:19].replace(" ", "T") + "+00:00"
                return value.replace(" ", "T") + "+00:00"
    elif isinstance(value, datetime) and value.utcoffset() == _ZERO:
        return value.isoformat()
    parsed = from_db(value)
    return None if parsed is None else format_time(parsed)


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
