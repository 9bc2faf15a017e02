"""Status enums and record classes as pure values (api.md §9, §15, §18)."""

from __future__ import annotations

import dataclasses
import enum
import operator
from collections.abc import Callable
from typing import Any

import pytest

import pgqrs
import pgqrs.errors
import pgqrs.types
from pgqrs.types import (
    DurabilityMode,
    QueueInfo,
    QueueMessage,
    StepResultStatus,
    SyncState,
    WorkerInfo,
    WorkerStatus,
    WorkflowStatus,
)

ENUMS: dict[type[enum.Enum], list[tuple[str, int]]] = {
    WorkerStatus: [
        ("Ready", 0),
        ("Polling", 1),
        ("Suspended", 2),
        ("Interrupted", 3),
        ("Stopped", 4),
    ],
    WorkflowStatus: [
        ("Queued", 0),
        ("Running", 1),
        ("Paused", 2),
        ("Cancelling", 3),
        ("Cancelled", 4),
        ("Success", 5),
        ("Error", 6),
    ],
    StepResultStatus: [("Execute", 0), ("Skipped", 1)],
    DurabilityMode: [("Durable", 0), ("Local", 1)],
    SyncState: [
        ("LocalMissing", 0),
        ("RemoteMissingClean", 1),
        ("RemoteMissingDirty", 2),
        ("InSync", 3),
        ("LocalChanges", 4),
        ("RemoteChanges", 5),
        ("ConcurrentChanges", 6),
    ],
}

MEMBERS = [member for cls in ENUMS for member in cls]


def ids(member: Any) -> str:
    return repr(member)


@pytest.mark.parametrize("cls", ENUMS, ids=lambda c: c.__name__)
def test_members_and_values(cls: type[enum.Enum]) -> None:
    assert issubclass(cls, enum.Enum)
    assert [(m.name, m.value) for m in cls] == ENUMS[cls]
    assert all(type(m.value) is int for m in cls)


@pytest.mark.parametrize("member", MEMBERS, ids=ids)
def test_equal_to_its_name_in_any_case(member: Any) -> None:
    name: str = member.name
    for spelling in (name, name.upper(), name.lower(), name.swapcase(), name.capitalize()):
        assert member == spelling
        assert spelling == member  # symmetric
        assert operator.ne(member, spelling) is False
        assert operator.ne(spelling, member) is False
    for other in ("", name + " ", " " + name, name + "x", name[:-1], str(member.value)):
        assert member != other
        assert other != member


@pytest.mark.parametrize("member", MEMBERS, ids=ids)
def test_equal_to_its_int_value_but_not_bools(member: Any) -> None:
    assert member == member.value
    assert member.value == member
    assert int(member) == member.value
    assert member != member.value + 1
    assert member.value + 1 != member
    assert member != True  # noqa: E712
    assert member != False  # noqa: E712
    assert operator.ne(True, member)  # the reflected comparisons too
    assert operator.ne(False, member)
    assert member != float(member.value)


@pytest.mark.parametrize("member", MEMBERS, ids=ids)
def test_unequal_to_every_other_member(member: Any) -> None:
    assert member == member
    for other in MEMBERS:
        if other is not member:
            assert member != other
            assert not member == other  # noqa: SIM201
    assert member != None  # noqa: E711
    assert member != object()


def test_members_of_different_enums_with_the_same_value() -> None:
    assert WorkerStatus.Ready.value == WorkflowStatus.Queued.value == 0
    assert WorkerStatus.Ready != WorkflowStatus.Queued
    assert WorkerStatus.Ready != StepResultStatus.Execute


@pytest.mark.parametrize("member", MEMBERS, ids=ids)
def test_hash_is_the_upper_case_name(member: Any) -> None:
    assert hash(member) == hash(member.name.upper())
    assert {member: "x"}[member.name.upper()] == "x"
    assert member in {member.name.upper()}
    assert member.name.upper() in {member}


def test_dict_and_set_lookups() -> None:
    by_status = {WorkerStatus.Ready: 1, WorkerStatus.Suspended: 2}
    assert by_status["SUSPENDED"] == 2  # type: ignore[index]  # a member hashes as its name
    assert by_status[WorkerStatus.Suspended] == 2
    assert "suspended" not in by_status  # other spellings hash differently
    assert 2 not in by_status  # so do ints
    assert len({WorkerStatus.Ready, WorkerStatus.Ready, "READY"}) == 1
    # Same-named members of different enums are distinct keys.
    assert len({WorkflowStatus.Error, WorkflowStatus.Error}) == 1


@pytest.mark.parametrize("member", MEMBERS, ids=ids)
def test_str_format_and_repr(member: Any) -> None:
    upper = member.name.upper()
    assert str(member) == upper
    assert format(member, "") == upper
    assert f"{member}" == upper
    assert f"{member:>20}" == upper.rjust(20)
    assert repr(member) == f"{type(member).__name__}.{member.name}"


def test_examples_of_the_spec() -> None:
    assert WorkerStatus.Suspended == "SUSPENDED"
    assert WorkflowStatus.Success == "success"
    assert str(WorkerStatus.Suspended) == "SUSPENDED"
    assert repr(WorkerStatus.Suspended) == "WorkerStatus.Suspended"
    assert WorkerStatus.Suspended.name == "Suspended"
    assert int(WorkflowStatus.Error) == 6


ORDERINGS: list[Callable[[Any, Any], Any]] = [operator.lt, operator.le, operator.gt, operator.ge]


