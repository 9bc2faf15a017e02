"""Each table's columns are declared once (store/sql/columns.py): the statements' column lists
and the record builders come from that declaration, so they cannot disagree, and a declaration
that does not match its record fails when it is made."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import pickle
import re
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest

from pgqrs.records import MessageError, QueueSettings
from pgqrs.store.migrate import bookkeeping, migrations
from pgqrs.store.sql import Sql, render, statement_names
from pgqrs.store.sql.columns import (
    MESSAGE,
    MESSAGE_ERROR,
    QUEUE,
    RUN,
    SETTINGS,
    STEP,
    WORKER,
    WORKFLOW,
    Column,
    Shape,
)
from pgqrs.store.sql.operations import HEALTH, HEALTH_BY_QUEUE, METRICS, STATS
from pgqrs.types import (
    QueueInfo,
    QueueMessage,
    QueueMetrics,
    RunRecord,
    StepRecord,
    SystemStats,
    WorkerHealthStats,
    WorkerInfo,
    WorkerStatus,
    WorkflowRecord,
    WorkflowStatus,
)

TABLES: dict[str, Shape[Any]] = {
    "QUEUE": QUEUE,
    "SETTINGS": SETTINGS,
    "WORKER": WORKER,
    "MESSAGE": MESSAGE,
    "MESSAGE_ERROR": MESSAGE_ERROR,
    "WORKFLOW": WORKFLOW,
    "RUN": RUN,
    "STEP": STEP,
}
SHAPES: dict[str, Shape[Any]] = {
    **TABLES,
    "METRICS": METRICS,
    "STATS": STATS,
    "HEALTH": HEALTH,
    "HEALTH_BY_QUEUE": HEALTH_BY_QUEUE,
}

TEXT = "2024-05-06 07:08:09.123456"  # a timestamp as SQLite stores it
API = "2024-05-06T07:08:09.123456+00:00"  # ... as the API shows it
MOMENT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)  # ... as Postgres returns it


def row_of(shape: Shape[Any], stored: dict[str, Any]) -> tuple[Any, ...]:
    """A row of `shape` from values named by column: the test never relies on positions."""
    assert set(stored) == set(shape.names)
    return tuple(stored[name] for name in shape.names)


# -- records built by name ------------------------------------------------------------------


@pytest.mark.parametrize("stamp", [TEXT, MOMENT])
def test_a_message_row_becomes_its_record(stamp: Any) -> None:
    stored = {
        "id": 5,
        "queue_id": 2,
        "payload": '{"a": 1}',
        "vt": stamp,
        "enqueued_at": stamp,
        "read_ct": None,
        "dequeued_at": None,
        "producer_worker_id": 7,
        "consumer_worker_id": None,
        "archived_at": stamp,
        "priority": 3,  # not a field of the record: claims sort by it
        "trace_context": None,
    }
    message = MESSAGE.build(row_of(MESSAGE, stored), {"a": 1}, {"raw": True})
    assert message == QueueMessage(
        id=5,
        queue_id=2,
        payload={"a": 1},
        raw_payload={"raw": True},
        vt=API,
        enqueued_at=API,
        read_ct=0,
        dequeued_at=None,
        producer_worker_id=7,
        consumer_worker_id=None,
        archived_at=API,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.id = 6  # type: ignore[misc]
    empty = MESSAGE.build(row_of(MESSAGE, {**stored, "enqueued_at": None}), None, None)
    assert empty.enqueued_at == ""


def _fresh_message(payload: Any = None) -> QueueMessage:
    """A message as a claim builds it: its timestamps not read yet."""
    stored: dict[str, Any] = dict.fromkeys(MESSAGE.names)
    stored.update(id=5, queue_id=2, vt=TEXT, enqueued_at=TEXT, dequeued_at=TEXT, read_ct=1)
    payload = {"a": [1]} if payload is None else payload
    return MESSAGE.build(row_of(MESSAGE, stored), payload, payload)


EAGER = QueueMessage(
    id=5,
    queue_id=2,
    payload={"a": [1]},
    raw_payload={"a": [1]},
    vt=API,
    enqueued_at=API,
    read_ct=1,
    dequeued_at=API,
    producer_worker_id=None,
    consumer_worker_id=None,
    archived_at=None,
)


def test_deferred_timestamps_are_converted_on_first_read_only() -> None:
    message = _fresh_message()
    deferred = {"vt", "enqueued_at", "dequeued_at", "archived_at"}
    assert deferred.isdisjoint(vars(message))  # nothing converted by the claim
    first = message.vt
    assert first == API
    assert message.vt is first  # converted once, then kept as a plain field
    assert "vt" in vars(message)
    assert message.archived_at is None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        message.nope  # type: ignore[attr-defined]  # noqa: B018
    assert not hasattr(message, "nope")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.enqueued_at = "x"  # type: ignore[misc]


def test_a_record_with_deferred_fields_is_indistinguishable_from_one_built_whole() -> None:
    assert _fresh_message() == EAGER
    assert EAGER.__eq__(_fresh_message()) is True  # from either side
    assert repr(_fresh_message()) == repr(EAGER)
    assert str(_fresh_message()) == str(EAGER)
    assert dataclasses.asdict(_fresh_message()) == dataclasses.asdict(EAGER)
    assert dataclasses.astuple(_fresh_message()) == dataclasses.astuple(EAGER)
    assert dataclasses.replace(_fresh_message(), id=6) == dataclasses.replace(EAGER, id=6)
    assert _fresh_message() != dataclasses.replace(EAGER, vt=None)
    for copied in (
        pickle.loads(pickle.dumps(_fresh_message())),
        copy.copy(_fresh_message()),
        copy.deepcopy(_fresh_message()),
    ):
        assert copied == EAGER
        assert "_deferred" not in vars(copied)  # its fields converted, nothing else kept
    flat = dataclasses.replace(EAGER, payload=1, raw_payload=1)
    assert hash(_fresh_message(payload=1)) == hash(flat)


def test_a_deferred_column_needs_a_record_that_defers() -> None:
    with pytest.raises(TypeError, match="DeferredFields"):
        Shape(QueueInfo, Column("id"), Column("queue_name"), Column("created_at", deferred=True))


def test_every_table_row_becomes_its_record() -> None:
    built: dict[str, tuple[dict[str, Any], object]] = {
        "QUEUE": (
            {"id": "3", "queue_name": "jobs", "created_at": TEXT},
            QueueInfo(id=3, queue_name="jobs", created_at=API),
        ),
        "SETTINGS": (
            {
                "queue_name": "jobs",
                "max_read_ct": "4",
                "max_payload_size_bytes": None,
                "max_string_length": "2048",
                "max_object_depth": 0,
            },
            QueueSettings(
                queue_name="jobs", max_read_ct=4, max_string_length=2048, max_object_depth=0
            ),
        ),
        "WORKER": (
            {
                "id": 1,
                "name": "w",
                "status": "polling",
                "queue_id": None,
                "heartbeat_at": TEXT,
                "started_at": None,
                "shutdown_at": None,
            },
            WorkerInfo(
                id=1,
                name="w",
                status=WorkerStatus.Polling,
                queue_id=None,
                heartbeat_at=API,
                started_at="",
                shutdown_at=None,
            ),
        ),
        "MESSAGE_ERROR": (
            {
                "message_id": "9",
                "attempt": "2",
                "error_type": "ValueError",
                "error_message": "bad",
                "traceback": None,
                "failed_at": MOMENT,
            },
            MessageError(9, 2, "ValueError", "bad", None, API),
        ),
        "WORKFLOW": (
            {"id": 4, "name": "wf", "queue_id": "3", "created_at": TEXT},
            WorkflowRecord(id=4, name="wf", queue_id=3, created_at=API),
        ),
        "RUN": (
            {
                "id": 1,
                "workflow_id": 4,
                "message_id": 5,
                "status": "PAUSED",
                "input": '{"x": [1]}',
                "output": None,
                "error": '"boom"',
                "created_at": TEXT,
                "updated_at": TEXT,
                "started_at": TEXT,
                "paused_at": None,
                "completed_at": None,
                "parent_run_id": "7",
                "deadline_at": TEXT,
            },
            RunRecord(
                id=1,
                workflow_id=4,
                message_id=5,
                status=WorkflowStatus.Paused,
                input={"x": [1]},
                output=None,
                error="boom",
                created_at=API,
                updated_at=API,
                started_at=API,
                paused_at=None,
                completed_at=None,
                parent_run_id=7,
                deadline_at=API,
            ),
        ),
        "STEP": (
            {
                "id": 2,
                "run_id": 1,
                "step_name": "s",
                "status": "ERROR",
                "input": None,
                "output": None,
                "error": '{"e": 1}',
                "retry_count": None,
                "retry_at": TEXT,
                "created_at": TEXT,
                "updated_at": None,
                "started_at": None,
                "completed_at": None,
            },
            StepRecord(
                id=2,
                run_id=1,
                step_name="s",
                status=WorkflowStatus.Error,
                input=None,
                output=None,
                error={"e": 1},
                retry_count=0,
                retry_at=API,
                created_at=API,
                updated_at="",
                started_at=None,
                completed_at=None,
            ),
        ),
    }
    assert set(built) == set(TABLES) - {"MESSAGE"}
    for name, (stored, record) in built.items():
        shape = TABLES[name]
        assert shape.build(row_of(shape, stored)) == record, name


def test_aggregate_rows_become_their_records() -> None:
    metrics = dict.fromkeys(METRICS.names, 0) | {
        "name": "jobs",
        "pending_messages": "3",
        "delayed_messages": None,
        "oldest_pending_message": TEXT,
        "live_newest": "2024-05-06 07:08:09.000000",
        "done_newest": MOMENT,
    }
    assert METRICS.build(row_of(METRICS, metrics)) == QueueMetrics(
        name="jobs",
        total_messages=0,
        pending_messages=3,
        delayed_messages=0,
        locked_messages=0,
        poison_messages=0,
        archived_messages=0,
        oldest_pending_message=API,
        newest_message=API,  # the later of the two
    )
    stats = dict.fromkeys(STATS.names, None) | {"total_queues": 2, "schema_version": 11}
    assert STATS.build(row_of(STATS, stats)) == SystemStats(2, 0, 0, 0, 0, 0, 0, 0, 0, "11")
    counts = {name: n for n, name in enumerate(HEALTH.names, 1)}
    expected = WorkerHealthStats("Global", 1, 2, 3, 4, 5, 6, 7)
    assert HEALTH.build(row_of(HEALTH, counts), "Global") == expected
    grouped = {"queue_id": 3, "queue": "jobs", **counts}
    assert HEALTH_BY_QUEUE.build(row_of(HEALTH_BY_QUEUE, grouped), "jobs") == (
        dataclasses.replace(expected, queue_name="jobs")
    )


# -- the statements use the declarations ------------------------------------------------------


def test_column_lists_come_from_the_declarations() -> None:
    assert MESSAGE.select == (
        "id, queue_id, payload, vt, enqueued_at, read_ct, dequeued_at, producer_worker_id, "
        "consumer_worker_id, archived_at, priority, trace_context"
    )
    assert MESSAGE.qualified("m") == ", ".join(f"m.{name}" for name in MESSAGE.names)
    assert HEALTH_BY_QUEUE.select.startswith("w.queue_id, q.queue_name, COUNT(w.id), SUM(")
    with pytest.raises(ValueError, match="computed columns cannot be qualified"):
        METRICS.qualified("x")
    assert MESSAGE.index("enqueued_at") == 4
    with pytest.raises(KeyError, match="QueueMessage rows have no column 'nope'"):
        MESSAGE.index("nope")


def _database() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.create_function("pgqrs_add_seconds", 2, lambda ts, secs: ts)
    conn.create_function("pgqrs_seconds_between", 2, lambda later, earlier: 0.0)
    for migration in (bookkeeping("sqlite"), *migrations("sqlite")):
        for statement in migration.statements():
            conn.execute(statement)
    return conn


# A value for each parameter, so that every statement runs (and reports its columns).
_PARAMS: dict[str, Any] = {
    "ids": "[]",
    "allowed": "[]",
    "statuses": "[]",
    "workflow_ids": "[]",
    "payloads": "[]",
    "name": "n",
    "queue_id": 1,
    "message_id": 1,
    "run_id": 1,
    "to": "ready",
    "input": "{}",
    "max_read_ct": 5,
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_statements_of_a_table_return_its_declared_columns(name: str) -> None:
    """Run on a real SQLite database, every statement that selects or returns a table's
    column list reports the declared names, in the declared order."""
    shape = TABLES[name]
    # Closed, or Python 3.13 warns when it is collected (during some later test).
    with contextlib.closing(_database()) as conn:
        _check_columns(conn, name, shape)


def _check_columns(conn: sqlite3.Connection, name: str, shape: Any) -> None:
    sql = render("sqlite")
    checked = []
    for statement in statement_names(Sql):
        value = getattr(sql, statement)
        for text in value if isinstance(value, tuple) else (value,):
            if not re.search(
                rf"\b(SELECT|RETURNING) {re.escape(shape.select)} FROM\b|"
                rf"\bRETURNING {re.escape(shape.select)}$",
                text,
            ):
                continue
            params = {
                param: _PARAMS.get(param, TEXT if param.endswith(("now", "_at")) else 1)
                for param in re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", text)
            }
            conn.execute("BEGIN")
            try:
                cursor = conn.execute(text, params)
                assert cursor.description is not None, statement
                assert tuple(d[0] for d in cursor.description) == shape.names, statement
            finally:
                conn.execute("ROLLBACK")
            checked.append(statement)
    assert checked, f"no statement returns {name} rows"


# -- a declaration that does not match its record fails at once ------------------------------


@dataclasses.dataclass(frozen=True)
class Pair:
    left: int
    right: str


def test_a_missing_field_fails() -> None:
    with pytest.raises(ValueError, match=r"missing \['right'\]"):
        Shape(Pair, Column("left"))


def test_a_column_for_no_field_fails() -> None:
    with pytest.raises(ValueError, match=r"unknown \['middle'\]"):
        Shape(Pair, Column("left"), Column("middle"), Column("right"))


def test_a_field_filled_twice_fails() -> None:
    with pytest.raises(ValueError, match=r"filled twice \['left'\]"):
        Shape(Pair, Column("left"), Column("other", field="left"), Column("right"))
    with pytest.raises(ValueError, match=r"filled twice \['right'\]"):
        Shape(Pair, Column("left"), Column("right"), given=("right",))


def test_a_column_declared_twice_fails() -> None:
    with pytest.raises(ValueError, match="a column is declared twice"):
        Shape(Pair, Column("left"), Column("right"), Column("left", field=None))


def test_a_combination_of_unknown_columns_fails() -> None:
    with pytest.raises(ValueError, match=r"combined from unknown columns \['b'\]"):
        Shape(Pair, Column("left"), combined={"right": (str, ("left", "b"))})


@pytest.mark.parametrize("given", ["not a name", "_private", "lambda"])
def test_a_given_field_must_be_a_plain_name(given: str) -> None:
    with pytest.raises(ValueError, match="a given field must be a plain name"):
        Shape(Pair, Column("left"), Column("right"), given=(given,))


def test_records_must_be_plain_dataclasses() -> None:
    class NotData:
        pass

    @dataclasses.dataclass(frozen=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        value: int

    with pytest.raises(TypeError, match="records are dataclasses"):
        Shape(NotData, Column("value"))
    with pytest.raises(TypeError, match="records are dataclasses"):
        Shape(Slotted, Column("value"))
    with pytest.raises(TypeError, match="cannot have a __post_init__"):
        Shape(Checked, Column("value"))


def test_a_shape_builds_by_name_with_conversions_defaults_and_combinations() -> None:
    shape = Shape(
        Pair,
        Column("b", str, otherwise="none", field="right"),
        Column("skipped", field=None),
        Column("a", int, field="left"),
    )
    assert shape.names == ("b", "skipped", "a")
    assert shape.build(("", "x", "7")) == Pair(left=7, right="none")
    assert shape.build((3, None, 1)) == Pair(left=1, right="3")
    combined = Shape(
        Pair,
        Column("a", int, field="left"),
        Column("b", field=None),
        combined={"right": (lambda a, b: f"{a}{b}", ("b", "a"))},
    )
    assert combined.build(("1", "2")) == Pair(left=1, right="21")
    given = Shape(Pair, Column("left"), given=("right",))
    assert given.build((1,), "r") == Pair(left=1, right="r")
    assert "def build(_row, right):" in given.source


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_fills_every_field_of_its_record(name: str) -> None:
    shape = SHAPES[name]
    fields = [field.name for field in dataclasses.fields(shape.record)]
    assert shape.fields == tuple(fields)
    for field in fields:
        assert f"'{field}':" in shape.source or field in shape.deferred
