"""OpenTelemetry spans with the real SDK (observability.md, "OpenTelemetry"): the trace context
travels in the message, from the producer's `send` span to the handler's `process` span.

Each test gives pgqrs's tracer a provider of its own, exporting to memory, in place of the
global one (which a process can set only once): what pgqrs does with the spans is the same.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    Tracer,
)

import pgqrs
from pgqrs import tracing
from pgqrs.decorators import step
from tests.support.raw_db import RawDb
from tests.support.target import Target
from tests.support.workflows import WF, new_run

EVERY_BACKEND = pytest.mark.backends("sqlite", "postgres", "turso", "s3")


class Traced:
    """pgqrs's spans in memory, and a tracer for the application's own."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.app: Tracer = self.provider.get_tracer("app")

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, [s.name for s in self.exporter.get_finished_spans()]
        return found[0]


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[Traced]:
    spans = Traced()
    tracer = spans.provider.get_tracer("pgqrs", pgqrs.__version__)
    monkeypatch.setattr(tracing, "_TRACER", tracer)
    yield spans
    spans.provider.shutdown()


def ids(span: ReadableSpan | Span) -> tuple[int, int]:
    context = span.get_span_context()
    assert context is not None
    return context.trace_id, context.span_id


def message_id_of(span: ReadableSpan) -> int:
    return int(str((span.attributes or {})["messaging.message.id"]))


def parent_of(span: ReadableSpan) -> tuple[int, int]:
    assert span.parent is not None, f"{span.name} has no parent"
    return span.parent.trace_id, span.parent.span_id


def traceparent(span: ReadableSpan) -> str:
    """The W3C `traceparent` of a span, without its flags."""
    trace_id, span_id = ids(span)
    return f"00-{trace_id:032x}-{span_id:016x}"


def parent_in(stored: str | None) -> str:
    """The `traceparent` a stored trace context holds, without its flags."""
    assert stored is not None
    headers: dict[str, str] = json.loads(stored)
    return headers["traceparent"].rsplit("-", 1)[0]


def carried(message: pgqrs.QueueMessage) -> str:
    return parent_in(message.trace_context)


def linked(span: ReadableSpan) -> list[tuple[int, int]]:
    return [(link.context.trace_id, link.context.span_id) for link in span.links]


def common(operation: str, queue: str) -> dict[str, Any]:
    return {
        "messaging.system": "pgqrs",
        "messaging.operation.name": operation,
        "messaging.operation.type": operation,
        "messaging.destination.name": queue,
    }


@EVERY_BACKEND
async def test_the_handler_span_continues_the_producer_trace(
    store: pgqrs.Store, queue: str, traced: Traced
) -> None:
    producer = await store.producer(queue)
    message_id = await producer.enqueue({"n": 1})
    seen: list[pgqrs.QueueMessage] = []

    async def handler(message: pgqrs.QueueMessage) -> None:
        with traced.app.start_as_current_span("work"):
            seen.append(message)

    await pgqrs.consume(store, queue, handler)
    send, process = traced.one(f"send {queue}"), traced.one(f"process {queue}")
    receive, work = traced.one(f"receive {queue}"), traced.one("work")
    assert send.kind == SpanKind.PRODUCER
    assert dict(send.attributes or {}) == {
        **common("send", queue),
        "messaging.message.id": str(message_id),
        "messaging.client.id": str(producer.worker_id),
    }
    assert send.instrumentation_scope is not None
    assert send.instrumentation_scope.name == "pgqrs"
    # The message carries the send span's context; the process span is its child.
    [message] = seen
    assert carried(message) == traceparent(send)
    assert process.kind == SpanKind.CONSUMER
    assert parent_of(process) == ids(send)
    assert (process.attributes or {})["messaging.message.id"] == str(message_id)
    assert process.status.status_code == StatusCode.UNSET
    assert parent_of(work) == ids(process)  # the handler's own spans are the process span's
    # The claim: its own span, linked to the message's context.
    assert receive.kind == SpanKind.CONSUMER
    assert (receive.attributes or {})["messaging.operation.name"] == "receive"
    assert linked(receive) == [ids(send)]