@pytest.mark.parametrize("compare", ORDERINGS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "other", [WorkerStatus.Polling, "READY", 1, WorkflowStatus.Running], ids=repr
)
def test_ordering_raises_type_error(compare: Callable[[Any, Any], Any], other: Any) -> None:
    with pytest.raises(TypeError):
        compare(WorkerStatus.Ready, other)
    with pytest.raises(TypeError):
        compare(other, WorkerStatus.Ready)
    with pytest.raises(TypeError):
        sorted([WorkerStatus.Stopped, WorkerStatus.Ready])  # type: ignore[type-var]  # the point: unordered


def test_lookup_by_value_and_name() -> None:
    assert WorkerStatus(2) is WorkerStatus.Suspended
    assert WorkerStatus["Suspended"] is WorkerStatus.Suspended
    assert next(iter(WorkerStatus)) is WorkerStatus.Ready


def test_types_module_exports_the_same_objects() -> None:
    names = [
        "WorkerStatus",
        "WorkflowStatus",
        "StepResultStatus",
        "DurabilityMode",
        "SyncState",
        "QueueMessage",
        "QueueInfo",
        "WorkerInfo",
        "WorkflowRecord",
        "RunRecord",
        "StepRecord",
        "QueueMetrics",
        "SystemStats",
        "WorkerHealthStats",
        "BackoffStrategy",
        "StepRetryPolicy",
    ]
    for name in names:
        assert getattr(pgqrs.types, name) is getattr(pgqrs, name), name
    assert sorted(pgqrs.types.__all__) == sorted(names)
    # pgqrs's 21, MessageLeasedError (issue 12), RunWaitingError and WorkflowTimeoutError (14)
    assert len(pgqrs.errors.__all__) == 24
    for name in pgqrs.errors.__all__:
        assert getattr(pgqrs.errors, name) is getattr(pgqrs, name), name


# -- records ------------------------------------------------------------------------------------

RECORD_FIELDS: dict[type, list[str]] = {
    QueueMessage: [
        "id",
        "queue_id",
        "payload",
        "raw_payload",
        "vt",
        "enqueued_at",
        "read_ct",
        "dequeued_at",
        "producer_worker_id",
        "consumer_worker_id",
        "archived_at",
        "trace_context",  # beyond pgqrs (issue 15), a keyword field with a default
    ],
    QueueInfo: ["id", "queue_name", "created_at"],
    WorkerInfo: ["id", "name", "status", "queue_id", "heartbeat_at", "started_at", "shutdown_at"],
    pgqrs.types.WorkflowRecord: ["id", "name", "queue_id", "created_at"],
    pgqrs.types.RunRecord: [
        "id",
        "workflow_id",
        "message_id",
        "status",
        "input",
        "output",
        "error",
        "created_at",
        "updated_at",
        "started_at",
        "paused_at",
        "completed_at",
        "parent_run_id",  # beyond pgqrs (issue 14), keyword fields with a default
        "deadline_at",
    ],
    pgqrs.types.StepRecord: [
        "id",
        "run_id",
        "step_name",
        "status",
        "input",
        "output",
        "error",
        "retry_count",
        "retry_at",
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
    ],
    pgqrs.types.QueueMetrics: [
        "name",
        "total_messages",
        "pending_messages",
        "delayed_messages",
        "locked_messages",
        "poison_messages",
        "archived_messages",
        "oldest_pending_message",
        "newest_message",
    ],
    pgqrs.types.SystemStats: [
        "total_queues",
        "total_workers",
        "active_workers",
        "total_messages",
        "pending_messages",
        "delayed_messages",
        "locked_messages",
        "poison_messages",
        "archived_messages",
        "schema_version",
    ],
    pgqrs.types.WorkerHealthStats: [
        "queue_name",
        "total_workers",
        "ready_workers",
        "polling_workers",
        "interrupted_workers",
        "suspended_workers",
        "stopped_workers",
        "stale_workers",
    ],
}


@pytest.mark.parametrize("cls", RECORD_FIELDS, ids=lambda c: c.__name__)
def test_record_fields(cls: type) -> None:
    assert [f.name for f in dataclasses.fields(cls)] == RECORD_FIELDS[cls]


def sample(cls: type) -> Any:
    values = {name: i for i, name in enumerate(RECORD_FIELDS[cls])}
    return cls(**values)


@pytest.mark.parametrize("cls", RECORD_FIELDS, ids=lambda c: c.__name__)
def test_records_are_frozen(cls: type) -> None:
    record = sample(cls)
    first = RECORD_FIELDS[cls][0]
    with pytest.raises(AttributeError):
        setattr(record, first, 99)
    with pytest.raises(AttributeError):
        record.not_a_field = 1
    with pytest.raises(AttributeError):
        delattr(record, first)
    assert getattr(record, first) == 0


@pytest.mark.parametrize("cls", RECORD_FIELDS, ids=lambda c: c.__name__)
def test_records_compare_by_value(cls: type) -> None:
    one, two = sample(cls), sample(cls)
    assert one == two
    assert hash(one) == hash(two)
    changed = dataclasses.replace(one, **{RECORD_FIELDS[cls][-1]: -1})
    assert changed != one
    assert repr(one).startswith(f"{cls.__name__}(")


def test_records_of_different_classes_are_unequal() -> None:
    queue = QueueInfo(1, "q", "2026-01-01T00:00:00+00:00")
    workflow = pgqrs.types.WorkflowRecord(1, "q", 1, "2026-01-01T00:00:00+00:00")
    assert queue != workflow  # type: ignore[comparison-overlap]  # the point: different classes
