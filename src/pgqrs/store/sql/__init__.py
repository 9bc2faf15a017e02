"""Every SQL statement the library runs, by name, written once; one module per entity.

Statements are written for SQLite with three conventions that `render()` adapts per backend:
`{s}` before a table name (the quoted Postgres schema plus a dot, empty on SQLite), `:name`
parameters (`%(name)s` for psycopg) and `IN_LIST(:name)` for membership in a list parameter
(`= ANY(...)` on Postgres, `json_each` on SQLite, where the executor passes lists as JSON).
Each entity module holds a class of statements and, where Postgres spells something
differently, a subclass with only those overrides; `Sql` and `PostgresSql` combine them.
"""

from __future__ import annotations

import re

from .bookkeeping import BookkeepingPostgres, BookkeepingSql
from .failures import FailureSql
from .messages import MessagePostgres, MessageSql
from .operations import OperationsPostgres, OperationsSql
from .queues import QueueSql
from .workers import WorkerSql
from .workflows import WorkflowPostgres, WorkflowSql


class Sql(QueueSql, WorkerSql, MessageSql, FailureSql, WorkflowSql, BookkeepingSql, OperationsSql):
    """All statements, SQLite spelling. Attributes in upper case are statements."""


class PostgresSql(MessagePostgres, BookkeepingPostgres, OperationsPostgres, WorkflowPostgres, Sql):
    """All statements, with Postgres's own spelling where it differs."""


_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_IN_LIST = re.compile(r"\bIN_LIST\(:(\w+)\)")
_TS = re.compile(r"\bTS\((\w+(?:\.\w+)?)\)")

# Parameters that name "now": NULL means the database's clock when the statement runs (the
# SQLite executors fill the local time in at execution; PostgreSQL reads its own clock).
NOW_PARAMS = ("now", "wall_now")
_NOW = re.compile(r"(?<![:\w]):(now|wall_now)\b")

# SQLite keeps timestamps as text, and text compares as time only in the fixed-width UTC form
# the library writes (`YYYY-MM-DD HH:MM:SS.ffffff`, or the 19-character form of column
# defaults). Other accepted forms (`T` separator, `Z` or an offset, other fractions: rows from
# other programs) go through strftime first, which makes them UTC in that form at millisecond
# precision. Our own rows take the first branch and keep their microseconds.
_SQLITE_TS = (
    "(CASE WHEN length({c}) IN (19, 26) AND substr({c}, 11, 1) = ' ' "
    "AND substr({c}, -1) GLOB '[0-9]' THEN {c} "
    "ELSE strftime('%Y-%m-%d %H:%M:%f', {c}) || '000' END)"
)


def render(
    dialect: type[Sql], *, schema_prefix: str, paramstyle: str, notify_channel: str | None = None
) -> Sql:
    """An instance of `dialect` whose statements are ready for the driver.

    `paramstyle` is "named" (sqlite3: `:name`) or "pyformat" (psycopg: `%(name)s`). With a
    `notify_channel` (Postgres), `{notify}` becomes a NOTIFY of the queue id on that channel.
    """
    out = dialect()
    notify = ""
    if notify_channel is not None:
        literal = "'" + notify_channel.replace("'", "''") + "'"
        notify = f", (SELECT pg_notify({literal}, CAST(:queue_id AS text))) AS notified"
    postgres = paramstyle == "pyformat"

    def adapt(text: str) -> str:
        text = text.replace("{s}", schema_prefix).replace("{notify}", notify)
        if postgres:
            text = _TS.sub(r"\1", text)
            text = _NOW.sub(r"COALESCE(CAST(:\1 AS timestamptz), statement_timestamp())", text)
            text = _IN_LIST.sub(r"= ANY(:\1)", text)
            return _PARAM.sub(r"%(\1)s", text.replace("%", "%%"))
        text = _TS.sub(lambda m: _SQLITE_TS.format(c=m[1]), text)
        return _IN_LIST.sub(r"IN (SELECT value FROM json_each(:\1))", text)

    for name in dir(dialect):
        if not name.isupper():
            continue
        value = getattr(dialect, name)
        # A tuple is a sequence of statements run together (see Executor.batch).
        setattr(out, name, tuple(map(adapt, value)) if isinstance(value, tuple) else adapt(value))
    return out
