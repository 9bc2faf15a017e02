"""Names (semantics.md §6): queues, workflows, workers, steps and schemas."""

from __future__ import annotations

import re

from ..errors import ConfigError, ValidationError
from .arguments import require_str

_QUEUE_NAME_BAD_CHAR = re.compile(r"[^A-Za-z0-9_.:\-]")
_SCHEMA_NAME_BAD_CHAR = re.compile(r"[^A-Za-z0-9_$]")
_EPHEMERAL_PREFIX = "__ephemeral__"


def _show(text: str, limit: int = 64) -> str:
    """`text` fit for an error message: bounded, with control characters escaped."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    if shown.isprintable():
        return shown
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)


def validate_queue_name(name: object, kind: str = "queue") -> str:
    """`name` if it is a valid queue (or, with kind="workflow", workflow) name."""
    name = require_str(f"{kind} name", name)
    reason: str | None = None
    if not 1 <= len(name) <= 255:
        reason = f"must be 1-255 characters (got {len(name)})"
    elif (bad := _QUEUE_NAME_BAD_CHAR.search(name)) is not None:
        reason = f"contains '{_show(bad.group())}' (allowed: ASCII letters, digits, _ . : -)"
    if reason is not None:
        raise ValidationError(f"Validation failed: invalid {kind} name '{_show(name)}': {reason}")
    return name


def require_workflow_name(name: object) -> str:
    """`@workflow(name=...)`: a non-empty str. The rules of `validate_queue_name` apply when
    the definition is created, as for every other way of naming a workflow."""
    name = require_str("workflow name", name)
    if not name:
        raise ValueError("workflow name must not be empty")
    return name


def validate_step_name(name: object, what: str = "step name") -> str:
    """`name` if it is valid as a step name (any text of 1-255 characters); the same rule
    holds for signal topics and event keys, named by `what` in the message."""
    name = require_str(what, name)
    if not 1 <= len(name) <= 255:
        raise ValidationError(
            f"Validation failed: {what} must be 1-255 characters (got {len(name)})"
        )
    return name


def validate_worker_name(name: object) -> str:
    """`name` if it is valid as an explicit worker name."""
    name = require_str("worker name", name)
    reason: str | None = None
    if not 1 <= len(name) <= 255:
        reason = f"must be 1-255 characters (got {len(name)})"
    elif name != name.strip():
        reason = "must not start or end with whitespace"
    elif name.startswith(_EPHEMERAL_PREFIX):
        reason = f"must not start with '{_EPHEMERAL_PREFIX}' (reserved for ephemeral workers)"
    if reason is not None:
        raise ValidationError(f"Validation failed: invalid worker name '{_show(name)}': {reason}")
    return name


def validate_schema_name(name: object) -> str:
    """`name` if it is a valid Postgres schema name (it is also quoted wherever it is used)."""
    name = require_str("schema", name)
    reason: str | None = None
    if not 1 <= len(name) <= 63:
        reason = f"must be 1-63 characters (got {len(name)})"
    elif not (name[0] == "_" or (name[0].isascii() and name[0].isalpha())):
        reason = f"must start with an ASCII letter or '_', not '{_show(name[0])}'"
    elif (bad := _SCHEMA_NAME_BAD_CHAR.search(name)) is not None:
        reason = f"contains '{_show(bad.group())}' (allowed: ASCII letters, digits, _ $)"
    if reason is not None:
        raise ConfigError(f"Invalid configuration value for schema: '{_show(name)}' {reason}")
    return name
