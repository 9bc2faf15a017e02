"""Arguments of the operator's calls on workflow runs (semantics.md §19): which runs to list,
which run to restart and from which step."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .._clock import Time, parse_time
from ..errors import ValidationError
from .arguments import require_int
from .names import validate_queue_name, validate_step_name

# What `Admin.list_runs` accepts for its workflow filter: one name, several, or None for any.
# (Its statuses are `pgqrs.WorkflowStatus`es or their names, checked here by name: importing
# `pgqrs.types` would make an import cycle, as it imports `pgqrs.policy`, which imports this
# package.)
WorkflowNames = str | Sequence[str] | None

# The stored labels of semantics.md §12.4.
STATUS_LABELS = ("QUEUED", "RUNNING", "PAUSED", "CANCELLING", "CANCELLED", "SUCCESS", "ERROR")


@dataclass(frozen=True)
class RunFilter:
    """`Admin.list_runs`'s filters, checked: None means "any"."""

    workflows: tuple[str, ...] | None
    statuses: tuple[str, ...] | None  # stored labels
    since: datetime | None  # created at or after
    until: datetime | None  # created before
    limit: int


def _some(what: str, value: object) -> list[object]:
    """One value or a non-empty sequence of them, as a list (a str is one value)."""
    if isinstance(value, str | enum.Enum):
        return [value]
    if not isinstance(value, Sequence):
        raise TypeError(
            f"{what} must be a str, a sequence of them or None, not {type(value).__name__}"
        )
    if not value:
        raise ValidationError(
            f"Validation failed: {what}: an empty list matches no run; pass None for any"
        )
    return list(value)


def check_status(value: object) -> str:
    """The stored label of a run status given as a `WorkflowStatus` or its name in any case."""
    name = value.name if isinstance(value, enum.Enum) else value
    if not isinstance(name, str):
        raise TypeError(f"status must be a WorkflowStatus or a str, not {type(value).__name__}")
    if name.upper() not in STATUS_LABELS:
        raise ValidationError(
            f"Validation failed: unknown run status '{name}' (one of {', '.join(STATUS_LABELS)})"
        )
    return name.upper()


def check_run_filter(
    workflow: WorkflowNames,
    status: object,
    since: Time | None,
    until: Time | None,
    limit: int,
) -> RunFilter:
    names = None
    if workflow is not None:
        names = tuple(validate_queue_name(n, "workflow") for n in _some("workflow", workflow))
    statuses = None
    if status is not None:
        statuses = tuple(dict.fromkeys(check_status(s) for s in _some("status", status)))
    start = None if since is None else parse_time(since)
    end = None if until is None else parse_time(until)
    if start is not None and end is not None and start >= end:
        raise ValidationError(
            f"Validation failed: since ({start.isoformat()}) must be before until "
            f"({end.isoformat()})"
        )
    return RunFilter(names, statuses, start, end, require_int("limit", limit, 1))


def check_run_id(value: object) -> int:
    return require_int("run_id", value)


def check_from_step(value: object) -> str | None:
    """A step name, or None: the run's first failed step (semantics.md §19.1)."""
    return None if value is None else validate_step_name(value, "from_step")
