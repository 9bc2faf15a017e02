"""`pgqrs --log-format json run ... --metrics-port 0` as a real process: its /metrics, scraped
over loopback, counts what its handlers did and shows its queue as the admin sees it; its
stderr is one JSON object per line, carrying the structured fields; SIGTERM stops it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import pgqrs
from tests.observability.conftest import Scraped
from tests.support.target import Target
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"metrics at (http://127\.0\.0\.1:\d+/metrics)")


async def start(target: Target, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PGQRS_DSN": target.dsn, "PGQRS_SCHEMA": target.schema}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pgqrs",
        "--log-format",
        "json",
        "run",
        *args,
        "--poll-interval",
        "20",
        "--metrics-port",
        "0",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def metrics_url(worker: asyncio.subprocess.Process, lines: list[dict[str, Any]]) -> str:
    """Read JSON log lines until the one saying where the metrics are."""
    assert worker.stderr is not None
    while True:
        line = await asyncio.wait_for(worker.stderr.readline(), 15)
        assert line, "pgqrs run exited before serving metrics"
        lines.append(json.loads(line))
        found = URL.search(lines[-1]["message"])
        if found:
            return found.group(1)


def fetch(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers["Content-Type"], response.read()


@pytest.mark.backends("sqlite", "postgres")
async def test_worker_serves_metrics_and_logs_json(store: pgqrs.Store, target: Target) -> None:
    admin = pgqrs.admin(store)
    await store.queue("jobs")
    await admin.update_queue("jobs", max_read_ct=1)  # the first failure makes a dead letter
    worker = await start(target, "tests.support.cli_handlers:explode", "-q", "jobs")
    lines: list[dict[str, Any]] = []
    try:
        url = await metrics_url(worker, lines)
        ids = await pgqrs.produce_batch(store, "jobs", ["a", "b"])

        async def both_dead() -> Scraped | None:
            content_type, body = await asyncio.to_thread(fetch, url)
            assert content_type.startswith("text/plain; version=0.0.4")
            scraped = Scraped(body)
            done = scraped.value(
                "pgqrs_messages_handled_total", queue="jobs", outcome="dead_lettered"
            )
            return scraped if done == len(ids) else None

        scraped: Scraped = await eventually(both_dead, within=15)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(worker.communicate(), 15)
    assert worker.returncode == 0, rest.decode()

    metrics = await admin.queue_metrics("jobs")
    assert scraped.value("pgqrs_queue_messages", queue="jobs", status="dead_letter") == 2
    assert metrics.poison_messages == 2
    assert scraped.value("pgqrs_messages_claimed_total", queue="jobs") == 2
    assert scraped.value("pgqrs_handler_duration_seconds_count", queue="jobs") == 2
    assert scraped.value("pgqrs_workers", queue="jobs", status="polling") == 1
    # Only the queue it serves.
    assert {dict(key[1]).get("queue") for key in scraped.samples} <= {"jobs", None}

    lines += [json.loads(line) for line in rest.decode().splitlines()]
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
    dead = [line for line in lines if "is a dead letter" in line["message"]]
    assert sorted(line["message_id"] for line in dead) == ids
    assert all(line["queue"] == "jobs" and line["attempt"] == 1 for line in dead)
    assert all(isinstance(line["worker_id"], int) for line in dead)
    failed = [line for line in lines if line["message"].startswith("handler failed")]
    assert len(failed) == 2
    assert all("ValueError: cannot handle" in line["exc"] for line in failed)
    assert {line["level"] for line in dead} == {"WARNING"}
    assert any(
        line["message"].startswith("worker ") and "polling" in line["message"] for line in lines
    )
