"""What the benchmark scripts share: fresh databases, bulk loading, statistics, output, RSS.

Imports only the standard library and psycopg 3, so it works in both virtualenvs of compare.py
(this checkout, and pgqrs 0.15.3 from PyPI) and never imports `pgqrs` itself; boto3 only
for an S3 target (venv-this has it). Sizes and the command line are in bench_config.py.

    python benchmarks/bench_support.py machine   # JSON: CPU, cores, PostgreSQL, SQLite versions
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from bench_config import PG_DSN

SCHEMA_PREFIX = "bench_"
HERE = Path(__file__).resolve().parent
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


# -- fresh databases ------------------------------------------------------------------------


@dataclass
class Target:
    """One fresh database: a PostgreSQL schema of its own, or a new SQLite file."""

    backend: str
    dsn: str
    schema: str = "public"
    path: Path | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> str:
        """The qualified messages table, for the bulk loader and the raw baseline."""
        if self.backend == "postgres":
            return f'"{self.schema}".pgqrs_messages'
        return "pgqrs_messages"


@contextmanager
def fresh_target(backend: str, dsn: str = PG_DSN, workdir: str | None = None) -> Iterator[Target]:
    """A fresh database, dropped or deleted afterwards, also on failure: a PostgreSQL schema
    (created first: pgqrs 0.15.3 cannot install into a missing one), a new SQLite or Turso
    file, or a new bucket on the benchmark's own S3 server with a new cache directory."""
    base = Path(workdir or os.environ.get("PGQRS_BENCH_TMP") or "/tmp")
    name = f"{SCHEMA_PREFIX}{uuid.uuid4().hex[:12]}"
    if backend == "postgres":
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        try:
            yield Target("postgres", dsn, name)
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    elif backend in ("sqlite", "turso"):
        path = base / f"{name}.db"
        try:
            yield Target(backend, f"{backend}://{path}", path=path)
        finally:
            # The database and whatever the engine keeps beside it (-wal, -shm, Turso's -wait).
            for leftover in base.glob(f"{name}.db*"):
                leftover.unlink(missing_ok=True)
    elif backend == "s3":
        client = s3_client()
        bucket = name.replace("_", "-")
        client.create_bucket(Bucket=bucket)
        cache = base / f"{name}-cache"
        try:
            yield Target(
                "s3", f"s3://{bucket}/queues/bench.sqlite", notes={"s3_cache_dir": str(cache)}
            )
        finally:
            shutil.rmtree(cache, ignore_errors=True)
            # Frees the server's memory; best effort, so that a failed case reports its own
            # error (the bucket ends with the server's process anyway).
            with suppress(Exception):
                for listed in client.list_objects_v2(Bucket=bucket).get("Contents", []):
                    client.delete_object(Bucket=bucket, Key=listed["Key"])
                client.delete_bucket(Bucket=bucket)
    else:
        raise ValueError(f"unknown backend {backend!r}")


# -- the S3 server ----------------------------------------------------------------------------

_s3_server: subprocess.Popen[str] | None = None


