"""Each table's columns, declared once: the SELECT/RETURNING list and the record builder.

A `Shape` lists, in order, the columns a statement returns and how each stored value becomes
a field of the record (`Column`). The statements take their column list from it
(`MESSAGE.select`), the table code builds records with `MESSAGE.build(row)`, and `build`
assigns every field from the position of its own column: the list and the builder come from
one declaration, so they cannot disagree. A record field that no column, argument or
combination fills (or a column naming a field the record lacks) fails when the shape is
declared, at import, not as a silently wrong record.

`build` is generated once per shape (`Shape.source` shows it), as `dataclasses` and
`namedtuple` generate theirs: a claim turns up to a batch of rows into records at a time, and
the generated function fills the frozen record's `__dict__` in one step, which costs about
half as much as its `__init__` (that sets each field through `object.__setattr__`); the
record is the same. A column declared `deferred` is converted on the field's first read
instead (`types.DeferredFields`): a message's timestamps, which a claim would otherwise
convert for every row while most handlers read none of them.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from ..._clock import db_to_api, from_db
from ...records import MessageError, QueueSettings, ScheduleInfo
from ...types import (
    DeferredFields,
    QueueInfo,
    QueueMessage,
    RunRecord,
    StepRecord,
    WorkerInfo,
    WorkerStatus,
    WorkflowRecord,
    WorkflowStatus,
)
from ...validation import decode_json

R = TypeVar("R")

_AS_STORED: Any = object()  # `Column.otherwise` unset: the converted value is the field's


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a statement's result and the record field it fills."""

    name: str  # the column; also the field it fills, unless `field` says otherwise
    convert: Callable[[Any], Any] | None = None  # stored value -> field value (None: as stored)
    # The field's value when the converted value is empty (NULL): `convert(v) or otherwise`.
    otherwise: Any = _AS_STORED
    field: str | None = ""  # the field it fills: "" the column's name, None no field
    sql: str = ""  # what the statement selects, when it is not the column itself
    deferred: bool = False  # converted on the field's first read (types.DeferredFields)

    @property
    def target(self) -> str | None:
        return self.name if self.field == "" else self.field


