"""Config (api.md §2.1) and DSN parsing (semantics.md §2)."""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import pytest

from pgqrs.config import Config, Dsn, parse_dsn, redact_dsn
from pgqrs.errors import ConfigError
from pgqrs.types import DurabilityMode

DSN = "sqlite::memory:"

DEFAULTS: dict[str, Any] = {
    "schema": "public",
    "max_connections": 16,
    "connection_timeout_seconds": 30,
    "default_lock_time_seconds": 30,
    "default_max_batch_size": 100,
    "max_read_ct": 5,
    "heartbeat_interval_seconds": 5,
    "poll_interval_ms": 250,
    "max_payload_size_bytes": 1048576,
    "max_string_length": 1024,
    "max_object_depth": 5,
    "forbidden_keys": ["__proto__", "constructor"],
    "required_keys": [],
    "max_enqueue_per_second": None,
    "max_enqueue_burst": None,
    "s3_mode": DurabilityMode.Durable,
    "s3_cache_dir": None,
}

INT_MINIMUMS = {
    "max_connections": 1,
    "connection_timeout_seconds": 1,
    "default_lock_time_seconds": 1,
    "default_max_batch_size": 1,
    "max_read_ct": 1,
    "heartbeat_interval_seconds": 1,
    "poll_interval_ms": 1,
    "max_payload_size_bytes": 1,
    "max_string_length": 1,
    "max_object_depth": 0,
    "max_enqueue_per_second": 1,
    "max_enqueue_burst": 1,
}


def kwargs(name: str, value: object) -> dict[str, Any]:
    return {name: value}


# --- Config -------------------------------------------------------------------------------------


def test_defaults() -> None:
    config = Config(DSN)
    assert config.dsn == DSN
    for name, value in DEFAULTS.items():
        assert getattr(config, name) == value, name
    assert config.s3_mode is DurabilityMode.Durable
    assert Config.from_dsn(DSN) == config


def test_constructor_arguments() -> None:
    config = Config(DSN, "app", 4, max_read_ct=9, s3_mode=DurabilityMode.Local)
    assert (config.schema, config.max_connections, config.max_read_ct) == ("app", 4, 9)
    assert config.s3_mode is DurabilityMode.Local
    # None for the two positional parameters means "the default".
    config = Config(DSN, schema=None, max_connections=None, max_enqueue_burst=None)
    assert (config.schema, config.max_connections) == ("public", 16)
    every = {**DEFAULTS, "schema": "s", "max_connections": 2, "required_keys": ["id"]}
    assert Config(DSN, **every).required_keys == ["id"]


def test_unknown_keyword_is_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_reads'"):
        Config(DSN, max_reads=3)
    with pytest.raises(TypeError):
        Config(DSN, dsn="sqlite:x.db")  # type: ignore[misc]


def test_dsn_is_read_only_and_must_be_str() -> None:
    config = Config(DSN)
    with pytest.raises(AttributeError):
        config.dsn = "sqlite:x.db"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Config(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Config.from_dsn(b"sqlite::memory:")  # type: ignore[arg-type]


def test_dsn_is_not_parsed_until_connect() -> None:
    # connect_with reports an unsupported DSN; building the Config does not.
    assert Config("mysql://localhost/db").dsn == "mysql://localhost/db"


def test_unknown_attributes_cannot_be_set() -> None:
    config = Config(DSN)
    with pytest.raises(AttributeError):
        config.max_reads = 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "minimum"), INT_MINIMUMS.items())
def test_int_fields_ranges(name: str, minimum: int) -> None:
    config = Config(DSN)
    setattr(config, name, minimum)
    assert getattr(config, name) == minimum
    setattr(config, name, 10**9)
    assert getattr(config, name) == 10**9
    for bad in (minimum - 1, -5):
        with pytest.raises(ConfigError) as info:
            setattr(config, name, bad)
        assert str(info.value) == (
            f"Invalid configuration value for {name}: must be at least {minimum}, got {bad}"
        )
        with pytest.raises(ConfigError):
            Config(DSN, **kwargs(name, bad))
    assert getattr(config, name) == 10**9  # a refused assignment changes nothing


@pytest.mark.parametrize("name", INT_MINIMUMS)
@pytest.mark.parametrize("bad", [True, False, 1.0, "5", [5]])
def test_int_fields_types(name: str, bad: object) -> None:
    config = Config(DSN)
    with pytest.raises(TypeError, match=f"^{name} must be an int"):
        setattr(config, name, bad)
    with pytest.raises(TypeError):
        Config(DSN, **kwargs(name, bad))


