"""`connect()` and `connect_with()`: pick the backend from the DSN and open it."""

from __future__ import annotations

from ..config import Config, parse_dsn
from ..errors import ConfigError
from ..validation import validate_schema_name
from .executor import Executor
from .facade import Store


async def connect(dsn: str) -> Store:
    """Connect with every setting at its default. Never installs or checks the schema."""
    return await connect_with(Config.from_dsn(dsn))


async def connect_with(config: Config) -> Store:
    """Connect with `config` (copied: later changes to it do not affect the store)."""
    if not isinstance(config, Config):
        raise TypeError(f"connect_with() needs a pgqrs.Config, got {type(config).__name__}")
    config = config.copy()
    dsn = parse_dsn(config.dsn)
    validate_schema_name(config.schema)
    executor: Executor
    if dsn.backend == "postgres":
        from .postgres import PostgresExecutor

        executor = PostgresExecutor(config)
    elif dsn.backend == "sqlite":
        from .sqlite import SqliteExecutor

        executor = SqliteExecutor(dsn)
    elif dsn.backend == "turso":
        from .turso import TursoExecutor  # ConfigError when pyturso is not installed

        executor = TursoExecutor(dsn)
    elif dsn.backend == "s3":
        from .s3 import S3Executor

        executor = S3Executor(dsn, config)  # ConfigError without s3_cache_dir or boto3
    else:
        raise ConfigError(
            f"Invalid configuration value for dsn: the {dsn.backend} backend is not available yet"
        )
    await executor.start()
    return Store._open(executor, config)
