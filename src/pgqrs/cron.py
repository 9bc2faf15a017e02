"""Cron expressions and their ticks (semantics.md §17): pure code, no I/O.

An expression has five fields (minute hour day-of-month month day-of-week) or six, with the
seconds first (`*/15 * * * * *`), and is read in an IANA time zone. Parsing and stepping are
cronsim's (docs/decisions.md, "Cron schedules"): it follows Debian's cron, including at DST
changes, where a five-field expression naming a time that does not exist that day fires at the
end of the gap and one naming a repeated time fires once. Ticks leave here as aware UTC
datetimes, which is how every time is stored.
"""

from __future__ import annotations

import zoneinfo
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from cronsim import CronSim, CronSimError

from .errors import ValidationError

__all__ = ["Cron", "due_ticks", "parse_cron", "parse_timezone"]

# A tick searched for beyond this many steps does not exist (cronsim gives up after 50 years).
_MAX_STEPS = 1000


def parse_timezone(name: object) -> tzinfo:
    """The IANA time zone `name` (`Europe/Berlin`, `UTC`); ValidationError when unknown."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(
            f"Validation failed: timezone must be an IANA time zone name such as 'UTC' or "
            f"'Europe/Berlin', got {name!r}"
        )
    if name == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"Validation failed: unknown time zone {name!r}: give an IANA name such as 'UTC', "
            "'Europe/Berlin' or 'America/New_York'"
        ) from None


def parse_cron(expression: object) -> str:
    """`expression` normalised (single spaces) if cronsim accepts it; ValidationError saying
    which field is wrong otherwise."""
    if not isinstance(expression, str):
        raise ValidationError(
            f"Validation failed: cron expression must be a str, not {type(expression).__name__}"
        )
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValidationError(
            f"Validation failed: cron expression {expression!r} has {len(fields)} fields; give 5 "
            "(minute hour day-of-month month day-of-week) or 6 (seconds first)"
        )
    text = " ".join(fields)
    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as err:
        raise ValidationError(
            f"Validation failed: invalid cron expression {expression!r}: {err}"
        ) from None
    return text


@dataclass(frozen=True)
class Cron:
    """A checked cron expression read in a time zone."""

    expression: str
    zone: tzinfo

    @classmethod
    def of(cls, expression: object, timezone: object = "UTC") -> Cron:
        return cls(parse_cron(expression), parse_timezone(timezone))

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment`, in UTC."""
        ticks = CronSim(self.expression, moment.astimezone(self.zone))
        for _ in range(_MAX_STEPS):
            try:
                tick = next(ticks).astimezone(UTC)
            except StopIteration:
                break
            # Debian's DST handling steps in local wall time, where a repeated hour can lead
            # back to an instant already passed: only a later instant is the next tick.
            if tick > moment:
                return tick
        raise ValidationError(
            f"Validation failed: cron expression {self.expression!r} never fires after "
            f"{moment.isoformat()}"
        )

    def ticks_between(self, first: datetime, last: datetime, newest: int) -> list[datetime]:
        """The newest `newest` ticks from `first` to `last` (both included), oldest first.

        Walked backwards from `last`, so a schedule every second that was down for a week
        costs `newest` steps, not 600,000.
        """
        if newest <= 0 or last < first:
            return []
        # cronsim's reverse walk starts at the second below a fraction, or one second before a
        # whole second: a microsecond past `last` makes `last` itself the first candidate.
        start = (last + timedelta(microseconds=1)).astimezone(self.zone)
        ticks = CronSim(self.expression, start, reverse=True)
        found: set[datetime] = set()
        for _ in range(newest + _MAX_STEPS):
            try:
                tick = next(ticks).astimezone(UTC)
            except StopIteration:
                break
            if tick < first:
                break
            if tick <= last:
                found.add(tick)
                if len(found) >= newest:
                    break
        return sorted(found)[-newest:]


def due_ticks(
    cron: Cron, expected: datetime, now: datetime, *, catch_up: int, grace: float
) -> tuple[list[datetime], datetime]:
    """What a scheduler fires at `now` for a schedule whose next tick was `expected`, and the
    schedule's next tick after that (semantics.md §17.3).

    The due ticks are those from `expected` to `now`. The newest of them is on time while it
    is at most `grace` seconds late and always fires; every other due tick was missed, and of
    those the newest `catch_up` fire too. Oldest first.
    """
    after = cron.next_after(now)
    if expected > now:
        return [], expected
    due: deque[datetime] = deque(cron.ticks_between(expected, now, catch_up + 1))
    fired: list[datetime] = []
    if due and (now - due[-1]).total_seconds() <= grace:
        fired.append(due.pop())
    missed = list(due)[-catch_up:] if catch_up > 0 else []
    return [*missed, *fired], after