def test_nullable_int_fields() -> None:
    config = Config(DSN, max_enqueue_per_second=10, max_enqueue_burst=20)
    assert (config.max_enqueue_per_second, config.max_enqueue_burst) == (10, 20)
    config.max_enqueue_per_second = None
    config.max_enqueue_burst = None
    assert (config.max_enqueue_per_second, config.max_enqueue_burst) == (None, None)


@pytest.mark.parametrize(
    "name", [n for n in INT_MINIMUMS if n not in ("max_enqueue_per_second", "max_enqueue_burst")]
)
def test_other_int_fields_refuse_none(name: str) -> None:
    with pytest.raises(TypeError):
        setattr(Config(DSN), name, None)


@pytest.mark.parametrize("name", ["forbidden_keys", "required_keys"])
def test_key_lists(name: str) -> None:
    config = Config(DSN)
    given = ["a", "b"]
    setattr(config, name, given)
    given.append("c")
    assert getattr(config, name) == ["a", "b"]
    got = getattr(config, name)
    got.append("d")
    assert getattr(config, name) == ["a", "b"]
    assert getattr(config, name) is not getattr(config, name)
    setattr(config, name, ("x",))
    assert getattr(config, name) == ["x"]
    setattr(config, name, [])
    assert getattr(config, name) == []
    for bad in ("abc", None, {"a"}, ["a", 1]):
        with pytest.raises(TypeError):
            setattr(config, name, bad)


def test_default_key_lists_are_not_shared() -> None:
    Config(DSN).forbidden_keys.append("x")
    assert Config(DSN).forbidden_keys == ["__proto__", "constructor"]


def test_s3_mode() -> None:
    config = Config(DSN)
    config.s3_mode = DurabilityMode.Local
    assert config.s3_mode is DurabilityMode.Local
    for bad in ("local", 1, None):
        with pytest.raises(TypeError):
            config.s3_mode = bad  # type: ignore[assignment]


def test_s3_cache_dir(tmp_path: pathlib.Path) -> None:
    config = Config(DSN, s3_cache_dir="/tmp/cache")
    assert config.s3_cache_dir == "/tmp/cache"
    config.s3_cache_dir = tmp_path
    assert config.s3_cache_dir == str(tmp_path)
    config.s3_cache_dir = None
    assert config.s3_cache_dir is None
    for blank in ("", "   ", "\t\n"):
        with pytest.raises(ConfigError) as info:
            config.s3_cache_dir = blank
        assert str(info.value) == (
            "Invalid configuration value for s3_cache_dir: cache dir cannot be empty"
        )
    with pytest.raises(ConfigError, match="cache dir cannot be empty"):
        Config(DSN, s3_cache_dir=" ")
    with pytest.raises(TypeError):
        config.s3_cache_dir = 5  # type: ignore[assignment]


def test_schema_is_validated_on_assignment() -> None:
    config = Config(DSN)
    config.schema = "tenant_1"
    assert config.schema == "tenant_1"
    with pytest.raises(ConfigError) as info:
        config.schema = "bad-name"
    assert str(info.value).startswith("Invalid configuration value for schema: 'bad-name'")
    assert config.schema == "tenant_1"
    with pytest.raises(ConfigError):
        Config(DSN, schema="1abc")
    with pytest.raises(TypeError):
        config.schema = None  # type: ignore[assignment]
    with pytest.raises(ConfigError):
        config.schema = ""


def test_repr_shows_every_field_and_hides_passwords() -> None:
    text = repr(Config("postgresql://app:hunter2@db:5432/prod", max_read_ct=7))
    assert text.startswith("Config(dsn='postgresql://app:***@db:5432/prod', schema='public', ")
    assert "hunter2" not in text
    assert "max_read_ct=7" in text
    for name in DEFAULTS:
        assert f" {name}=" in text
    assert "forbidden_keys=['__proto__', 'constructor']" in text
    assert "s3_mode=DurabilityMode.Durable" in text


def test_not_hashable_but_equal_by_value() -> None:
    config = Config(DSN)
    with pytest.raises(TypeError):
        hash(config)
    assert Config.__hash__ is None
    assert config == Config(DSN)
    assert config != Config(DSN, max_read_ct=6)
    assert config != Config("sqlite:x.db")
    assert config != DSN