class Shape(Generic[R]):
    """The columns of one kind of row, in order, and the builder of its record `R`.

    `given` are fields the caller passes to `build` after the row (values that need more than
    the row: a message's payload, a health record's group name); `combined` are fields made
    from several columns, `{field: (function, (column, ...))}`.
    """

    def __init__(
        self,
        record: type[R],
        *columns: Column,
        given: Sequence[str] = (),
        combined: Mapping[str, tuple[Callable[..., Any], Sequence[str]]] | None = None,
    ) -> None:
        self.record = record
        self.columns = columns
        self.names = tuple(column.name for column in columns)
        self.given = tuple(given)
        self.combined = dict(combined or {})
        self._check()
        # The fields converted on first read (`Column.deferred`), not by `build`.
        self.deferred = tuple(c.target for c in columns if c.deferred and c.target is not None)
        self.source, self.build = self._builder()

    @property
    def select(self) -> str:
        """The column list of a SELECT or RETURNING: `id, queue_id, ...`."""
        return ", ".join(column.sql or column.name for column in self.columns)

    def qualified(self, alias: str) -> str:
        """The column list with every column of the table `alias`: `m.id, m.queue_id, ...`."""
        if any(column.sql for column in self.columns):
            raise ValueError(f"{self.record.__name__}: computed columns cannot be qualified")
        return ", ".join(f"{alias}.{name}" for name in self.names)

    def index(self, name: str) -> int:
        """The position of column `name` in a row (for the few raw values code needs)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"{self.record.__name__} rows have no column {name!r}") from None

    def _check(self) -> None:
        what = self.record.__name__
        if not dataclasses.is_dataclass(self.record) or "__slots__" in vars(self.record):
            raise TypeError(f"{what}: records are dataclasses with a __dict__")
        if any(c.deferred for c in self.columns) and not issubclass(self.record, DeferredFields):
            raise TypeError(f"{what}: deferred columns need a record with DeferredFields")
        if hasattr(self.record, "__post_init__"):
            raise TypeError(f"{what}: a record built by name cannot have a __post_init__")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"{what}: a column is declared twice: {self.names}")
        for fields in self.combined.values():
            unknown = [name for name in fields[1] if name not in self.names]
            if unknown:
                raise ValueError(f"{what}: combined from unknown columns {unknown}")
        for name in self.given:
            if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
                raise ValueError(f"{what}: a given field must be a plain name, not {name!r}")
        filled = [c.target for c in self.columns if c.target is not None]
        filled += [*self.given, *self.combined]
        wanted = self.fields = tuple(field.name for field in dataclasses.fields(self.record))
        twice = sorted({name for name in filled if filled.count(name) > 1})
        missing = [name for name in wanted if name not in filled]
        unknown = [name for name in filled if name not in wanted]
        if twice or missing or unknown:
            raise ValueError(
                f"{what}: the columns do not match the record's fields: "
                f"filled twice {twice}, missing {missing}, unknown {unknown}"
            )

    def _builder(self) -> tuple[str, Callable[..., R]]:
        env: dict[str, Any] = {"_new": object.__new__, "_record": self.record}
        values: dict[str, str] = {name: name for name in self.given}
        readers: dict[str, Callable[[tuple[Any, ...]], Any]] = {}
        kept: list[str] = []
        for i, column in enumerate(self.columns):
            if column.target is None:
                continue
            if column.deferred:
                kept.append(f"_row[{i}]")
                readers[column.target] = _reader(column, len(kept))
                continue
            value = f"_row[{i}]"
            if column.convert is not None:
                env[f"_convert{i}"] = column.convert
                value = f"_convert{i}({value})"
            if column.otherwise is not _AS_STORED:
                env[f"_otherwise{i}"] = column.otherwise
                value = f"({value} or _otherwise{i})"
            values[column.target] = value
        for j, (field, (function, names)) in enumerate(self.combined.items()):
            env[f"_combine{j}"] = function
            args = ", ".join(f"_row[{self.names.index(name)}]" for name in names)
            values[field] = f"_combine{j}({args})"
        items = "".join(
            f"        {name!r}: {values[name]},\n" for name in self.fields if name not in readers
        )
        if readers:
            env["_readers"] = readers
            items += f"        '_deferred': (_readers, {', '.join(kept)}),\n"
        source = (
            f"def build(_row{''.join(', ' + name for name in self.given)}):\n"
            "    _made = _new(_record)\n"
            f"    _made.__dict__.update({{\n{items}    }})\n"
            "    return _made\n"
        )
        exec(source, env)  # the generated text is made of declared names only
        build: Callable[..., R] = env["build"]
        build.__qualname__ = f"Shape[{self.record.__name__}].build"
        return source, build


def _reader(column: Column, at: int) -> Callable[[tuple[Any, ...]], Any]:
    """How a deferred field is read from the record's `_deferred` tuple (its value at `at`)."""
    convert = column.convert or (lambda value: value)
    if column.otherwise is _AS_STORED:
        return lambda kept: convert(kept[at])
    otherwise = column.otherwise
    return lambda kept: convert(kept[at]) or otherwise


# -- converters: a stored value (text or datetime from the driver) as the record has it ------


def count(value: Any) -> int:
    """A count or sum (NULL over no rows: 0)."""
    return 0 if value is None else int(value)


def latest_time(*stored: Any) -> str | None:
    """The latest of stored timestamps (text on SQLite, datetimes on Postgres), API form."""
    moments = [moment for moment in map(from_db, stored) if moment is not None]
    return db_to_api(max(moments)) if moments else None


def optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def int_or_zero(value: Any) -> int:
    return int(value or 0)


def json_value(value: Any) -> Any:
    """A JSON column as a Python value (JSON is read back as text on every backend)."""
    return decode_json(value) if isinstance(value, str) else value


