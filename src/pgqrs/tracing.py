"""OpenTelemetry spans of enqueues, claims, handlers and workflow steps (observability.md,
"OpenTelemetry").

pgqrs depends only on `opentelemetry-api` (the `otel` extra), as instrumented libraries do: its
tracer (`get_tracer("pgqrs", version)`) records nothing until the application configures an
SDK. Until then no span is made at all (the API's no-op spans cost more than an enqueue's own
Python work), and without the package every function here returns at once. Span names, kinds
and attributes follow the OpenTelemetry messaging conventions; `pgqrs.*` attributes are this
library's own.

The trace context current at an enqueue travels in the message (`pgqrs_messages.trace_context`,
schema.md §2.4): the W3C headers the configured propagator writes, as compact JSON text. The
span that handles the message is that context's child (docs/decisions.md, "OpenTelemetry
tracing").
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ._version import __version__
from .errors import PausedError, StepNotReadyError, WorkflowCancelledError
from .types import QueueMessage

try:
    from opentelemetry import propagate as _propagate
    from opentelemetry import trace as _trace
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode, Tracer
except ImportError:  # the `otel` extra is not installed: tracing is off
    ENABLED = False
else:
    ENABLED = True

# pgqrs's tracer, once the application has configured a tracer provider (None before).
_TRACER: Tracer | None = None
# Until then the global provider is looked at again at most once a second: the look costs
# more than the rest of an untraced enqueue's tracing, and applications set it at startup.
_RECHECK_SECONDS = 1.0
_next_check = 0.0

SYSTEM = "pgqrs"
# Attribute names (OpenTelemetry semantic conventions for messaging, then pgqrs's own).
_SYSTEM = "messaging.system"
_OPERATION = "messaging.operation.name"
_OPERATION_TYPE = "messaging.operation.type"
_DESTINATION = "messaging.destination.name"
_MESSAGE_ID = "messaging.message.id"
_BATCH = "messaging.batch.message_count"
_CLIENT_ID = "messaging.client.id"
RUN_ID = "pgqrs.workflow.run_id"
STEP_NAME = "pgqrs.step.name"
ATTEMPT = "pgqrs.step.attempt"

# What a workflow step raises to wait, not because it failed (semantics.md §12).
_WAITS = (PausedError, StepNotReadyError, WorkflowCancelledError)

_OFF: contextlib.nullcontext[None] = contextlib.nullcontext()


def _tracer() -> Tracer | None:
    """pgqrs's tracer, or None while no tracer provider is configured (the API's proxy is
    the global one): spans would record nothing. A provider, once set, stays."""
    global _TRACER, _next_check
    if _TRACER is not None or not ENABLED:
        return _TRACER
    now = time.monotonic()
    if now < _next_check:
        return None
    _next_check = now + _RECHECK_SECONDS
    provider = _trace.get_tracer_provider()
    if isinstance(provider, _trace.ProxyTracerProvider):
        return None
    _TRACER = provider.get_tracer("pgqrs", __version__)
    return _TRACER


def _attributes(operation: str, queue: str, count: int, worker_id: int | None) -> dict[str, Any]:
    found: dict[str, Any] = {
        _SYSTEM: SYSTEM,
        _OPERATION: operation,
        _OPERATION_TYPE: operation,
        _DESTINATION: queue,
    }
    if count != 1:  # the conventions set a batch's size, never a single message's
        found[_BATCH] = count
    if worker_id is not None:
        found[_CLIENT_ID] = str(worker_id)
    return found


def send(
    queue: str, count: int, worker_id: int | None = None
) -> contextlib.AbstractContextManager[Any]:
    """The span of one enqueue call of `count` messages, kind PRODUCER, current inside the
    block (so `carrier()` there is its context). Yields the span, or None when tracing is off."""
    tracer = _tracer()
    if tracer is None:
        return _OFF
    return tracer.start_as_current_span(
        f"send {queue}",
        kind=SpanKind.PRODUCER,
        attributes=_attributes("send", queue, count, worker_id),
    )


def sent(span: Any, ids: Sequence[int]) -> None:
    """After the insert: the id of a single message sent (batches keep only their size)."""
    if span is not None and len(ids) == 1 and span.is_recording():
        span.set_attribute(_MESSAGE_ID, str(ids[0]))


def carrier() -> str | None:
    """The current trace context as a message stores it; None when there is none to carry
    (tracing off, or no span current)."""
    if not ENABLED:
        return None
    if _tracer() is None and not _trace.get_current_span().get_span_context().is_valid:
        return None  # no provider and no incoming trace: nothing to carry
    headers: dict[str, str] = {}
    _propagate.inject(headers)
    return json.dumps(headers, separators=(",", ":"), sort_keys=True) if headers else None


def clock() -> int:
    """When a claim starts, for its span (`received`): nanoseconds since the epoch, the span
    clock, not the store's (claims are timed, never decided, by it)."""
    return time.time_ns() if ENABLED else 0