async def test_the_poll_loop_traces_each_message_it_handles(
    store: pgqrs.Store, queue: str, traced: Traced
) -> None:
    producer = await store.producer(queue)
    first, second = await producer.enqueue("a"), await producer.enqueue("b")
    handled: list[int] = []
    both = asyncio.Event()

    def handler(message: pgqrs.QueueMessage) -> None:  # runs on the runner's thread
        with traced.app.start_as_current_span(f"work {message.id}"):
            handled.append(message.id)
        if len(handled) == 2:
            loop.call_soon_threadsafe(both.set)

    loop = asyncio.get_running_loop()
    task = asyncio.create_task(pgqrs.dequeue().from_queue(queue).handle(handler).poll(store))
    try:
        async with asyncio.timeout(10):
            await both.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    sends = {message_id_of(s): s for s in traced.named(f"send {queue}")}
    processes = {message_id_of(s): s for s in traced.named(f"process {queue}")}
    assert set(sends) == set(processes) == {first, second}
    for message_id in (first, second):
        assert parent_of(processes[message_id]) == ids(sends[message_id])
        assert parent_of(traced.one(f"work {message_id}")) == ids(processes[message_id])
    assert ids(sends[first])[0] != ids(sends[second])[0]  # two enqueues, two traces
    assert len(traced.named(f"receive {queue}")) == 2  # empty polls leave no span


async def test_a_claim_span_has_the_batch_size(
    store: pgqrs.Store, queue: str, traced: Traced
) -> None:
    producer = await store.producer(queue)
    await producer.enqueue_batch([1, 2, 3])
    send = traced.one(f"send {queue}")
    assert (send.attributes or {})["messaging.batch.message_count"] == 3
    assert "messaging.message.id" not in (send.attributes or {})
    consumer = await store.consumer(queue)
    claimed = await consumer.dequeue(batch_size=3)
    assert [carried(m) for m in claimed] == [traceparent(send)] * 3
    receive = traced.one(f"receive {queue}")
    assert dict(receive.attributes or {}) == {
        **common("receive", queue),
        "messaging.batch.message_count": 3,
        "messaging.client.id": str(consumer.worker_id),
    }
    assert linked(receive) == [ids(send)] * 3
    assert receive.start_time is not None
    assert receive.end_time is not None
    assert receive.start_time <= receive.end_time
    assert await consumer.dequeue() == []
    assert len(traced.named(f"receive {queue}")) == 1  # a claim of nothing leaves no span


async def test_a_batch_handler_span_links_every_message(
    store: pgqrs.Store, queue: str, traced: Traced
) -> None:
    await pgqrs.produce(store, queue, "a")
    await pgqrs.produce(store, queue, "b")
    sends = traced.named(f"send {queue}")
    got: list[int] = []

    async def handler(messages: list[pgqrs.QueueMessage]) -> None:
        got.extend(m.id for m in messages)

    await pgqrs.consume_batch(store, queue, 2, handler)
    assert len(got) == 2
    process = traced.one(f"process {queue}")
    assert process.parent is None  # nothing was current: links, not a parent
    assert sorted(linked(process)) == sorted(ids(s) for s in sends)
    assert (process.attributes or {})["messaging.batch.message_count"] == 2


async def test_a_failing_handler_marks_its_span(
    store: pgqrs.Store, queue: str, traced: Traced
) -> None:
    await pgqrs.produce(store, queue, "x")

    async def handler(message: pgqrs.QueueMessage) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await pgqrs.consume(store, queue, handler)
    process = traced.one(f"process {queue}")
    assert process.status.status_code == StatusCode.ERROR
    assert [e.name for e in process.events] == ["exception"]  # recorded once
    assert (process.events[0].attributes or {})["exception.message"] == "boom"


@pytest.mark.backends("sqlite", "postgres")
async def test_every_kind_of_enqueue_stores_the_context(
    store: pgqrs.Store, queue: str, traced: Traced, target: Target
) -> None:
    producer = await store.producer(queue)
    with traced.app.start_as_current_span("request") as request:
        delayed = await producer.enqueue_delayed("later", 0)
        keyed = await producer.enqueue("once", dedup_key="k")
        batch = await producer.enqueue_batch(["p", "q"], dedup_keys=["k1", None])
    connection: Any = (
        psycopg.connect(target.dsn)
        if target.backend == "postgres"
        else sqlite3.connect(target.dsn.removeprefix("sqlite://"))
    )
    try:
        in_transaction = await producer.enqueue("tx", connection=connection)
        connection.commit()
    finally:
        connection.close()
    sends = traced.named(f"send {queue}")
    assert len(sends) == 4
    # Each send span is a child of what was current (the application's request span).
    assert [parent_of(s) for s in sends[:3]] == [ids(request)] * 3
    stored = dict(
        RawDb(target).query("SELECT id, trace_context FROM {s}pgqrs_messages ORDER BY id")
    )
    expected = [traceparent(s) for s in sends]
    found = [parent_in(stored[i]) for i in (delayed, keyed, batch[0], in_transaction)]
    assert found == expected
    assert stored[batch[1]] == stored[batch[0]]  # one batch, one send span