# -- the tables ----------------------------------------------------------------------------

QUEUE = Shape(
    QueueInfo,
    Column("id", int),
    Column("queue_name"),
    Column("created_at", db_to_api, otherwise=""),
)
# What a queue decides for every process: its row's own settings.
SETTINGS = Shape(
    QueueSettings,
    Column("queue_name"),
    Column("max_read_ct", optional_int),
    Column("max_payload_size_bytes", optional_int),
    Column("max_string_length", optional_int),
    Column("max_object_depth", optional_int),
)

WORKER = Shape(
    WorkerInfo,
    Column("id", int),
    Column("name"),
    Column("status", WorkerStatus.parse),
    Column("queue_id", optional_int),
    Column("heartbeat_at", db_to_api, otherwise=""),
    Column("started_at", db_to_api, otherwise=""),
    Column("shutdown_at", db_to_api),
)

# The reader of message rows (`tables.messages.MessageReader`) decodes `payload` itself: a
# workflow trigger's payload is unwrapped, which takes a look at the queue. It passes the
# record's `payload` and `raw_payload`.
MESSAGE = Shape(
    QueueMessage,
    Column("id"),
    Column("queue_id"),
    Column("payload", field=None),
    Column("vt", db_to_api, deferred=True),
    Column("enqueued_at", db_to_api, otherwise="", deferred=True),
    Column("read_ct", otherwise=0),
    Column("dequeued_at", db_to_api, deferred=True),
    Column("producer_worker_id"),
    Column("consumer_worker_id"),
    Column("archived_at", db_to_api, deferred=True),
    # Not a field of pgqrs's record (semantics.md §7.3): claims sort by it.
    Column("priority", field=None),
    # Migration 16 (ours): the trace context the message carries (pgqrs.tracing).
    Column("trace_context"),
    given=("payload", "raw_payload"),
)

MESSAGE_ERROR = Shape(
    MessageError,
    Column("message_id", int),
    Column("attempt", int),
    Column("error_type"),
    Column("error_message"),
    Column("traceback"),
    Column("failed_at", db_to_api, otherwise=""),
)

WORKFLOW = Shape(
    WorkflowRecord,
    Column("id", int),
    Column("name"),
    Column("queue_id", int),
    Column("created_at", db_to_api, otherwise=""),
)

RUN = Shape(
    RunRecord,
    Column("id", int),
    Column("workflow_id", int),
    Column("message_id", int),
    Column("status", WorkflowStatus.parse),
    Column("input", json_value),
    Column("output", json_value),
    Column("error", json_value),
    Column("created_at", db_to_api, otherwise=""),
    Column("updated_at", db_to_api, otherwise=""),
    Column("started_at", db_to_api),
    Column("paused_at", db_to_api),
    Column("completed_at", db_to_api),
    Column("parent_run_id", optional_int),
    Column("deadline_at", db_to_api),
)

STEP = Shape(
    StepRecord,
    Column("id", int),
    Column("run_id", int),
    Column("step_name"),
    Column("status", WorkflowStatus.parse),
    Column("input", json_value),
    Column("output", json_value),
    Column("error", json_value),
    Column("retry_count", int_or_zero),
    Column("retry_at", db_to_api),
    Column("created_at", db_to_api, otherwise=""),
    Column("updated_at", db_to_api, otherwise=""),
    Column("started_at", db_to_api),
    Column("completed_at", db_to_api),
)

# A cron schedule (semantics.md §17); its payload and input are stored JSON text.
SCHEDULE = Shape(
    ScheduleInfo,
    Column("name"),
    Column("cron"),
    Column("timezone"),
    Column("queue_name", field="queue"),
    Column("payload", json_value),
    Column("workflow_name", field="workflow"),
    Column("input", json_value),
    Column("catch_up", int),
    Column("paused", bool),
    Column("next_fire_at", db_to_api, otherwise=""),
    Column("last_fire_at", db_to_api),
    Column("created_at", db_to_api, otherwise=""),
)
