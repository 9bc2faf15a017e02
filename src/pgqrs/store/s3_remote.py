"""The object behind an S3 store, read and written whole with boto3 on a daemon thread.

Settings come from the standard AWS variables (semantics.md §15): `AWS_ENDPOINT_URL` (optional,
path-style addressing), `AWS_REGION` (default us-east-1) and the credentials boto3 finds
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). A request that takes
longer than `connection_timeout_seconds` raises `pgqrs.TimeoutError`; other failures raise
`PgqrsConnectionError`; a failed precondition raises the conflict error.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ConfigError, NotFoundError, PgqrsConnectionError
from ..errors import TimeoutError as OperationTimeout
from .s3_errors import ObjectMissing, conflict
from .threads import DbThread

try:
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        ReadTimeoutError,
    )
except ImportError as err:  # an optional dependency: `pip install 'pgqrs-py[s3]'`
    raise ConfigError(
        "Invalid configuration value for dsn: s3 backend needs the 'boto3' package"
    ) from err

T = TypeVar("T")

# Clients are made from one shared session (loading botocore's S3 model once per process,
# ~0.2 s); making a client is not thread-safe, using one from its own thread is.
_SESSION: Any = None
_SESSION_LOCK = threading.Lock()

_MISSING = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}


def _make_client(timeout: int) -> Any:
    config = BotoConfig(
        s3={"addressing_style": "path"},
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"mode": "standard", "max_attempts": 2},
        # Checksums only where S3 requires them: many S3-compatible servers reject the newer
        # default ones.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = boto3.session.Session()
        return _SESSION.client(
            "s3",
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            region_name=os.environ.get("AWS_REGION") or "us-east-1",
            config=config,
        )


class Remote:
    """One object (`s3://bucket/key`): its ETag, a download, a conditional upload."""

    def __init__(self, bucket: str, key: str, timeout: int) -> None:
        self.bucket = bucket
        self.key = key
        self.uri = f"s3://{bucket}/{key}"
        self._timeout = timeout
        # One thread per store: the client is created on it and never shared between threads.
        # The opener must not reference `self`, or a dropped store's thread would keep it alive.
        self._thread = DbThread(functools.partial(_make_client, timeout), "pgqrs-s3")
        weakref.finalize(self, self._thread.stop)  # a store dropped without close()

    def stop(self) -> None:
        self._thread.stop()

    async def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for drops a cancellation that lands
            # as the call completes, and a cancelled poll loop would then run on forever.
            async with asyncio.timeout(self._timeout):
                return await self._thread.call(fn)
        except (builtins.TimeoutError, ConnectTimeoutError, ReadTimeoutError) as err:
            raise OperationTimeout(
                f"Operation timeout: S3 {what} of {self.uri} took longer than {self._timeout}s"
            ) from err
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            status = str(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if what == "upload" and {code, status} & _PRECONDITION:
                raise conflict() from err
            if {code, status} & _MISSING:
                if what == "upload":
                    raise ObjectMissing(f"S3 object '{self.uri}' not found") from err
                raise NotFoundError(f"S3 object '{self.uri}' not found") from err
            raise PgqrsConnectionError(f"Database query failed: S3 {what} failed: {err}") from err
        except BotoCoreError as err:
            raise PgqrsConnectionError(
                f"Database connection failed: S3 {what} of {self.uri} failed: {err}"
            ) from err

    async def etag(self) -> str | None:
        """The object's current ETag, or None when it does not exist."""
        return (await self.head())[0]

    async def head(self) -> tuple[str | None, dict[str, str]]:
        """The object's current ETag (None when it does not exist) and its metadata."""

        def head(client: Any) -> tuple[str | None, dict[str, str]]:
            try:
                found = client.head_object(Bucket=self.bucket, Key=self.key)
            except ClientError as err:
                if str(err.response.get("Error", {}).get("Code", "")) in _MISSING:
                    return None, {}
                raise
            return str(found["ETag"]), dict(found.get("Metadata") or {})

        return await self._call("head", head)

    async def download(self, dest: str) -> str:
        """Write the object to `dest`; its ETag. NotFoundError when it does not exist."""

        def get(client: Any) -> str:
            response = client.get_object(Bucket=self.bucket, Key=self.key)
            with open(dest, "wb") as out:
                for chunk in response["Body"].iter_chunks(1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            return str(response["ETag"])

        return await self._call("download", get)

    async def upload(
        self, data: bytes, *, if_match: str | None, metadata: dict[str, str] | None = None
    ) -> str:
        """Replace the object only if its ETag is `if_match`, or create it only if absent
        (`if_match` None); the new ETag. The conflict error when the condition fails."""
        condition = {"IfMatch": if_match} if if_match is not None else {"IfNoneMatch": "*"}
        extra = {"Metadata": metadata} if metadata else {}

        def put(client: Any) -> str:
            response = client.put_object(
                Bucket=self.bucket, Key=self.key, Body=data, **condition, **extra
            )
            return str(response["ETag"])

        return await self._call("upload", put)
