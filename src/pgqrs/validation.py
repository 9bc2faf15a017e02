"""Pure checks run before anything touches storage: JSON encoding, payload rules, names, arguments.

Semantics §4 (JSON), §6 (names), §8.1-8.2 (payload rules and their order). No I/O here, so every
rule is unit-testable and a rejected call provably writes nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

from .errors import ConfigError, SerializationError, ValidationError

__all__ = [
    "PayloadRules",
    "decode_json",
    "encode_json",
    "encode_payloads",
    "require_duration",
    "require_int",
    "validate_queue_name",
    "validate_schema_name",
    "validate_worker_name",
]

# --------------------------------------------------------------------------------------------
# Argument checks


def require_int(name: str, value: object, minimum: int | None = None) -> int:
    """`value` as an int of at least `minimum`; `bool` is refused although it is an int subclass."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


# The longest duration any argument may name: pgqrs takes durations as u32 seconds, and a time
# this far ahead still fits every backend's timestamps (PostgreSQL reads back nothing past year
# 294276, Python nothing past 9999), so no accepted value can store a row that cannot be read.
MAX_DURATION_SECONDS = 2**32 - 1


def require_duration(name: str, value: object) -> float:
    """`value` as a finite float between 0 and MAX_DURATION_SECONDS (NaN would slip through a
    plain `< 0` test), checked before anything is written."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if number > MAX_DURATION_SECONDS:
        raise ValueError(
            f"{name} must be at most {MAX_DURATION_SECONDS} seconds (about 136 years), "
            f"got {value!r}"
        )
    return number


# --------------------------------------------------------------------------------------------
# JSON (semantics §4)

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# json writes U+0000 as the escape \u0000 (preceded by an even run of backslashes); PostgreSQL's
# jsonb refuses it, so every backend refuses it up front and behaves the same.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _encode(value: object, where: str = "") -> tuple[str, int]:
    """The stored text of `value` and its UTF-8 size, or SerializationError.

    `where` names the payload in a batch (`Payload at index i: `).
    """
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError) as err:
        raise SerializationError(f"Serialization error: {where}{err}") from err
    try:
        # ensure_ascii=False lets a lone surrogate through json; no database can store it.
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as err:
        bad = err.object[err.start : err.end]
        raise SerializationError(
            f"Serialization error: {where}{bad!r} cannot be encoded as UTF-8 ({err.reason})"
        ) from err
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise SerializationError(
            f"Serialization error: {where}the NUL character (U+0000) cannot be stored "
            "(PostgreSQL jsonb rejects it); remove or replace it"
        )
    return text, size


def encode_json(value: object) -> str:
    """The compact stored form of `value` (semantics §4.2); SerializationError when not JSON."""
    return _encode(value)[0]


_DECODER = json.JSONDecoder()


def decode_json(text: str) -> Any:
    return _DECODER.decode(text)  # json.loads without its per-call keyword handling


# --------------------------------------------------------------------------------------------
# Payload rules (semantics §8.1-8.2)


class PayloadSettings(Protocol):
    """The fields of `pgqrs.Config` that payload rules come from."""

    @property
    def max_payload_size_bytes(self) -> int: ...
    @property
    def max_string_length(self) -> int: ...
    @property
    def max_object_depth(self) -> int: ...
    @property
    def forbidden_keys(self) -> Sequence[str]: ...
    @property
    def required_keys(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class PayloadRules:
    """The payload limits of a store's Config, frozen so a producer sees one consistent set."""

    max_payload_size_bytes: int = 1048576
    max_string_length: int = 1024
    max_object_depth: int = 5
    forbidden_keys: tuple[str, ...] = ("__proto__", "constructor")
    required_keys: tuple[str, ...] = ()
    # Built once: membership is tested for every key of every payload.
    _forbidden: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "forbidden_keys", tuple(self.forbidden_keys))
        object.__setattr__(self, "required_keys", tuple(self.required_keys))
        object.__setattr__(self, "_forbidden", frozenset(self.forbidden_keys))

    @classmethod
    def from_config(cls, config: PayloadSettings) -> PayloadRules:
        return cls(
            max_payload_size_bytes=config.max_payload_size_bytes,
            max_string_length=config.max_string_length,
            max_object_depth=config.max_object_depth,
            forbidden_keys=tuple(config.forbidden_keys),
            required_keys=tuple(config.required_keys),
        )


# A path is built only when a message needs it: (parent path, `.key` or `[i]` segment), None = `$`.
_Path: TypeAlias = "tuple[_Path, str] | None"


# A value still to visit: (value, depth, parent path, segment, key when an object member).
_Entry: TypeAlias = "tuple[object, int, _Path, str, str | None]"


def _format_path(path: _Path) -> str:
    segments: list[str] = []
    while path is not None:
        path, segment = path
        segments.append(segment)
    return "$" + "".join(reversed(segments))