@pytest.mark.parametrize(
    "make_copy", [Config.copy, copy.copy, copy.deepcopy], ids=["copy", "copy.copy", "deepcopy"]
)
def test_copies_are_independent(make_copy: Any) -> None:
    original = Config(DSN, forbidden_keys=["a"], max_read_ct=3)
    clone = make_copy(original)
    assert clone == original
    assert clone is not original
    clone.max_read_ct = 9
    clone.forbidden_keys = ["b"]
    clone.schema = "other"
    assert (original.max_read_ct, original.forbidden_keys, original.schema) == (3, ["a"], "public")
    original.required_keys = ["id"]
    assert clone.required_keys == []


# --- DSNs ---------------------------------------------------------------------------------------


def dsn_error(dsn: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_dsn(dsn)
    return str(info.value)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgres://localhost/db",
        "postgresql://user:pw@localhost:5432/db?sslmode=disable",
        "postgresql://",
        "postgresql:///db?host=/var/run/postgresql",
        "postgres://u@h1:5432,h2:5433/db",
        "postgres://u@h1:5432,h2/db",
    ],
)
def test_postgres_dsns_are_kept_unchanged(dsn: str) -> None:
    parsed = parse_dsn(dsn)
    assert parsed == Dsn("postgres", dsn)
    assert parsed.raw == dsn
    assert parsed.conninfo == dsn
    assert (parsed.path, parsed.memory, parsed.bucket, parsed.key) == (None, False, None, None)


def test_postgres_scheme_is_case_insensitive() -> None:
    parsed = parse_dsn("PostgreSQL://u@h/DB")
    assert parsed.backend == "postgres"
    assert parsed.raw == "PostgreSQL://u@h/DB"
    assert parsed.conninfo == "postgresql://u@h/DB"