def s3_endpoint() -> str:
    """moto's S3 server on 127.0.0.1 (benchmarks/s3_server.py), started on first use in a
    process of its own, so that it does not share this process's GIL (a real S3 endpoint is
    another machine). It serves one request at a time, as the tests' server does, which gives
    S3's atomic conditional writes. Stopped when this process exits (it also exits by itself
    when its stdin, our pipe, closes). Sets AWS_* in os.environ for the S3 store to read."""
    global _s3_server
    if _s3_server is None:
        server = subprocess.Popen(
            [sys.executable, str(HERE / "s3_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        if not line.startswith("http://"):
            server.kill()
            raise RuntimeError(f"the S3 server did not start (it printed {line!r})")
        _s3_server = server
        atexit.register(_stop_s3_server)
        os.environ.update({"AWS_ENDPOINT_URL": line, **S3_CREDENTIALS})
    return os.environ["AWS_ENDPOINT_URL"]


def _stop_s3_server() -> None:
    if _s3_server is not None and _s3_server.poll() is None:
        assert _s3_server.stdin is not None
        _s3_server.stdin.close()
        try:
            _s3_server.wait(10)
        except subprocess.TimeoutExpired:
            _s3_server.kill()
            _s3_server.wait()


def s3_client() -> Any:
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=s3_endpoint(),
        region_name=S3_CREDENTIALS["AWS_REGION"],
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


# -- bulk loading (not measured) ------------------------------------------------------------


def sqlite_time(moment: datetime) -> str:
    """The stored SQLite form of a timestamp (schema.md §7)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def bulk_load(
    target: Target, queue_id: int, visible: int, archived: int, priorities: int = 0
) -> float:
    """Insert `archived` archived rows, then `visible` pending ones, in one statement each.

    Archived rows are older than the visible ones (they were processed first), as in a real
    queue. With `priorities` (this library's migration 11), row g gets priority
    `g % priorities - priorities // 2`, so priorities are mixed in enqueue order. Returns the
    seconds it took. PostgreSQL then gets VACUUM ANALYZE, which autovacuum would do within a
    minute of such a load in production; SQLite is left unanalysed, as applications leave it.
    """
    column, value = "", ""
    if priorities:
        column, value = ", priority", f", g % {priorities} - {priorities // 2}"
    started = time.perf_counter()
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    if target.backend == "postgres":
        stamp = "CAST(%(base)s AS timestamptz) + g * interval '1 microsecond'"
        insert = (
            f"INSERT INTO {target.messages} "
            f"(queue_id, payload, vt, enqueued_at, read_ct, archived_at{column}) "
            "SELECT %(q)s, jsonb_build_object('n', g, 'kind', 'bench', 'ref', 'order-' || g), "
            f"{stamp}, {stamp}, 0, {{archived}}{value.replace('%', '%%')} "
            "FROM generate_series(CAST(%(first)s AS bigint), CAST(%(last)s AS bigint)) AS g"
        )
        with psycopg.connect(target.dsn, autocommit=True) as conn:
            if archived:
                conn.execute(
                    insert.format(archived="%(base)s + interval '30 minutes'"),
                    {"q": queue_id, "base": base, "first": 1, "last": archived},
                )
            if visible:
                conn.execute(
                    insert.format(archived="NULL"),
                    {
                        "q": queue_id,
                        "base": base,
                        "first": archived + 1,
                        "last": archived + visible,
                    },
                )
            conn.execute(f"VACUUM ANALYZE {target.messages}")
        return time.perf_counter() - started
    assert target.path is not None
    epoch = int(base.timestamp())
    stamp = (
        "strftime('%Y-%m-%d %H:%M:%S', :epoch + g / 1000000, 'unixepoch') "
        "|| printf('.%06d', g % 1000000)"
    )
    insert = (
        "WITH RECURSIVE s(g) AS (SELECT :first UNION ALL SELECT g + 1 FROM s WHERE g < :last) "
        f"INSERT INTO {target.messages} "
        f"(queue_id, payload, vt, enqueued_at, read_ct, archived_at{column}) "
        "SELECT :q, json_object('n', g, 'kind', 'bench', 'ref', printf('order-%08d', g)), "
        f"{stamp}, {stamp}, 0, {{archived}}{value} FROM s"
    )
    conn = sqlite3.connect(target.path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        params = {"q": queue_id, "epoch": epoch}
        conn.execute("BEGIN IMMEDIATE")
        if archived:
            later = sqlite_time(base + timedelta(minutes=30))
            conn.execute(
                insert.format(archived=":later"),
                {**params, "first": 1, "last": archived, "later": later},
            )
        if visible:
            conn.execute(
                insert.format(archived="NULL"),
                {**params, "first": archived + 1, "last": archived + visible},
            )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def pending_count(target: Target, queue_id: int) -> int:
    """Messages of the queue not yet archived, read behind the library's back."""
    sql = f"SELECT count(*) FROM {target.messages} WHERE queue_id = %s AND archived_at IS NULL"
    if target.backend == "postgres":
        with psycopg.connect(target.dsn) as conn:
            row = conn.execute(sql, (queue_id,)).fetchone()
    else:
        assert target.path is not None
        conn = sqlite3.connect(target.path, timeout=30)
        try:
            row = conn.execute(sql.replace("%s", "?"), (queue_id,)).fetchone()
        finally:
            conn.close()
    assert row is not None
    return int(row[0])


# -- statistics and output ------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50": round(percentile(ms, 50), 3),
        "p95": round(percentile(ms, 95), 3),
        "p99": round(percentile(ms, 99), 3),
        "max": round(max(ms), 3) if ms else float("nan"),
    }


def result(
    scenario: str,
    impl: str,
    backend: str,
    params: dict[str, Any],
    count: int,
    seconds: float,
    *,
    latencies: list[float] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "scenario": scenario,
        "impl": impl,
        "backend": backend,
        "params": params,
        "count": count,
        "seconds": round(seconds, 4),
        "msgs_per_s": round(count / seconds, 1) if seconds > 0 else None,
        "latency_ms": latency_ms(latencies) if latencies else None,
    }
    line.update(extra)
    return line


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)


# -- memory ---------------------------------------------------------------------------------


def rss_mib() -> float:
    """Resident set size of this process, from /proc."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """Samples RSS every `interval` seconds on a thread, with a progress counter read alongside.

    A thread (not a task) so that a busy event loop or a native core cannot delay the samples.
    """

    def __init__(self, progress: list[int], interval: float = 0.05) -> None:
        self.samples: list[tuple[float, int, float]] = []  # (seconds, progress, MiB)
        self._progress = progress
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._started = time.perf_counter()

    def __enter__(self) -> RssSampler:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        self.samples.append((time.perf_counter() - self._started, self._progress[0], rss_mib()))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def summary(self, total: int) -> dict[str, float]:
        """Peak RSS, and the least-squares slope of RSS over messages processed, in MiB per
        100,000 messages, fitted after the first 10% (connection pools, caches and statement
        preparation settle there)."""
        fitted = [(p, mib) for _, p, mib in self.samples if p >= total * 0.1]
        slope = 0.0
        if len(fitted) >= 2:
            mean_p = sum(p for p, _ in fitted) / len(fitted)
            mean_m = sum(m for _, m in fitted) / len(fitted)
            var = sum((p - mean_p) ** 2 for p, _ in fitted)
            if var > 0:
                slope = sum((p - mean_p) * (m - mean_m) for p, m in fitted) / var * 100_000
        rss = [mib for _, _, mib in self.samples]
        return {
            "rss_start_mib": round(rss[0], 1),
            "rss_peak_mib": round(max(rss), 1),
            "rss_end_mib": round(rss[-1], 1),
            "rss_slope_mib_per_100k": round(slope, 2),
            "rss_samples": len(rss),
        }


# -- the machine ----------------------------------------------------------------------------


def machine(dsn: str = PG_DSN) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            postgres = f"PostgreSQL {row[0]}" if row else "PostgreSQL ?"
    except psycopg.Error as err:
        postgres = f"PostgreSQL unreachable ({err.__class__.__name__})"
    try:
        with open("/proc/meminfo") as info:
            mem_kib = int(info.readline().split()[1])
        memory = f"{mem_kib / 2**20:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        memory = "RAM ?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgres": postgres,
        "sqlite": f"SQLite {sqlite3.sqlite_version}",
        "psycopg": psycopg.__version__,
        **_optional_versions(),
    }


def _optional_versions() -> dict[str, str]:
    """pyturso, boto3 and moto, where installed (venv-this)."""
    from importlib import metadata

    found = {}
    for key, dist in (("pyturso", "pyturso"), ("boto3", "boto3"), ("moto", "moto")):
        try:
            found[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


if __name__ == "__main__":
    if sys.argv[1:] == ["machine"]:
        print(json.dumps(machine()))
    else:
        sys.exit(__doc__)
