"""`Config` (api.md §2.1) and DSN parsing (semantics.md §2). Pure: nothing here connects."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, overload

from .errors import ConfigError
from .types import DurabilityMode
from .validation import MAX_DURATION_SECONDS, require_str, validate_schema_name

__all__ = ["Config", "Dsn", "parse_dsn", "redact_dsn"]

# --------------------------------------------------------------------------------------------
# DSNs

Backend = Literal["postgres", "sqlite", "turso", "s3"]
FileMode = Literal["rwc", "rw", "ro"]

_FILE_MODES: dict[str, FileMode] = {"rwc": "rwc", "rw": "rw", "ro": "ro"}
_URI_AUTHORITY = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^/]*)")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def _dsn_error(reason: str) -> ConfigError:
    return ConfigError(f"Invalid configuration value for dsn: {reason}")


@dataclass(frozen=True, slots=True, repr=False)
class Dsn:
    """A parsed DSN: which backend, and where its data lives."""

    backend: Backend
    raw: str
    path: str | None = None  # the SQLite/Turso file; None for an in-memory database
    memory: bool = False
    mode: FileMode = "rwc"
    bucket: str | None = None
    key: str | None = None

    @property
    def conninfo(self) -> str:
        """What to hand the driver: `raw`, with a Postgres scheme lower-cased (libpq insists)."""
        if self.backend != "postgres":
            return self.raw
        scheme, sep, rest = self.raw.partition("://")
        return scheme.lower() + sep + rest

    def __repr__(self) -> str:
        # The raw DSN may carry a password; a repr ends up in logs.
        return (
            f"Dsn(backend={self.backend!r}, raw={redact_dsn(self.raw)!r}, path={self.path!r}, "
            f"memory={self.memory!r}, mode={self.mode!r}, bucket={self.bucket!r}, "
            f"key={self.key!r})"
        )


def redact_dsn(dsn: str) -> str:
    """`dsn` with any password (in the userinfo or a `password=` option) replaced by `***`."""
    match = _URI_AUTHORITY.match(dsn)
    if match is not None:
        # Like libpq, the authority ends at the first `/`; the last `@` in it ends the userinfo.
        userinfo, at, host = match.group(2).rpartition("@")
        user, colon, _ = userinfo.partition(":")
        if at and colon:
            dsn = f"{match.group(1)}{user}:***@{host}{dsn[match.end() :]}"
    return _QUERY_PASSWORD.sub(r"\1***", dsn)


def parse_dsn(dsn: str) -> Dsn:
    """Parse `dsn` per semantics.md §2; ConfigError when it is unsupported or malformed."""
    lowered = require_str("dsn", dsn).lower()
    if lowered.startswith(("postgres://", "postgresql://")):
        return _parse_postgres(dsn)
    if lowered.startswith("s3://"):
        return _parse_s3(dsn)
    if lowered.startswith("sqlite:"):
        return _parse_file("sqlite", dsn)
    if lowered.startswith("turso:"):
        return _parse_file("turso", dsn)
    raise _dsn_error(f"Unsupported DSN format: {redact_dsn(dsn)}")


def _parse_postgres(dsn: str) -> Dsn:
    # Imported here so that SQLite-only programs never pay for loading libpq.
    from psycopg import Error as PsycopgError
    from psycopg.conninfo import conninfo_to_dict

    parsed = Dsn("postgres", dsn)
    conninfo = parsed.conninfo
    redacted = redact_dsn(conninfo)
    # libpq quotes the offending text in its messages, so parse the redacted form first: any
    # error it finds can be shown. An error only the real form has lies in the password.
    if redacted != conninfo:
        try:
            conninfo_to_dict(redacted)
        except PsycopgError as err:
            raise _dsn_error(f"malformed PostgreSQL DSN: {str(err).strip()}") from err
    try:
        params = conninfo_to_dict(conninfo)
    except PsycopgError as err:
        if redacted == conninfo:
            raise _dsn_error(f"malformed PostgreSQL DSN: {str(err).strip()}") from err
        params = None
    if params is None:
        # Raised outside the `except` so that not even `__context__` keeps the driver's
        # message, which quotes the password.
        raise _dsn_error(
            "malformed PostgreSQL DSN: the password is not valid URI text "
            "(percent-encode reserved characters)"
        )
    # libpq parses the port only when connecting; a typo should not wait until then.
    for port in str(params.get("port") or "").split(","):
        if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise _dsn_error(f"malformed PostgreSQL DSN: invalid port '{port}' (expected 1-65535)")
    return parsed


def _parse_s3(dsn: str) -> Dsn:
    bucket, _, key = dsn[len("s3://") :].partition("/")
    if not bucket:
        raise _dsn_error("s3 DSN needs a bucket: s3://<bucket>/<key>")
    if not key:
        raise _dsn_error("s3 DSN needs an object key: s3://<bucket>/<key>")
    return Dsn("s3", dsn, bucket=bucket, key=key)


def _parse_file(backend: Literal["sqlite", "turso"], dsn: str) -> Dsn:
    body, has_query, query = dsn[len(backend) + 1 :].partition("?")
    mode = _parse_mode(backend, query) if has_query else "rwc"
    path = body[2:] if body.startswith("//") else body
    # `sqlite://:memory:` would give each connection its own database; treat it as memory too.
    if path.lower() == ":memory:":
        return Dsn(backend, dsn, memory=True, mode=mode)
    if not path:
        raise _dsn_error(
            f"{backend} DSN needs a file path: {backend}:///abs/path.db, {backend}://rel/path.db "
            f"or {backend}::memory:"
        )
    return Dsn(backend, dsn, path=path, mode=mode)


def _parse_mode(backend: str, query: str) -> FileMode:
    modes: list[FileMode] = []
    for option in query.split("&"):
        if not option:
            continue
        name, _, value = option.partition("=")
        if name != "mode":
            raise _dsn_error(f"unknown {backend} DSN option '{name}' (accepted: mode=rwc|rw|ro)")
        mode = _FILE_MODES.get(value)
        if mode is None:
            raise _dsn_error(f"invalid {backend} DSN mode '{value}' (accepted: rwc, rw, ro)")
        modes.append(mode)
    if len(modes) > 1:
        raise _dsn_error(f"{backend} DSN option 'mode' given more than once")
    return modes[0] if modes else "rwc"


# --------------------------------------------------------------------------------------------
# Config

_Get = TypeVar("_Get")
_Set = TypeVar("_Set")


class _Field(Generic[_Get, _Set]):
    """One writable Config property: a default and the check every assignment goes through.

    `_Get` is what reading gives; `_Set` is what assigning accepts (wider for lists and paths).
    """

    __slots__ = ("_check", "_export", "default", "name")

    def __init__(
        self,
        default: _Get,
        check: Callable[[str, object], _Get],
        export: Callable[[_Get], _Get] | None = None,
    ) -> None:
        self.default = default
        self.name = ""
        self._check = check
        self._export = export

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, obj: Config, owner: type | None = None) -> _Get: ...
    def __get__(self, obj: Config | None, owner: type | None = None) -> Self | _Get:
        if obj is None:
            return self
        value: _Get = obj._values[self.name]
        return value if self._export is None else self._export(value)

    def __set__(self, obj: Config, value: _Set) -> None:
        obj._values[self.name] = self._check(self.name, value)


def _out_of_range(name: str, reason: str) -> ConfigError:
    return ConfigError(f"Invalid configuration value for {name}: {reason}")


def _int_check(
    minimum: int, nullable: bool, maximum: int | None = None
) -> Callable[[str, object], Any]:
    def check(name: str, value: object) -> int | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            expected = "an int or None" if nullable else "an int"
            raise TypeError(f"{name} must be {expected}, not {type(value).__name__}")
        if value < minimum:
            raise _out_of_range(name, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise _out_of_range(name, f"must be at most {maximum}, got {value}")
        return int(value)

    return check


def _int(default: int, minimum: int, maximum: int | None = None) -> _Field[int, int]:
    return _Field(default, _int_check(minimum, nullable=False, maximum=maximum))


def _optional_int(minimum: int) -> _Field[int | None, int | None]:
    return _Field(None, _int_check(minimum, nullable=True))


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def _bool(default: bool) -> _Field[bool, bool]:
    return _Field(default, _check_bool)


def _check_keys(name: str, value: object) -> list[str]:
    # A lone str is a sequence too; accepting it would forbid each of its characters.
    if not isinstance(value, list | tuple):
        raise TypeError(f"{name} must be a list of str, not {type(value).__name__}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{name} must contain only str, not {type(item).__name__}")
    return list(value)


def _keys(default: list[str]) -> _Field[list[str], list[str] | tuple[str, ...]]:
    # Stored lists are never mutated in place (assignment replaces them), and reads hand out
    # copies, so a shallow copy of a Config is already independent.
    return _Field(default, _check_keys, export=list)


def _check_schema(name: str, value: object) -> str:
    return validate_schema_name(value)


def _check_mode(name: str, value: object) -> DurabilityMode:
    if not isinstance(value, DurabilityMode):
        raise TypeError(f"{name} must be a DurabilityMode, not {type(value).__name__}")
    return value


def _check_cache_dir(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, not {type(value).__name__}")
    if not value.strip():
        raise _out_of_range(name, "cache dir cannot be empty")
    return value


class Config:
    """Connection and behaviour settings of a store. Not hashable: it is mutable."""

    __slots__ = ("_dsn", "_values")
    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    # The field table: name, type (via the check), default and accepted range, in repr order.
    schema: _Field[str, str] = _Field("public", _check_schema)
    max_connections = _int(16, minimum=1)
    connection_timeout_seconds = _int(30, minimum=1, maximum=MAX_DURATION_SECONDS)
    default_lock_time_seconds = _int(30, minimum=1, maximum=MAX_DURATION_SECONDS)
    default_max_batch_size = _int(100, minimum=1)
    max_read_ct = _int(5, minimum=1)
    heartbeat_interval_seconds = _int(5, minimum=1, maximum=MAX_DURATION_SECONDS)
    poll_interval_ms = _int(250, minimum=1, maximum=MAX_DURATION_SECONDS)
    max_payload_size_bytes = _int(1048576, minimum=1)
    max_string_length = _int(1024, minimum=1)
    max_object_depth = _int(5, minimum=0)
    forbidden_keys = _keys(["__proto__", "constructor"])
    required_keys = _keys([])
    max_enqueue_per_second = _optional_int(minimum=1)
    max_enqueue_burst = _optional_int(minimum=1)
    s3_mode: _Field[DurabilityMode, DurabilityMode] = _Field(DurabilityMode.Durable, _check_mode)
    s3_cache_dir: _Field[str | None, str | os.PathLike[str] | None] = _Field(None, _check_cache_dir)
    # Beyond pgqrs (docs/decisions.md, "Performance"): PostgreSQL only, other backends ignore
    # them. Wake idle consumers of other stores and processes with LISTEN/NOTIFY.
    listen_notify = _bool(True)

    def __init__(
        self,
        dsn: str,
        schema: str | None = None,
        max_connections: int | None = None,
        **fields: Any,
    ) -> None:
        require_str("dsn", dsn)
        # The DSN is parsed at connect time (connect_with raises ConfigError for it), so a
        # Config for an unsupported DSN can still be built and inspected.
        self._dsn = dsn
        self._values: dict[str, Any] = {f.name: f.default for f in _FIELDS}
        if schema is not None:
            self.schema = schema
        if max_connections is not None:
            self.max_connections = max_connections
        for name, value in fields.items():
            if name not in _FIELD_NAMES:
                raise TypeError(f"Config() got an unexpected keyword argument '{name}'")
            setattr(self, name, value)

    @staticmethod
    def from_dsn(dsn: str) -> Config:
        return Config(dsn)

    @property
    def dsn(self) -> str:
        return self._dsn

    def copy(self) -> Config:
        """An independent copy (a store keeps one, so later changes here do not reach it)."""
        clone = object.__new__(type(self))
        clone._dsn = self._dsn
        clone._values = dict(self._values)
        return clone

    __copy__ = copy

    def __deepcopy__(self, memo: dict[int, Any]) -> Config:
        return self.copy()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return self._dsn == other._dsn and self._values == other._values

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={self._values[f.name]!r}" for f in _FIELDS)
        return f"Config(dsn={redact_dsn(self._dsn)!r}, {fields})"


_FIELDS: tuple[_Field[Any, Any], ...] = tuple(
    value for value in vars(Config).values() if isinstance(value, _Field)
)
_FIELD_NAMES = frozenset(f.name for f in _FIELDS)
