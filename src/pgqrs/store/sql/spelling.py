"""How a statement written once is spelled for each backend: the steps `render()` applies.

Statements are written in SQLite's spelling with a few conventions, adapted here per dialect:

* `{s}` before a table name: the quoted Postgres schema and a dot (empty on SQLite and Turso);
* `{notify}` (Postgres): a NOTIFY of `:queue_id` on the schema's channel, or nothing;
* `:name` parameters: kept for sqlite3 and pyturso, `%(name)s` for psycopg (a literal `%`
  doubled);
* `IN_LIST(:name)`: membership in a list parameter, `= ANY(:name)` on Postgres and
  `IN (SELECT value FROM json_each(:name))` on SQLite, where the executor sends lists as JSON;
* `TS(col)`: a stored timestamp compared with another time (see `_SQLITE_TS`);
* `LEAST(a, b)` / `GREATEST(a, b)` of two values that are never NULL: SQLite's two-argument
  `MIN` / `MAX`;
* `:now` and `:wall_now`: NULL means the database's clock when the statement runs; Postgres
  reads it in the statement (`statement_timestamp()`), the SQLite executors fill it in;
* Turso: SQLite's spelling after Turso's own step (`turso.py`: no user-defined functions).

A statement declared with `read()` changes nothing; the SQLite executors run it on their reader
connection, beside the writer. Every other statement runs on the writer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Literal, TypeVar

from . import turso

Dialect = Literal["sqlite", "turso", "postgres"]
DIALECTS: tuple[Dialect, ...] = ("sqlite", "turso", "postgres")

# Parameters that name "now": NULL means the database's clock when the statement runs (the
# SQLite executors fill the local time in at execution; PostgreSQL reads its own clock).
NOW_PARAMS = ("now", "wall_now")


class Read(str):
    """A statement that only reads: the SQLite executors may run it on the reader connection.

    Declared with `read()` beside the statement; `render()` keeps the mark, and any text made
    from it (a concatenation, an `EXPLAIN` prefix) is a plain `str` again, which runs on the
    writer: only what was declared a read is routed as one.
    """

    __slots__ = ()


def read(text: str) -> str:
    """Declare `text` a statement that changes nothing (see `Read`). Typed as the `str` it is:
    a dialect may override a read with a statement that is not one (Postgres's FOR UPDATE)."""
    return Read(text)


# A statement as the classes of `store/sql` hold it: one text, or a tuple of texts run in order
# as one transaction (see `executor.run_steps`).
Statement = TypeVar("Statement", str, tuple[str, ...])

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_IN_LIST = re.compile(r"\bIN_LIST\(:(\w+)\)")
_TS = re.compile(r"\bTS\((\w+(?:\.\w+)?)\)")
_NOW = re.compile(r"(?<![:\w]):(now|wall_now)\b")
_LEAST = re.compile(r"\bLEAST\(")
_GREATEST = re.compile(r"\bGREATEST\(")

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


def quote_ident(name: str) -> str:
    """A validated identifier (a schema, a channel), double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def schema_prefix(schema: str) -> str:
    """What `{s}` becomes for a Postgres schema: the quoted name and a dot."""
    return quote_ident(schema) + "."


# A channel name is an identifier: at most 63 bytes (NAMEDATALEN - 1); pg_notify refuses more.
_CHANNEL_BYTES = 63


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of a Postgres schema's enqueues: `pgqrs.<schema>`, or, when
    that is longer than a channel name may be, the schema's first characters and a hash of
    the whole name (the same in every process)."""
    channel = f"pgqrs.{schema}"
    if len(channel.encode()) <= _CHANNEL_BYTES:
        return channel
    digest = hashlib.sha256(schema.encode()).hexdigest()[:12]
    room = _CHANNEL_BYTES - len("pgqrs..") - len(digest)
    head = schema.encode()[:room].decode(errors="ignore")
    return f"pgqrs.{head}.{digest}"


def sqlite(text: str) -> str:
    text = _TS.sub(lambda m: _SQLITE_TS.format(c=m[1]), text)
    text = _GREATEST.sub("MAX(", _LEAST.sub("MIN(", text))
    return _IN_LIST.sub(r"IN (SELECT value FROM json_each(:\1))", text)


def postgres(text: str) -> str:
    text = _TS.sub(r"\1", text)
    text = _NOW.sub(r"COALESCE(CAST(:\1 AS timestamptz), statement_timestamp())", text)
    text = _IN_LIST.sub(r"= ANY(:\1)", text)
    return _PARAM.sub(r"%(\1)s", text.replace("%", "%%"))


def speller(
    dialect: Dialect, *, schema_prefix: str = "", notify_channel: str | None = None
) -> Callable[[str], str]:
    """The function that spells one statement text for `dialect`.

    `schema_prefix` replaces `{s}`; with a `notify_channel` (Postgres), `{notify}` becomes a
    NOTIFY of the queue id on that channel.
    """
    notify = ""
    if notify_channel is not None:
        literal = "'" + notify_channel.replace("'", "''") + "'"
        notify = f", (SELECT pg_notify({literal}, CAST(:queue_id AS text))) AS notified"

    def spell(text: str) -> str:
        text = text.replace("{s}", schema_prefix).replace("{notify}", notify)
        if dialect == "postgres":
            return postgres(text)
        if dialect == "turso":
            text = turso.spell(text)
        return sqlite(text)

    return spell


def spell_statement(value: Statement, spell: Callable[[str], str]) -> Statement:
    """`value` (a text or a tuple of texts) spelled by `spell`, reads still marked as reads."""
    if isinstance(value, tuple):
        return tuple(spell_statement(text, spell) for text in value)
    text = spell(value)
    return Read(text) if isinstance(value, Read) else text