@pytest.mark.parametrize(
    ("dsn", "detail"),
    [
        ("postgres://user@host:notaport/db", "invalid port 'notaport' (expected 1-65535)"),
        ("postgres://host:0/db", "invalid port '0' (expected 1-65535)"),
        ("postgres://host:65536/db", "invalid port '65536' (expected 1-65535)"),
        ("postgres://h1:5432,h2:x/db", "invalid port 'x' (expected 1-65535)"),
        ("postgres://host/db?port=abc", "invalid port 'abc' (expected 1-65535)"),
        (
            "postgresql://[bad",
            'end of string reached when looking for matching "]" in IPv6 host address in URI: '
            '"postgresql://[bad"',
        ),
        ("postgres://host/db?foo=bar", 'invalid URI query parameter: "foo"'),
        (
            "postgres://host/db?flag",
            'missing key/value separator "=" in URI query parameter: "flag"',
        ),
    ],
)
def test_malformed_postgres_dsns(dsn: str, detail: str) -> None:
    assert dsn_error(dsn) == (
        f"Invalid configuration value for dsn: malformed PostgreSQL DSN: {detail}"
    )


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://user:s3cr3t-pw@[bad/db",
        "postgres://user:s3cr3t-pw@host:notaport/db",
        "postgres://user:s3cr3t pw@host/db",
        "postgres://user:s3cr3t%zz@host/db",
        "postgres://host/db?password=s3cr3t pw&sslmode=disable",
        "postgres://host/db?password=s3cr3t%zz",
        "postgres://host/db?user=u&password=s3cr3t&bogus=1",
    ],
)
def test_malformed_postgres_dsn_never_echoes_the_password(dsn: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_dsn(dsn)
    assert str(info.value).startswith(
        "Invalid configuration value for dsn: malformed PostgreSQL DSN: "
    )
    # Neither the message nor anything chained to it.
    seen: BaseException | None = info.value
    while seen is not None:
        assert "s3cr3t" not in str(seen)
        seen = seen.__cause__ or seen.__context__


def test_password_errors_are_described_without_the_password() -> None:
    assert dsn_error("postgres://user:bad pw@host/db") == (
        "Invalid configuration value for dsn: malformed PostgreSQL DSN: the password is not "
        "valid URI text (percent-encode reserved characters)"
    )


@pytest.mark.parametrize(
    ("dsn", "bucket", "key"),
    [
        ("s3://bucket/key", "bucket", "key"),
        ("s3://my-bucket/path/to/queue.db", "my-bucket", "path/to/queue.db"),
        ("S3://Bucket/Key", "Bucket", "Key"),
        ("s3://b//k", "b", "/k"),
    ],
)
def test_s3_dsns(dsn: str, bucket: str, key: str) -> None:
    assert parse_dsn(dsn) == Dsn("s3", dsn, bucket=bucket, key=key)


@pytest.mark.parametrize(
    ("dsn", "missing"),
    [
        ("s3://", "a bucket"),
        ("s3:///key", "a bucket"),
        ("s3://bucket", "an object key"),
        ("s3://bucket/", "an object key"),
    ],
)
def test_s3_dsn_missing_parts(dsn: str, missing: str) -> None:
    assert dsn_error(dsn) == (
        f"Invalid configuration value for dsn: s3 DSN needs {missing}: s3://<bucket>/<key>"
    )


@pytest.mark.parametrize("backend", ["sqlite", "turso"])
@pytest.mark.parametrize(
    ("rest", "path", "memory", "mode"),
    [
        (":memory:", None, True, "rwc"),
        (":MEMORY:", None, True, "rwc"),
        ("//:memory:", None, True, "rwc"),
        (":memory:?mode=ro", None, True, "ro"),
        ("///abs/path.db", "/abs/path.db", False, "rwc"),
        ("//rel/path.db", "rel/path.db", False, "rwc"),
        ("rel/path.db", "rel/path.db", False, "rwc"),
        ("/abs.db", "/abs.db", False, "rwc"),
        ("///abs/path.db?mode=rw", "/abs/path.db", False, "rw"),
        ("//rel.db?mode=ro", "rel.db", False, "ro"),
        ("rel.db?mode=rwc", "rel.db", False, "rwc"),
        ("rel.db?", "rel.db", False, "rwc"),
    ],
)
def test_file_dsns(backend: str, rest: str, path: str | None, memory: bool, mode: str) -> None:
    for scheme in (backend, backend.upper()):
        dsn = f"{scheme}:{rest}"
        assert parse_dsn(dsn) == Dsn(backend, dsn, path=path, memory=memory, mode=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["sqlite", "turso"])
@pytest.mark.parametrize(
    ("rest", "reason"),
    [
        ("x.db?mode=wr", "invalid {b} DSN mode 'wr' (accepted: rwc, rw, ro)"),
        ("x.db?mode=RO", "invalid {b} DSN mode 'RO' (accepted: rwc, rw, ro)"),
        ("x.db?mode", "invalid {b} DSN mode '' (accepted: rwc, rw, ro)"),
        ("x.db?cache=shared", "unknown {b} DSN option 'cache' (accepted: mode=rwc|rw|ro)"),
        ("x.db?mode=ro&cache=shared", "unknown {b} DSN option 'cache' (accepted: mode=rwc|rw|ro)"),
        ("x.db?mode=ro&mode=rw", "{b} DSN option 'mode' given more than once"),
    ],
)
def test_file_dsn_query_errors(backend: str, rest: str, reason: str) -> None:
    assert dsn_error(f"{backend}:{rest}") == (
        f"Invalid configuration value for dsn: {reason.format(b=backend)}"
    )


@pytest.mark.parametrize("backend", ["sqlite", "turso"])
@pytest.mark.parametrize("rest", ["", "//", "?mode=ro", "//?mode=rw"])
def test_file_dsn_needs_a_path(backend: str, rest: str) -> None:
    assert dsn_error(f"{backend}:{rest}") == (
        f"Invalid configuration value for dsn: {backend} DSN needs a file path: "
        f"{backend}:///abs/path.db, {backend}://rel/path.db or {backend}::memory:"
    )


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("mysql://u:hunter2@h/db", "mysql://u:***@h/db"),
        ("", ""),
        ("sqlite3:///x.db", "sqlite3:///x.db"),
        ("postgres:/db", "postgres:/db"),
        ("redis://localhost", "redis://localhost"),
        ("/path/to/file.db", "/path/to/file.db"),
    ],
)
def test_unsupported_dsns(dsn: str, shown: str) -> None:
    assert dsn_error(dsn) == (
        f"Invalid configuration value for dsn: Unsupported DSN format: {shown}"
    )


def test_non_str_dsn_is_type_error() -> None:
    with pytest.raises(TypeError):
        parse_dsn(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dsn", "redacted"),
    [
        ("postgres://u:pw@h/d", "postgres://u:***@h/d"),
        ("postgres://u@h/d", "postgres://u@h/d"),
        ("postgres://u:p@ss@h/d", "postgres://u:***@h/d"),
        ("postgres://h/d?password=pw&sslmode=x", "postgres://h/d?password=***&sslmode=x"),
        ("postgres://h/d?sslmode=x&PASSWORD=pw", "postgres://h/d?sslmode=x&PASSWORD=***"),
        ("sqlite::memory:", "sqlite::memory:"),
        ("s3://b/k", "s3://b/k"),
    ],
)
def test_redact_dsn(dsn: str, redacted: str) -> None:
    assert redact_dsn(dsn) == redacted


def test_dsn_repr_hides_password() -> None:
    assert "pw" not in repr(parse_dsn("postgres://u:pw@h/d"))
