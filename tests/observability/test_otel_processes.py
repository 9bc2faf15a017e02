"""Tracing as a program meets it (observability.md, "OpenTelemetry"), each case in a process of
its own: without `opentelemetry` importable, with the API but no SDK configured, and with an
SDK set as the global tracer provider (the usual way, which a process can do only once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

import pgqrs
from tests.support.process import ROOT
from tests.support.raw_db import RawDb
from tests.support.target import Target

pytestmark = pytest.mark.backends("sqlite", "postgres")

# Enqueue one message and a batch, handle them, and print what the program saw.
CHILD = """
import sys
MODE, QUEUE = sys.argv[1], sys.argv[2]
if MODE == "blocked":
    sys.modules["opentelemetry"] = None  # as if the `otel` extra were not installed
elif MODE == "sdk":
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
import asyncio, json
import pgqrs
from pgqrs import tracing
from tests.support.process import child_store

async def main():
    store = await child_store()
    producer = await store.producer(QUEUE)
    await producer.enqueue({"n": 1})
    await producer.enqueue_batch([2, 3])
    seen = []
    await pgqrs.consume_batch(store, QUEUE, 3, seen.extend)
    spans = []
    if MODE == "sdk":
        spans = [[s.name, s.instrumentation_scope.name, s.instrumentation_scope.version]
                 for s in exporter.get_finished_spans()]
    await store.close()
    print(json.dumps({
        "enabled": tracing.ENABLED,
        "imported": "opentelemetry" in sys.modules and sys.modules["opentelemetry"] is not None,
        "handled": sorted(m.payload if isinstance(m.payload, int) else 1 for m in seen),
        "carried": [m.trace_context is not None for m in seen],
        "spans": spans,
    }))

asyncio.run(main())
"""


def run_child(target: Target, mode: str, queue: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, queue],
        cwd=ROOT,
        env={**os.environ, **target.env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def stored_contexts(target: Target) -> list[Any]:
    return [r[0] for r in RawDb(target).query("SELECT trace_context FROM {s}pgqrs_messages")]


async def test_without_opentelemetry_everything_works_untraced(
    store: pgqrs.Store, queue: str, target: Target
) -> None:
    seen = run_child(target, "blocked", queue)
    assert seen == {
        "enabled": False,
        "imported": False,
        "handled": [1, 2, 3],
        "carried": [False] * 3,
        "spans": [],
    }
    assert stored_contexts(target) == [None] * 3


async def test_without_an_sdk_nothing_is_stored(
    store: pgqrs.Store, queue: str, target: Target
) -> None:
    seen = run_child(target, "api", queue)
    assert seen["enabled"] is True
    assert (seen["handled"], seen["carried"]) == ([1, 2, 3], [False] * 3)
    assert stored_contexts(target) == [None] * 3


async def test_the_global_sdk_records_pgqrs_spans(
    store: pgqrs.Store, queue: str, target: Target
) -> None:
    seen = run_child(target, "sdk", queue)
    assert (seen["handled"], seen["carried"]) == ([1, 2, 3], [True] * 3)
    names = [name for name, _, _ in seen["spans"]]
    assert names == [f"send {queue}", f"send {queue}", f"receive {queue}", f"process {queue}"]
    assert {(scope, version) for _, scope, version in seen["spans"]} == {
        ("pgqrs", pgqrs.__version__)
    }
    assert all(context is not None for context in stored_contexts(target))
