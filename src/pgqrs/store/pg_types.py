"""How PostgreSQL values become Python values on the library's connections.

JSON comes back as text, decoded by the same code on every backend. So does `timestamptz`:
PostgreSQL's own text (`2026-01-02 03:04:05.123456+00` in the pool's sessions, which run with
`TimeZone = UTC`), which `_clock.db_to_api` rearranges into the API form and `_clock.from_db`
parses, as they do SQLite's stored text. Every claimed message carries three or four
timestamps, and building a `datetime` only to format it again cost more than the rest of the
row together (benchmarks/README.md, "Profile"); psycopg's text loader is C.
"""

from __future__ import annotations

from psycopg.abc import AdaptContext
from psycopg.types.string import TextLoader


def register(context: AdaptContext) -> None:
    """The library's loaders on a connection or cursor: JSON and timestamps as text."""
    adapters = context.adapters
    for name in ("jsonb", "json", "timestamptz"):
        adapters.register_loader(name, TextLoader)
