"""The exception tree (api.md §16): bases, construction, attributes."""

from __future__ import annotations

import builtins

import pytest

import pgqrs
from pgqrs import errors

BASES: dict[str, tuple[str, ...]] = {
    "PgqrsError": ("Exception",),
    "PgqrsConnectionError": ("PgqrsError",),
    "NotFoundError": ("PgqrsError",),
    "QueueNotFoundError": ("NotFoundError",),
    "WorkerNotFoundError": ("NotFoundError",),
    "MessageNotFoundError": ("NotFoundError",),
    "MessageLeasedError": ("StateTransitionError",),
    "QueueAlreadyExistsError": ("PgqrsError",),
    "SerializationError": ("PgqrsError", "TypeError", "ValueError"),
    "ConfigError": ("PgqrsError",),
    "RateLimitedError": ("PgqrsError",),
    "ValidationError": ("PgqrsError",),
    "TimeoutError": ("PgqrsError",),
    "InternalError": ("PgqrsError",),
    "StateTransitionError": ("PgqrsError",),
    "TransientStepError": ("PgqrsError",),
    "RetriesExhaustedError": ("PgqrsError",),
    "StepNotReadyError": ("PgqrsError",),
    "PausedError": ("PgqrsError",),
    "SuspendedError": ("PgqrsError",),
    "WorkflowCancelledError": ("PgqrsError",),
    "WorkflowFailedError": ("PgqrsError",),
    # issue 14 (semantics.md §18)
    "RunWaitingError": ("PausedError",),
    "WorkflowTimeoutError": ("TransientStepError",),
}

ATTRIBUTES: dict[str, dict[str, object]] = {
    "RateLimitedError": {"retry_after": None},
    "TransientStepError": {"code": "TRANSIENT_ERROR", "retry_after": None, "retry_at": None},
    "RetriesExhaustedError": {"attempts": None},
    "StepNotReadyError": {"retry_at": None},
    "PausedError": {"resume_after": None},
    "SuspendedError": {"reason": None},
    "MessageLeasedError": {"message_id": None, "worker_id": None, "lease_ends": None},
    "WorkflowCancelledError": {"run_id": None, "reason": None},
    "WorkflowFailedError": {"run_id": None, "error": None},
    "RunWaitingError": {"run_id": None, "until": None, "waiting_for": None, "resume_after": None},
    "WorkflowTimeoutError": {"code": "STEP_TIMEOUT", "retry_after": None, "retry_at": None},
}


def resolve(name: str) -> type:
    cls = getattr(errors, name, None) or getattr(builtins, name)
    assert isinstance(cls, type)
    return cls


def test_the_tree_has_every_class() -> None:
    assert sorted(errors.__all__) == sorted(BASES)


@pytest.mark.parametrize("name", BASES)
def test_bases(name: str) -> None:
    cls = getattr(errors, name)
    assert cls.__bases__ == tuple(resolve(b) for b in BASES[name])
    assert getattr(pgqrs, name) is cls


@pytest.mark.parametrize("name", BASES)
def test_built_from_a_message_or_nothing(name: str) -> None:
    cls = getattr(errors, name)
    assert str(cls("something went wrong")) == "something went wrong"
    assert str(cls()) == ""
    assert cls("x").args == ("x",)
    for attribute, default in ATTRIBUTES.get(name, {}).items():
        assert getattr(cls(), attribute) == default
    extra = cls("x")
    extra.anything = 1  # instances accept extra attributes
    assert extra.anything == 1


@pytest.mark.parametrize("name", ATTRIBUTES)
def test_documented_attributes_as_keywords(name: str) -> None:
    cls = getattr(errors, name)
    values = {attribute: f"value of {attribute}" for attribute in ATTRIBUTES[name]}
    error = cls("message", **values)
    assert str(error) == "message"
    for attribute, value in values.items():
        assert getattr(error, attribute) == value


def test_examples() -> None:
    limited = pgqrs.RateLimitedError("Rate limit exceeded, retry after 0.5s", retry_after=0.5)
    assert limited.retry_after == 0.5
    assert pgqrs.SuspendedError("Operation suspended: x", reason="x").reason == "x"
    assert pgqrs.StepNotReadyError("waiting for approval").retry_at is None
    assert pgqrs.TimeoutError is not builtins.TimeoutError  # type: ignore[comparison-overlap]  # two classes
    assert not issubclass(pgqrs.TimeoutError, builtins.TimeoutError)
    with pytest.raises(TypeError):
        raise pgqrs.SerializationError("Serialization error: x")
    with pytest.raises(ValueError):
        raise pgqrs.SerializationError("Serialization error: x")