@EVERY_BACKEND
async def test_a_message_pgqrs_wrote_is_handled_in_a_trace_of_its_own(
    store: pgqrs.Store, queue: str, traced: Traced, target: Target
) -> None:
    """pgqrs 0.15.3 inserts without the column: the handler runs, its span starts a trace."""
    info = await store.get_queue(queue)
    RawDb(target).query(
        "INSERT INTO {s}pgqrs_messages (queue_id, payload, read_ct) VALUES (?, ?, 0)",
        [info.id, json.dumps({"from": "pgqrs"})],
    )
    seen: list[pgqrs.QueueMessage] = []

    async def handler(message: pgqrs.QueueMessage) -> None:
        seen.append(message)

    await pgqrs.consume(store, queue, handler)
    [message] = seen
    assert (message.payload, message.trace_context) == ({"from": "pgqrs"}, None)
    process = traced.one(f"process {queue}")
    assert process.parent is None
    assert linked(traced.one(f"receive {queue}")) == []


@pytest.mark.backends("sqlite", "postgres")
async def test_a_message_with_a_broken_context_is_still_handled(
    store: pgqrs.Store, queue: str, traced: Traced, target: Target
) -> None:
    info = await store.get_queue(queue)
    for junk in ("not json", "[1, 2]", '{"traceparent": "00-zz"}'):
        RawDb(target).query(
            "INSERT INTO {s}pgqrs_messages (queue_id, payload, read_ct, trace_context) "
            "VALUES (?, '1', 0, ?)",
            [info.id, junk],
        )
    handled: list[int] = []

    async def handler(messages: list[pgqrs.QueueMessage]) -> None:
        handled.extend(m.id for m in messages)

    await pgqrs.consume_batch(store, queue, 3, handler)
    assert len(handled) == 3
    assert linked(traced.one(f"process {queue}")) == []


# -- workflows ------------------------------------------------------------------------------------


@pytest.mark.backends("sqlite", "postgres")
async def test_a_workflow_run_is_traced_from_its_trigger_through_its_steps(
    store: pgqrs.Store, traced: Traced
) -> None:
    @step
    async def fetch(run: pgqrs.Run) -> int:
        return 7

    async def flow(run: pgqrs.Run) -> None:
        await run.start()
        await run.success(await fetch(run))

    with traced.app.start_as_current_span("request") as request:
        run = await new_run(store, {"n": 1})  # the trigger carries the request's context
    consumer = await store.consumer(WF)
    assert await pgqrs.dequeue().worker(consumer).handle_workflow(flow).execute(store) == 1
    assert await run.status() == "SUCCESS"
    process, fetched = traced.one(f"process {WF}"), traced.one("pgqrs.step fetch")
    assert parent_of(process) == ids(request)
    assert parent_of(fetched) == ids(process)
    assert dict(fetched.attributes or {}) == {
        "pgqrs.workflow.run_id": run.id(),
        "pgqrs.step.name": "fetch",
        "pgqrs.step.attempt": 1,
    }


@pytest.mark.backends("sqlite", "postgres")
async def test_each_attempt_of_a_step_has_its_span(store: pgqrs.Store, traced: Traced) -> None:
    calls: list[int] = []

    @step
    async def flaky(run: pgqrs.Run) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise pgqrs.TransientStepError("try again", retry_after=0)
        return "ok"

    run = await new_run(store)
    with pytest.raises(pgqrs.TransientStepError):
        await flaky(run)
    assert await flaky(run) == "ok"
    assert await flaky(run) == "ok"  # stored: the body does not run, no span
    spans: Sequence[ReadableSpan] = traced.named("pgqrs.step flaky")
    assert [(s.attributes or {})["pgqrs.step.attempt"] for s in spans] == [1, 2]
    assert [s.status.status_code for s in spans] == [StatusCode.ERROR, StatusCode.UNSET]
    assert [e.name for e in spans[0].events] == ["exception"]


@pytest.mark.backends("sqlite", "postgres")
async def test_without_a_provider_an_incoming_trace_still_travels(
    store: pgqrs.Store, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No SDK, but a context the application took from a request (propagation only): pgqrs
    makes no span, stores that context, and makes it current for the handler."""
    monkeypatch.setattr(tracing, "_TRACER", None)
    monkeypatch.setattr(tracing, "_next_check", float("inf"))  # no provider, not looked for
    incoming = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    with trace.use_span(NonRecordingSpan(incoming)):
        await pgqrs.produce(store, queue, "x")
    seen: list[tuple[str | None, SpanContext]] = []

    async def handler(message: pgqrs.QueueMessage) -> None:
        seen.append((message.trace_context, trace.get_current_span().get_span_context()))

    await pgqrs.consume(store, queue, handler)
    [(stored, current)] = seen
    assert parent_in(stored) == f"00-{0x1234:032x}-{0x5678:016x}"
    assert (current.trace_id, current.span_id) == (0x1234, 0x5678)
