"""The builder that configures a consumer's poll loop or a one-shot claim. `pgqrs.dequeue()`
gives `pgqrs.DequeueBuilder`, this builder with workflow runs as handlers too (its
`handle_workflow` settler lives in the workflows layer, above this one)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NoReturn, Self

from .._clock import Time, parse_time
from ..errors import StateTransitionError, ValidationError
from ..store.wakeup import queue_key, worker_key
from ..tables import workers as rows
from ..tables.workers import STOPPED
from ..types import QueueMessage
from ..validation import (
    check_batch_size,
    check_builder_batch,
    check_builder_poll_interval,
    check_builder_seconds,
    require_callable,
    require_type,
)
from .loop import Handler, LoopSettings, MessageSettler, Runner, Settler, finish_ephemeral
from .workers import Consumer

if TYPE_CHECKING:
    from ..tables.context import Context

_ONE_HANDLER = "exactly one of handle(), handle_batch() or handle_workflow() is required"


_HANDLER = "handler must be callable, got {type.__name__}"


class BaseDequeueBuilder:
    """Setters change the builder in place and return it; `poll`, `fetch`, `execute` run it."""

    def __init__(self) -> None:
        self._consumer: Consumer | None = None
        self._queue: str | None = None
        self._batch = 1
        self._poll_interval_ms: int | None = None
        self._at: Any = None
        self._lease: float | None = None
        self._until: float | None = None
        self._handle: Handler | None = None
        self._handle_batch: Handler | None = None
        self._handle_workflow: Handler | None = None

    # -- setters -----------------------------------------------------------------------------
    def worker(self, consumer: Consumer) -> Self:
        self._consumer = require_type(
            consumer, Consumer, "worker() needs a pgqrs.Consumer, got {type.__name__}"
        )
        return self

    def from_queue(self, queue: str) -> Self:
        self._queue = require_type(
            queue, str, "from_queue() needs a queue name, got {type.__name__}"
        )
        return self

    def batch(self, size: int) -> Self:
        self._batch = max(1, check_builder_batch(size))
        return self

    def poll_interval(self, interval_ms: int) -> Self:
        self._poll_interval_ms = check_builder_poll_interval(interval_ms)
        return self

    def at(self, time: Time) -> Self:
        self._at = parse_time(time)
        return self

    def lease(self, seconds: float) -> Self:
        self._lease = check_builder_seconds("lease", seconds, allow_zero=False)
        return self

    with_vt = lease

    def until(self, seconds: float) -> Self:
        self._until = check_builder_seconds("until", seconds, allow_zero=True)
        return self

    def handle(self, fn: Handler) -> Self:
        self._handle = require_callable(fn, _HANDLER)
        return self

    def handle_batch(self, fn: Handler) -> Self:
        self._handle_batch = require_callable(fn, _HANDLER)
        return self

    def handle_workflow(self, fn: Handler) -> Self:
        self._handle_workflow = require_callable(fn, _HANDLER)
        return self

    # -- read-back ---------------------------------------------------------------------------
    @property
    def queue(self) -> str | None:
        return self._queue

    @property
    def batch_size(self) -> int:
        return self._batch

    @property
    def poll_interval_ms(self) -> int | None:
        return self._poll_interval_ms

    @property
    def lease_seconds(self) -> float | None:
        return self._lease

    def has_worker(self) -> bool:
        return self._consumer is not None

    def __repr__(self) -> str:
        target = f"worker={self._consumer!r}" if self._consumer else f"queue={self._queue!r}"
        return f"<pgqrs.DequeueBuilder {target} batch={self._batch}>"

    # -- runners -----------------------------------------------------------------------------
    async def poll(self, store: Context) -> NoReturn:
        """Run the poll loop until interrupted, suspended, stopped or cancelled
        (semantics.md §10.1)."""
        settler = self._check(store, "poll")
        runner = await self._runner(store, settler)
        await runner.poll()

    async def fetch(self, store: Context) -> list[QueueMessage]:
        """Claim once for the caller's consumer, without a handler (semantics.md §10.5)."""
        self._check(store, "fetch")
        runner = await self._runner(store, None)
        return await self._claim_once(runner)

    async def execute(self, store: Context) -> int:
        """Claim once and handle what was claimed; the number of messages claimed."""
        settler = self._check(store, "execute")
        runner = await self._runner(store, settler)
        try:
            claimed = await self._claim_once(runner)
            if claimed:
                async with runner.heartbeats():
                    await runner.handle(claimed)
            return len(claimed)
        finally:
            runner.close_thread()
            if runner.ephemeral:
                await finish_ephemeral(store, runner.consumer)

    # -- internals ---------------------------------------------------------------------------
    def _check(self, store: Context, runner: str) -> Settler | None:
        """The start-of-run checks of api.md §8, in order, before any storage access."""
        handlers = [h for h in (self._handle, self._handle_batch, self._handle_workflow) if h]
        if runner == "fetch":
            if handlers:
                raise ValueError("fetch() claims without a handler; use execute() to handle")
        elif len(handlers) != 1:
            raise ValueError(_ONE_HANDLER)
        if self._consumer is None and self._queue is None:
            raise ValueError(
                'Queue name is required. Use .from_queue("queue-name") or .worker(consumer)'
            )
        if runner == "fetch" and self._consumer is None:
            raise ValueError(
                "fetch() needs .worker(consumer): claimed messages need an owner you hold"
            )
        if self._handle is not None and self._batch > 1:
            raise ValidationError(
                "Validation failed: single-message handlers require batch size = 1, "
                f"got {self._batch}"
            )
        check_batch_size(self._batch, store.settings.default_max_batch_size)
        if runner == "poll" and self._until is not None:
            raise ValueError("until() bounds fetch() and execute(); poll() runs until stopped")
        reraise = runner == "execute"
        if self._handle is not None:
            return MessageSettler(self._handle, batch=False, reraise=reraise)
        if self._handle_batch is not None:
            return MessageSettler(self._handle_batch, batch=True, reraise=reraise)
        if self._handle_workflow is not None:
            return self._workflow_settler(self._handle_workflow, reraise=reraise)
        return None

    def _workflow_settler(self, fn: Handler, *, reraise: bool) -> Settler:
        """How workflow runs are settled: `pgqrs.DequeueBuilder` says (workflows layer)."""
        raise NotImplementedError("handle_workflow() needs pgqrs.DequeueBuilder")

    async def _runner(self, store: Context, settler: Settler | None) -> Runner:
        config = store.settings
        settings = LoopSettings(
            batch=self._batch,
            lease=self._lease or float(config.default_lock_time_seconds),
            poll_interval=(self._poll_interval_ms or config.poll_interval_ms) / 1000,
            heartbeat=float(config.heartbeat_interval_seconds),
            at=self._at,
        )
        if self._consumer is not None:
            return Runner(store, self._consumer, settings, settler, ephemeral=False)
        assert self._queue is not None
        consumer = await Consumer._register_ephemeral(store, self._queue)
        return Runner(store, consumer, settings, settler, ephemeral=True)

    async def _claim_once(self, runner: Runner) -> list[QueueMessage]:
        """Check the status as a loop start would (without changing it), then claim; with
        `until(s)`, keep trying every poll interval for up to `s` seconds."""
        store, consumer = runner.store, runner.consumer
        status = await rows.status(store.db, consumer.worker_id)
        if status == STOPPED:
            raise StateTransitionError(
                "Invalid state transition from stopped to polling: "
                "Worker must be Ready to start polling"
            )
        await runner.refuse_unless_ready(status, raise_stopped=True)
        deadline = time.monotonic() + (self._until or 0.0)
        keys = (queue_key(consumer.queue_id or 0), worker_key(consumer.worker_id))
        while True:
            mark = store.wakeups.mark(keys)
            claimed = await runner.claim()
            remaining = deadline - time.monotonic()
            if claimed or self._until is None or remaining <= 0:
                return claimed
            wait = min(runner.settings.poll_interval, remaining)
            await store.wakeups.wait(keys, wait, since=mark)
