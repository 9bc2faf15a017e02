"""Clocks to put behind a store (`store.clock = ...`): time is injected, never slept through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pgqrs._clock import FixedClock

__all__ = ["FixedClock", "OffsetClock", "at"]


class OffsetClock:
    """The real clock moved by `seconds` (negative: the past), e.g. a worker whose heartbeats
    are an hour old the moment they are written."""

    def __init__(self, seconds: float) -> None:
        self.offset = timedelta(seconds=seconds)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def at(seconds_from_now: float) -> datetime:
    """An aware UTC datetime `seconds_from_now` away from the real now."""
    return datetime.now(UTC) + timedelta(seconds=seconds_from_now)