def received(
    queue: str, messages: Sequence[QueueMessage], started: int, worker_id: int | None = None
) -> None:
    """The span of a claim that took `messages`, kind CONSUMER, from `started` (`clock()`) to
    now, linked to each message's context. A claim that took nothing leaves no span: an idle
    poll loop would leave one per poll."""
    tracer = _tracer()
    if tracer is None or not messages:
        return
    attributes = _attributes("receive", queue, len(messages), worker_id)
    if len(messages) == 1:
        attributes[_MESSAGE_ID] = str(messages[0].id)
    span = tracer.start_span(
        f"receive {queue}",
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=_links(messages),
        start_time=started,
    )
    span.end()


def process(
    queue: str, messages: Sequence[QueueMessage], worker_id: int | None = None
) -> contextlib.AbstractContextManager[Any]:
    """The span of a handler run on `messages`, kind CONSUMER, current inside the block (a
    handler's own spans are its children). One message: the child of the context it carries
    (the producer's `send` span), so both are one trace. Several: a child of what is current,
    linked to each message's context.

    Without a tracer provider, a message's context still becomes the current one (the API's
    non-recording span, as any instrumented library leaves it) for the handler to pass on."""
    tracer = _tracer()
    if tracer is None:
        if not ENABLED or all(m.trace_context is None for m in messages):
            return _OFF
        tracer = _trace.get_tracer("pgqrs", __version__)
    attributes = _attributes("process", queue, len(messages), worker_id)
    parent = None
    links: list[Link] = []
    if len(messages) == 1:
        attributes[_MESSAGE_ID] = str(messages[0].id)
        parent = _extract(messages[0].trace_context)
    else:
        links = _links(messages)
    # A handler's error is recorded by `failed` (pgqrs settles it); what escapes the block
    # (a cancellation, a database error while settling) only marks the span an error.
    return tracer.start_as_current_span(
        f"process {queue}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=links,
        record_exception=False,
    )


def failed(error: BaseException) -> None:
    """The current span (a `process` span) ends in error: the handler raised `error`, which
    pgqrs settles instead of letting it through the span."""
    if not ENABLED:
        return
    span = _trace.get_current_span()
    if span.is_recording():
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def step(name: str, run_id: int, attempt: int) -> contextlib.AbstractContextManager[Any]:
    """The span of one execution of a workflow step's body, `pgqrs.step <name>`: an error
    unless the body raised to wait (a pause, a step not ready, a cancellation)."""
    tracer = _tracer()
    if tracer is None:
        return _OFF
    return _step(tracer, name, run_id, attempt)


@contextlib.contextmanager
def _step(tracer: Tracer, name: str, run_id: int, attempt: int) -> Iterator[Any]:
    attributes: dict[str, Any] = {RUN_ID: run_id, STEP_NAME: name, ATTEMPT: attempt}
    with tracer.start_as_current_span(
        f"pgqrs.step {name}",
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except _WAITS:
            raise
        except BaseException as err:
            if span.is_recording():
                span.record_exception(err)
                span.set_status(Status(StatusCode.ERROR, f"{type(err).__name__}: {err}"))
            raise


def _extract(stored: str | None) -> Any:
    """The context a message carries; None (the current context) for none, or for text that
    is not a carrier (another program's row must never stop its handling)."""
    if stored is None:
        return None
    try:
        headers = json.loads(stored)
    except ValueError:
        return None
    if not isinstance(headers, dict):
        return None
    return _propagate.extract({str(k): str(v) for k, v in headers.items()})


def _links(messages: Sequence[QueueMessage]) -> list[Link]:
    links = []
    for message in messages:
        found = _extract(message.trace_context)
        if found is None:
            continue
        context = _trace.get_current_span(found).get_span_context()
        if context.is_valid:
            links.append(Link(context, {_MESSAGE_ID: str(message.id)}))
    return links