def _json_key(key: object) -> str:
    """A dict key as the JSON text has it (json.dumps converts these; anything else failed)."""
    if isinstance(key, str):
        # json writes a subclass's plain text; compare that, not a possibly redefined __eq__.
        return key if type(key) is str else str.__str__(key)
    if isinstance(key, float):
        return float.__repr__(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _utf8_length_over(text: str, limit: int) -> int | None:
    """The UTF-8 length of `text` if it exceeds `limit`, else None (cheaply, for short text)."""
    # A code point is at most 4 bytes, so most strings need no encoding at all.
    if len(text) * 4 <= limit:
        return None
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


def _structure_error(payload: object, rules: PayloadRules) -> str | None:
    """The first rule `payload` breaks, depth-first in document order, or None.

    Walks the value as its JSON text reads (tuples are arrays, keys are converted), with an
    explicit stack so that payloads json accepted never hit the recursion limit here.
    """
    max_depth = rules.max_object_depth
    limit = rules.max_string_length
    forbidden = rules._forbidden
    # A member's key is checked when the member is popped: after earlier members' subtrees and
    # before its own value, which is document order.
    stack: list[_Entry] = [(payload, 0, None, "", None)]
    while stack:
        value, depth, parent, segment, key = stack.pop()
        if key is not None:
            if key in forbidden:
                return f"Forbidden key '{key}' found in payload at {_format_path(parent)}"
            size = _utf8_length_over(key, limit)
            if size is not None:
                return (
                    f"Key '{key[:64]}' length {size} exceeds limit {limit} "
                    f"at {_format_path(parent)}"
                )
        if depth > max_depth:
            where = _format_path((parent, segment) if segment else None)
            return f"Object depth {depth} exceeds limit {max_depth} at {where}"
        if isinstance(value, str):
            size = _utf8_length_over(value, limit)
            if size is not None:
                where = _format_path((parent, segment) if segment else None)
                return f"String length {size} exceeds limit {limit} at {where}"
            continue
        # Only the root has no segment; its path is `$`.
        path: _Path = (parent, segment) if segment else None
        if isinstance(value, dict):
            members: list[_Entry] = []
            for raw_key, child in value.items():
                name = _json_key(raw_key)
                members.append((child, depth + 1, path, "." + name, name))
            stack.extend(reversed(members))
        elif isinstance(value, list | tuple):
            stack.extend(
                (value[i], depth + 1, path, f"[{i}]", None) for i in reversed(range(len(value)))
            )
    if rules.required_keys and isinstance(payload, dict):
        present = {_json_key(k) for k in payload}
        for required in rules.required_keys:
            if required not in present:
                return f"Required key '{required}' missing from payload"
    return None


def encode_payloads(payloads: Sequence[object], rules: PayloadRules, *, batch: bool) -> list[str]:
    """The stored texts of `payloads`, after every check of semantics §8.1, in the §8.2 order.

    All payloads pass one stage before any is checked by the next, so a batch reports a
    serialization error ahead of a size error wherever the two sit. `batch` selects the size
    message; the `Payload at index i: ` prefix appears only when there is more than one payload.
    """

    def where(index: int) -> str:
        return f"Payload at index {index}: " if len(payloads) > 1 else ""

    encoded = [_encode(payload, where(index)) for index, payload in enumerate(payloads)]
    for index, payload in enumerate(payloads):
        reason = _structure_error(payload, rules)
        if reason is not None:
            raise ValidationError(f"Validation failed: {where(index)}{reason}")
    limit = rules.max_payload_size_bytes
    for index, (_, size) in enumerate(encoded):
        if size > limit:
            if batch:
                raise ValidationError(
                    f"Validation failed: Payload at index {index} too large: "
                    f"{size} bytes exceeds limit {limit}"
                )
            raise ValidationError(f"Payload size {size} exceeds limit {limit}")
    return [text for text, _ in encoded]


# --------------------------------------------------------------------------------------------
# Names (semantics §6)

_QUEUE_NAME_BAD_CHAR = re.compile(r"[^A-Za-z0-9_.:\-]")
_SCHEMA_NAME_BAD_CHAR = re.compile(r"[^A-Za-z0-9_$]")
_EPHEMERAL_PREFIX = "__ephemeral__"


def _show(text: str, limit: int = 64) -> str:
    """`text` fit for an error message: bounded, with control characters escaped."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    if shown.isprintable():
        return shown
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)


def _require_str(what: str, name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    return name


def validate_queue_name(name: object, kind: str = "queue") -> str:
    """`name` if it is a valid queue (or, with kind="workflow", workflow) name."""
    name = _require_str(f"{kind} name", name)
    reason: str | None = None
    if not 1 <= len(name) <= 255:
        reason = f"must be 1-255 characters (got {len(name)})"
    elif (bad := _QUEUE_NAME_BAD_CHAR.search(name)) is not None:
        reason = f"contains '{_show(bad.group())}' (allowed: ASCII letters, digits, _ . : -)"
    if reason is not None:
        raise ValidationError(f"Validation failed: invalid {kind} name '{_show(name)}': {reason}")
    return name


def validate_worker_name(name: object) -> str:
    """`name` if it is valid as an explicit worker name."""
    name = _require_str("worker name", name)
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
    name = _require_str("schema", name)
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
