"""Every SQL statement the library runs, by name, written once; one module per entity.

Where a statement goes: a statement on a table is an upper-case class attribute of that
entity's module (`queues`, `workers`, `messages`, `failures`, `workflows`, `operations`,
`bookkeeping`), written in SQLite's spelling with the conventions `render()` adapts per
backend (`spelling.py`). Where Postgres needs something else, a subclass in the same module
holds only those overrides; Turso's differences are a spelling step (`turso.py`), not a copy.
A statement that only reads is declared with `read()`. `Sql`, `PostgresSql` and `TursoSql`
combine the entity classes; `render(dialect)` returns their statements ready for the driver.

The columns a statement returns come from one declaration per table (`columns.py`), which also
builds the records. Statements the executors run on their own connections (transaction
control, pragmas, the install lock) are in `session.py`. `snapshot.py` renders every statement
of every backend into `docs/sql/` (`make sql-snapshot`), where changes are reviewed.
"""

from __future__ import annotations

from typing import Literal, overload

from .bookkeeping import BookkeepingPostgres, BookkeepingSql, BookkeepingTurso
from .failures import FailureSql
from .introspection import IntrospectionPostgres, IntrospectionSql
from .limits import LimitSql
from .messages import MessagePostgres, MessageSql, MessageTurso
from .operations import OperationsPostgres, OperationsSql
from .queues import QueueSql
from .restart import RestartPostgres, RestartSql
from .schedules import ScheduleSql
from .spelling import DIALECTS, NOW_PARAMS, Dialect, Read, read, spell_statement, speller
from .waits import WaitSql
from .workers import WorkerSql
from .workflows import WorkflowPostgres, WorkflowSql

__all__ = [
    "DIALECTS",
    "NOW_PARAMS",
    "STATEMENTS",
    "Dialect",
    "PostgresSql",
    "Read",
    "Sql",
    "TursoSql",
    "read",
    "render",
    "statement_names",
]


class Sql(
    QueueSql,
    WorkerSql,
    MessageSql,
    FailureSql,
    WorkflowSql,
    BookkeepingSql,
    OperationsSql,
    LimitSql,
    ScheduleSql,
    WaitSql,
    IntrospectionSql,
    RestartSql,
):
    """All statements, SQLite spelling. Attributes in upper case are statements."""


class PostgresSql(
    MessagePostgres,
    BookkeepingPostgres,
    OperationsPostgres,
    WorkflowPostgres,
    IntrospectionPostgres,
    RestartPostgres,
    Sql,
):
    """All statements, with Postgres's own text where it differs."""


class TursoSql(BookkeepingTurso, MessageTurso, Sql):
    """All statements, and Turso's own bookkeeping lookup and limited claims; `render("turso")`
    spells them."""


# The statements of each dialect. (S3 is SQLite: its executor runs SQLite's statements.)
STATEMENTS: dict[Dialect, type[Sql]] = {"sqlite": Sql, "turso": TursoSql, "postgres": PostgresSql}


def statement_names(statements: type[Sql]) -> list[str]:
    """The statements of a dialect's class in a fixed order: the shared ones entity by entity,
    as `Sql` lists its bases, each in the order it is declared; then those the dialect adds."""
    shared = Sql.__mro__
    classes = [*shared, *(cls for cls in statements.__mro__ if cls not in shared)]
    names: list[str] = []
    for cls in classes:
        names += [name for name in vars(cls) if name.isupper() and name not in names]
    return names


@overload
def render(
    dialect: Literal["postgres"], *, schema_prefix: str = "", notify_channel: str | None = None
) -> PostgresSql: ...


@overload
def render(
    dialect: Literal["turso"], *, schema_prefix: str = "", notify_channel: str | None = None
) -> TursoSql: ...


@overload
def render(
    dialect: Dialect, *, schema_prefix: str = "", notify_channel: str | None = None
) -> Sql: ...


def render(dialect: Dialect, *, schema_prefix: str = "", notify_channel: str | None = None) -> Sql:
    """An instance of the dialect's statement class whose statements are ready for its driver.

    `schema_prefix` replaces `{s}` (the quoted Postgres schema and a dot); with a
    `notify_channel` (Postgres), `{notify}` becomes a NOTIFY of the queue id on that channel.
    """
    statements = STATEMENTS[dialect]
    spell = speller(dialect, schema_prefix=schema_prefix, notify_channel=notify_channel)
    out = statements()
    for name in statement_names(statements):
        setattr(out, name, spell_statement(getattr(statements, name), spell))
    return out
