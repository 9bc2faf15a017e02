"""The seam between the operations and a database: a handful of async methods.

Every operation in `pgqrs.tables` is written once against `Queryable`; a backend module supplies
an `Executor` (connection handling, parameter adaptation, error translation) and its SQL text.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

from .._clock import DatabaseClock
from ..errors import PgqrsConnectionError

if TYPE_CHECKING:
    from .sql import Sql
    from .wakeup import Wakeups

Row = tuple[Any, ...]
Params = Mapping[str, Any]


class Queryable(Protocol):
    """Something statements run on: a transaction, or the executor itself.

    On the executor each call is its own transaction; inside `transaction()` they share one.
    """

    @property
    def sql(self) -> Sql: ...

    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Params | None = None) -> Row | None: ...


class Executor(Queryable, Protocol):
    """A connected database. One per store."""

    backend: str
    migration_kind: str  # which DDL folder: "postgres", "sqlite" or "turso"
    schema: str  # the Postgres schema; "" elsewhere
    scope: Hashable | None  # which database, for sharing wake-ups in-process (None: private)
    clock: DatabaseClock  # the database's clock (its local estimate: see pgqrs._clock)

    async def start(self) -> None:
        """Connect (a bad DSN, host or file fails here)."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Queryable]:
        """A write transaction: committed on normal exit, rolled back on any exception."""
        ...

    async def batch(self, steps: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        """Run the statements in order as one write transaction, in as few trips to the
        database as the backend allows; the rows each returned ([] for none)."""
        ...

    async def install(self) -> None:
        """Apply pending migrations (semantics.md §3)."""
        ...

    def watch(self, wakeups: Wakeups) -> None:
        """Deliver enqueues made by other stores or processes as wake-ups (where supported)."""
        ...

    async def close(self) -> None: ...


class JsonTexts(list[str]):
    """Stored JSON texts sent as one parameter holding a JSON array (batch inserts).

    SQLite receives an array of strings (json_each gives each text back); Postgres an array
    of the values themselves, which the server splits (see MSG_INSERT_BATCH).
    """


class UniqueViolation(PgqrsConnectionError):
    """A unique constraint refused a write; callers expecting races make it a domain error."""

    transient = False


class LimitsOvershot(PgqrsConnectionError):
    """A limited claim that took first took more than a limit allows (its transaction is
    undone): the caller makes the claim again in turns (semantics.md §7.10)."""

    transient = False


class NotInstalledError(PgqrsConnectionError):
    """A pgqrs table is missing: the schema was never installed (or is in another schema)."""

    not_installed = True
    transient = False


def not_installed(detail: str) -> NotInstalledError:
    return NotInstalledError(
        f"Database query failed: {detail}. The pgqrs schema is not installed here: "
        "run `await pgqrs.admin(store).install()` (or `pgqrs install`) first"
    )


def first_column(rows: Sequence[Row]) -> list[Any]:
    return [row[0] for row in rows]


async def run_steps(
    db: Queryable, statements: Sequence[str], params: Params, rows_of: int = -1
) -> list[Row]:
    """Several statements (a tuple statement of store/sql) as one transaction; the rows of the
    statement at index `rows_of` (the last by default). On the executor this is one `batch`;
    inside a transaction, simply one after another."""
    batch = getattr(db, "batch", None)
    if batch is not None:
        results: list[list[Row]] = await batch([(sql, params) for sql in statements])
        return results[rows_of]
    results = [await db.fetch(sql, params) for sql in statements]
    return results[rows_of]


async def scalar_int(db: Queryable, sql: str, params: Params | None = None) -> int:
    """The first column of the first row as an int (0 for no row or NULL)."""
    row = await db.fetchone(sql, params)
    return int(row[0]) if row and row[0] is not None else 0
