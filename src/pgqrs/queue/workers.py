"""Producers, consumers and worker handles: every one is a row in `pgqrs_workers`.

The lifecycle (semantics.md §9.1) is shared; producers add enqueueing, consumers add claiming and
settling. Settling calls ignore the worker's status (semantics.md §9.4) and are fenced by
ownership (semantics.md §7.4) and by the registration the handle belongs to
(docs/guarantees.md, "Leases and fencing").

A cancelled registration or claim never leaves work behind: it runs to its end and is undone
(the worker stopped, the messages given back) before the cancellation is raised (`_cancel`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self, overload

from .. import tracing
from .._cancel import complete
from .._clock import Time, parse_time
from ..errors import StateTransitionError, SuspendedError
from ..rate_limit import TokenBucket
from ..records import EnqueuedId
from ..store.borrowed import borrow
from ..store.executor import Queryable
from ..store.sql.messages import Limited
from ..store.wakeup import queue_key, worker_key
from ..tables import limits as limit_rows
from ..tables import messages, queues
from ..tables import workers as rows
from ..tables.workers import INTERRUPTED, POLLING, READY, STOPPED, SUSPENDED
from ..types import QueueInfo, QueueMessage, WorkerInfo, WorkerStatus
from ..validation import (
    PLAIN,
    EnqueueOptions,
    PayloadRules,
    check_batch_size,
    check_dedup_key,
    check_lease,
    check_message_id,
    check_payload_list,
    encode_payloads,
    enqueue_options,
    require_duration,
    validate_queue_name,
    validate_worker_name,
)

if TYPE_CHECKING:
    from ..tables.context import Context


class _Worker:
    """The lifecycle every worker kind shares."""

    _store: Context
    _info: WorkerInfo
    _fence: int
    _queue_name = ""  # the queue's name when registered by it (spans name it; pgqrs.tracing)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kind = type(self).__name__
        raise RuntimeError(f"Direct {kind} creation is disabled. Use store.{kind.lower()}(queue).")

    @classmethod
    def _wrap(cls, store: Context, info: WorkerInfo, fence: int | None = None) -> Self:
        worker = object.__new__(cls)
        worker._store = store
        worker._info = info
        worker._fence = fence  # type: ignore[assignment]  # None: an admin handle
        return worker

    @classmethod
    async def _register(cls, store: Context, queue: str, name: str | None) -> Self:
        worker_name = rows.generated_name() if name is None else validate_worker_name(name)
        return await cls._create(store, queue, worker_name)

    @classmethod
    async def _register_ephemeral(cls, store: Context, queue: str) -> Self:
        """A worker that lives for one call (helpers, `from_queue` runners); semantics.md §9.5."""
        return await cls._create(store, queue, rows.ephemeral_name())

    @classmethod
    async def _create(cls, store: Context, queue: str, worker_name: str) -> Self:
        validate_queue_name(queue)
        fence = rows.new_fence()

        async def register() -> WorkerInfo:
            async with store.db.transaction() as db:
                info = await queues.get_by_name(db, queue)
                return await rows.register(db, info.id, worker_name, store.sql_now(), fence)

        async def unregister(info: WorkerInfo) -> None:
            # A cancelled registration leaves no live worker behind (its name stays free).
            await rows.mark_stopped(store.db, info.id, store.sql_now(), fence=fence)

        worker = cls._wrap(store, await complete(register(), unregister), fence)
        worker._queue_name = queue
        return worker

    @property
    def worker_id(self) -> int:
        return self._info.id

    @property
    def owner(self) -> rows.Owner:
        """This registration of the worker, as claims and settles are fenced by."""
        return rows.Owner(self._info.id, self._fence)

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def queue_id(self) -> int | None:
        return self._info.queue_id

    def __repr__(self) -> str:
        return f"<pgqrs.{type(self).__name__} id={self.worker_id} name={self.name!r}>"

    async def status(self) -> WorkerStatus:
        return await rows.status(self._store.db, self.worker_id, self._fence)

    async def suspend(self) -> None:
        await self._move(
            SUSPENDED,
            (READY, POLLING, INTERRUPTED),
            "Worker must be Ready, Polling, or Interrupted to suspend",
        )

    async def resume(self) -> None:
        await self._move(READY, (SUSPENDED,), "Worker must be in Suspended state to resume")

    async def shutdown(self) -> None:
        await self._shutdown(release=False)

    async def heartbeat(self) -> None:
        await rows.heartbeat(self._store.db, self.worker_id, self._store.sql_now(), self._fence)

    async def is_healthy(self, max_age_seconds: float) -> bool:
        require_duration("max_age_seconds", max_age_seconds)
        info = await rows.get(self._store.db, self.worker_id)
        if info.status == STOPPED or await self.status() == STOPPED:
            return False
        age = self._store.clock.now() - parse_time(info.heartbeat_at)
        return age.total_seconds() <= max_age_seconds

    async def _move(self, to: WorkerStatus, allowed: tuple[WorkerStatus, ...], reason: str) -> None:
        await rows.transition(
            self._store.db, self.worker_id, to, allowed, reason, fence=self._fence
        )
        self._store.wakeups.notify(worker_key(self.worker_id))

    async def _shutdown(self, *, release: bool) -> None:
        store = self._store
        now = store.sql_now()
        async with store.db.transaction() as db:
            current = await rows.status(db, self.worker_id, self._fence)
            if current not in (READY, SUSPENDED):
                raise StateTransitionError(
                    f"Invalid state transition from {current.db} to stopped: "
                    "Worker must be Ready or Suspended to shutdown"
                )
            if release:
                await messages.release_worker(db, self.worker_id, now)
            else:
                held = await rows.held_count(db, self.worker_id)
                if held:
                    raise StateTransitionError(
                        f"Worker has {held} pending messages: Consumer has {held} pending messages"
                    )
            await rows.transition(
                db,
                self.worker_id,
                STOPPED,
                (READY, SUSPENDED),
                "Worker must be Ready or Suspended to shutdown",
                now=now,
                fence=self._fence,
            )
        store.wakeups.notify(worker_key(self.worker_id))


class _Interruptible(_Worker):
    async def interrupt(self) -> None:
        """Ask the worker's poll loop to stop; it ends with `SuspendedError` once it notices.

        Allowed from `ready` too, so a poll task that was created but has not started yet can
        be interrupted (it then suspends at its start).
        """
        await self._move(
            INTERRUPTED,
            (READY, POLLING, INTERRUPTED),
            "Worker must be Ready or Polling to be interrupted",
        )

    async def shutdown(self, release: bool = False) -> None:
        await self._shutdown(release=release)


# How long a producer applies the payload limits it read from its queue before it reads them
# again (semantics.md §7.6; docs/decisions.md, "Features (issue 12)").
LIMITS_REFRESH = timedelta(seconds=5)


class Producer(_Worker):
    """Enqueues messages on one queue."""

    _rules: PayloadRules
    _rules_read_at: datetime | None  # the store clock's time when they were read; None: never
    _bucket: TokenBucket | None
    # The store clock's time of the last beat this producer wrote (semantics.md §9.3).
    _beat_at: datetime
    # False: a producer of one call, with no worker row; its messages name no producer.
    _has_row: bool

    @classmethod
    def _wrap(cls, store: Context, info: WorkerInfo, fence: int | None = None) -> Self:
        producer = super()._wrap(store, info, fence)
        config = store.settings
        producer._rules = PayloadRules.from_config(config)
        producer._rules_read_at = None
        rate = config.max_enqueue_per_second
        producer._bucket = None if rate is None else TokenBucket(rate, config.max_enqueue_burst)
        producer._beat_at = store.clock.now()
        producer._has_row = True
        return producer

    @classmethod
    def _without_row(cls, store: Context, queue: QueueInfo) -> Self:
        """A producer that writes no worker row: its messages have `producer_worker_id` NULL
        (semantics.md §9.5). Internal: one-shot calls and `pgqrs.sync`'s shared producers."""
        now = store.clock.now().isoformat()
        producer = cls._wrap(store, WorkerInfo(0, "", READY, queue.id, now, now, None))
        producer._has_row = False
        producer._queue_name = queue.queue_name
        return producer

    async def _beat_if_due(self) -> None:
        """Beat before an enqueue once the last beat is a heartbeat interval old by the
        store's clock: a producer that sends is never silent for longer than that, at one
        extra statement per interval (semantics.md §9.3). A clock that went back restarts the
        interval instead of beating: a beat must never move `heartbeat_at` backwards."""
        if not self._has_row or self._fence is None:
            return
        store = self._store
        now = store.clock.now()
        interval = timedelta(seconds=store.settings.heartbeat_interval_seconds)
        if now < self._beat_at:
            self._beat_at = now
            return
        if now - self._beat_at < interval:
            return
        self._info = await rows.producer_beat(store.db, self._info, self._fence, store.sql_now())
        self._beat_at = now

    async def _payload_rules(self) -> PayloadRules:
        """The rules the next enqueue applies: the queue's own limits, else Config's. Read at
        the first enqueue, then again once they are LIMITS_REFRESH old by the store's clock
        (or that clock went back), so a change reaches a running producer within that time."""
        now = self._store.clock.now()
        read_at = self._rules_read_at
        if read_at is None or not timedelta(0) <= now - read_at < LIMITS_REFRESH:
            assert self.queue_id is not None
            found = await queues.settings(self._store.db, self.queue_id)
            self._use_rules(PayloadRules.for_queue(self._store.settings, found), now)
        return self._rules

    def _use_rules(self, rules: PayloadRules, read_at: datetime) -> None:
        self._rules = rules
        self._rules_read_at = read_at

    # The plain calls keep pgqrs's return types (`int`, `list[int]`); with a key the ids are
    # typed `EnqueuedId` too. At run time every id is an `EnqueuedId` (an int).
    @overload
    async def enqueue(
        self,
        payload: Any,
        *,
        priority: int = 0,
        dedup_key: None = None,
        dedup_window_seconds: None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> int: ...

    @overload
    async def enqueue(
        self,
        payload: Any,
        *,
        priority: int = 0,
        dedup_key: str,
        dedup_window_seconds: float | None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> EnqueuedId: ...

    async def enqueue(
        self,
        payload: Any,
        *,
        priority: int = 0,
        dedup_key: str | None = None,
        dedup_window_seconds: float | None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> int:
        """Enqueue one payload; `priority`, `dedup_key` and its window are beyond pgqrs
        (semantics.md §7.2, §7.8)."""
        options = enqueue_options(
            priority, dedup_key, dedup_window_seconds, 1, batch=False, key=key
        )
        return (await self._insert([payload], 0.0, options, batch=False, connection=connection))[0]

    @overload
    async def enqueue_delayed(
        self,
        payload: Any,
        delay_seconds: float,
        *,
        priority: int = 0,
        dedup_key: None = None,
        dedup_window_seconds: None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> int: ...

    @overload
    async def enqueue_delayed(
        self,
        payload: Any,
        delay_seconds: float,
        *,
        priority: int = 0,
        dedup_key: str,
        dedup_window_seconds: float | None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> EnqueuedId: ...

    async def enqueue_delayed(
        self,
        payload: Any,
        delay_seconds: float,
        *,
        priority: int = 0,
        dedup_key: str | None = None,
        dedup_window_seconds: float | None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> int:
        require_duration("delay_seconds", delay_seconds)
        options = enqueue_options(
            priority, dedup_key, dedup_window_seconds, 1, batch=False, key=key
        )
        delay = float(delay_seconds)
        return (await self._insert([payload], delay, options, batch=False, connection=connection))[
            0
        ]

    @overload
    async def enqueue_batch(
        self,
        payloads: list[Any],
        *,
        priority: int = 0,
        dedup_keys: None = None,
        dedup_window_seconds: None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> list[int]: ...

    @overload
    async def enqueue_batch(
        self,
        payloads: list[Any],
        *,
        priority: int = 0,
        dedup_keys: Sequence[str | None],
        dedup_window_seconds: float | None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> list[EnqueuedId]: ...

    async def enqueue_batch(
        self,
        payloads: list[Any],
        *,
        priority: int = 0,
        dedup_keys: Sequence[str | None] | None = None,
        dedup_window_seconds: float | None = None,
        key: str | None = None,
        connection: object | None = None,
    ) -> list[int] | list[EnqueuedId]:
        """Enqueue payloads in order, one priority for all; `dedup_keys` has one key (or None)
        per payload, and a key met twice in the batch is enqueued once (the first wins)."""
        check_payload_list(payloads)
        options = enqueue_options(
            priority, dedup_keys, dedup_window_seconds, len(payloads), batch=True, key=key
        )
        if not payloads:
            return []
        return await self._insert(payloads, 0.0, options, batch=True, connection=connection)

    async def _insert(
        self,
        payloads: Sequence[Any],
        delay: float,
        options: EnqueueOptions,
        *,
        batch: bool,
        connection: object | None = None,
    ) -> list[EnqueuedId]:
        # A connection that cannot be used is refused before anything else (semantics.md §7.7).
        db = None if connection is None else await borrow(connection, self._store.db)
        texts = encode_payloads(payloads, await self._payload_rules(), batch=batch)
        if self._bucket is not None:
            self._bucket.take(len(texts))
        return await self.write(texts, delay, options, db=db)

    async def write(
        self,
        texts: Sequence[str],
        delay: float = 0.0,
        options: EnqueueOptions = PLAIN,
        *,
        db: Queryable | None = None,
    ) -> list[EnqueuedId]:
        """Insert payloads already validated and paid for (stored JSON texts), with options
        already checked (`validation.enqueue_options`), on the store or on `db` (a connection
        the application holds, which wakes nobody in-process: it may roll back)."""
        queue_id = self.queue_id
        assert queue_id is not None
        await self._beat_if_due()
        writer = self.worker_id if self._has_row else None
        return await write_messages(
            self._store, queue_id, writer, texts, delay, options, db, self._queue_name
        )

    async def cancel(self, message_id: int) -> bool:
        """Cancel a queued message of this producer's queue (semantics.md §7.9): True when
        this call cancelled it, False when it was archived already. `MessageLeasedError` while
        a consumer holds it under a running lease; `ValidationError` for a workflow trigger;
        `MessageNotFoundError` for an id not in the queue."""
        mid = check_message_id(message_id)
        store = self._store
        assert self.queue_id is not None
        return await messages.cancel(store.db, self.queue_id, store.sql_now(), message_id=mid)

    async def cancel_key(self, dedup_key: str) -> bool:
        """Cancel the unarchived message of this queue holding `dedup_key`; False when there is
        none (or it is archived already). Leases and triggers as `cancel`."""
        key = check_dedup_key(dedup_key)
        store = self._store
        assert self.queue_id is not None
        return await messages.cancel(store.db, self.queue_id, store.sql_now(), key=key)


async def write_messages(
    store: Context,
    queue_id: int,
    worker_id: int | None,
    texts: Sequence[str],
    delay: float,
    options: EnqueueOptions,
    db: Queryable | None = None,
    queue: str = "",
) -> list[EnqueuedId]:
    """Insert stored JSON texts on `queue_id` with checked options, on the store's executor (and
    wake the idle loops of this process) or on `db`, a borrowed connection (which may roll back:
    no in-process wake-up; on PostgreSQL the statement's NOTIFY goes out at its commit).
    Inside a `send <queue>` span, whose context the messages carry (pgqrs.tracing)."""
    with tracing.send(queue or str(queue_id), len(texts), worker_id) as span:
        ids = await _insert_messages(store, queue_id, worker_id, texts, delay, options, db)
        tracing.sent(span, ids)
    return ids


async def _insert_messages(
    store: Context,
    queue_id: int,
    worker_id: int | None,
    texts: Sequence[str],
    delay: float,
    options: EnqueueOptions,
    db: Queryable | None,
) -> list[EnqueuedId]:
    target = store.db if db is None else db
    now = store.sql_now()
    if options.keys is None:
        plain = await messages.enqueue(
            target, queue_id, worker_id, texts, now, delay, options.priority, options.limit_key
        )
        ids = [EnqueuedId(i) for i in plain]
    else:
        ids = await messages.enqueue_keyed(
            target,
            queue_id,
            worker_id,
            texts,
            options.keys,
            now,
            delay_seconds=delay,
            priority=options.priority,
            window=options.window,
            limit_key=options.limit_key,
        )
    if db is None and not all(i.duplicate for i in ids):
        store.wakeups.notify(queue_key(queue_id))
    return ids


async def producer_without_row(
    store: Context, queue: str, rules: PayloadRules | None = None
) -> Producer:
    """A producer for one call, with no worker row: nothing to register or stop, and its
    messages name no producer (semantics.md §9.5). `rules`: the queue's rules, just read by
    the caller (`queue_rules`), so that its enqueues do not read them again."""
    read_at = store.clock.now()
    validate_queue_name(queue)
    producer = Producer._without_row(store, await queues.get_by_name(store.db, queue))
    if rules is not None:
        producer._use_rules(rules, read_at)
    return producer


async def queue_rules(store: Context, queue: str) -> PayloadRules:
    """The payload rules a producer of `queue` applies now: the queue's own limits, else the
    store's Config (semantics.md §7.6); QueueNotFoundError for a missing queue."""
    validate_queue_name(queue)
    found = await queues.settings_by_name(store.db, queue)
    return PayloadRules.for_queue(store.settings, found)


def prepare_payloads(
    store: Context, payloads: Sequence[Any], *, batch: bool, rules: PayloadRules
) -> list[str]:
    """Validate payloads for a producer that does not exist yet (one call of a helper), under
    `rules` (`queue_rules` of its queue).

    Everything that can refuse the call happens here, before the ephemeral worker is written:
    encoding, payload rules, and the burst limit of the fresh token bucket it would get.
    """
    config = store.settings
    texts = encode_payloads(payloads, rules, batch=batch)
    if config.max_enqueue_per_second is not None:
        TokenBucket(config.max_enqueue_per_second, config.max_enqueue_burst).take(len(texts))
    return texts


class Consumer(_Interruptible):
    """Claims messages from one queue under a lease, then settles them."""

    # Which limits the queue has (its claims then keep them, semantics.md §7.10), as read at
    # `_limits_read_at` by the store's clock; read again once LIMITS_REFRESH old.
    _limited: Limited = None
    _limits_read_at: datetime | None = None

    async def limited(self) -> Limited:
        """Which limits the queue had when last read (at most LIMITS_REFRESH ago): None, its
        own only ("queue"), or its keys' too ("keys")."""
        now = self._store.clock.now()
        read_at = self._limits_read_at
        if read_at is None or not timedelta(0) <= now - read_at < LIMITS_REFRESH:
            assert self.queue_id is not None
            self._limited = await limit_rows.present(self._store.db, self.queue_id)
            self._limits_read_at = now
        return self._limited

    async def throttled_for(self) -> tuple[float, bool] | None:
        """After a limited claim took nothing: how long until an empty token bucket allows a
        claim (seconds, the soonest), and whether that bucket is the queue's own (then no new
        message can be claimed sooner either); None when no bucket is empty, or the queue had
        no limits when last read (then nothing is read now)."""
        if self._limited is None:
            return None
        store = self._store
        assert self.queue_id is not None
        limits = await limit_rows.usage(store.db, self.queue_id, "", store.sql_now())
        waits = [
            (wait, info.key is None)
            for info in limits
            if (wait := info.seconds_to_next_token) is not None and wait > 0
        ]
        if not waits:
            return None
        queue_empty = [w for w in waits if w[1]]
        return min(queue_empty) if queue_empty else min(waits)

    async def dequeue(self, batch_size: int | None = None) -> list[QueueMessage]:
        limit = self._store.settings.default_max_batch_size
        size = 1 if batch_size is None else check_batch_size(batch_size, limit)
        lease = self._store.settings.default_lock_time_seconds
        return await self.claim(size, lease, self._store.sql_now())

    async def dequeue_many_with_delay(self, limit: int, vt: int) -> list[QueueMessage]:
        size = check_batch_size(limit, self._store.settings.default_max_batch_size, "limit")
        lease = check_lease(vt)
        return await self.claim(size, lease, self._store.sql_now())

    async def dequeue_at(self, limit: int, vt: int, current_time: Time) -> list[QueueMessage]:
        size = check_batch_size(limit, self._store.settings.default_max_batch_size, "limit")
        lease = check_lease(vt)
        now = parse_time(current_time)
        return await self.claim(size, lease, now)

    async def _refuse_if_suspended(self) -> None:
        """A suspended consumer takes no new work, by hand or in a loop; settling what it
        already holds stays allowed (docs/decisions.md, "Workers and operations"). A handle of
        an earlier registration takes nothing either."""
        row = await self._store.db.fetchone(
            self._store.db.sql.WORKER_STATUS, {"id": self.worker_id}
        )
        if row is not None and self._fence is not None and row[1] != self._fence:
            raise rows.superseded(self.worker_id)
        if row is not None and row[0] == SUSPENDED.db:
            reason = "worker suspended"
            raise SuspendedError(f"Operation suspended: {reason}", reason=reason)

    async def claim(self, limit: int, lease: float, now: datetime | None) -> list[QueueMessage]:
        """Lease up to `limit` visible messages at `now` (None: the database's clock);
        arguments already checked. Cancelled, it gives back whatever it took."""
        store = self._store
        queue_id = self.queue_id
        assert queue_id is not None
        owner = self.owner

        async def take() -> list[QueueMessage]:
            claimed = await messages.claim(
                store.db,
                queue_id,
                owner,
                limit,
                lease,
                now,
                store.settings.max_read_ct,
                limits=await self.limited(),
            )
            return await store.messages.read(store.db, claimed) if claimed else []

        started = tracing.clock()
        taken = await complete(take(), self.give_back)
        tracing.received(self._queue_name or str(queue_id), taken, started, self.worker_id)
        if not taken:
            # The claim takes nothing for a suspended worker; only then is the status worth a
            # read, to say why.
            await self._refuse_if_suspended()
        return taken

    async def give_back(self, claimed: Sequence[QueueMessage]) -> None:
        """Return messages this consumer claimed but never handed to anyone: visible again at
        once, and the claim does not count towards max_read_ct."""
        if claimed:
            ids = [m.id for m in claimed]
            store = self._store
            if await messages.give_back(store.db, ids, self.owner, store.sql_now()):
                assert self.queue_id is not None
                store.wakeups.notify(queue_key(self.queue_id))

    async def extend_vt(self, message_id: int, seconds: float) -> bool:
        extra = require_duration("seconds", seconds)
        store = self._store
        return await messages.extend(store.db, message_id, self.owner, extra, store.sql_now())

    async def archive(self, message_id: int) -> bool:
        return (await self.archive_many([message_id]))[0]

    async def archive_many(self, message_ids: list[int]) -> list[bool]:
        return await self.archive_at(message_ids, self._store.sql_now())

    async def archive_at(self, message_ids: Sequence[int], now: datetime | None) -> list[bool]:
        if not message_ids:
            return []
        done = await messages.archive(self._store.db, message_ids, self.owner, now)
        return [mid in done for mid in message_ids]

    async def delete(self, message_id: int) -> bool:
        return (await self.delete_many([message_id]))[0]

    async def delete_many(self, message_ids: list[int]) -> list[bool]:
        if not message_ids:
            return []
        async with self._store.db.transaction() as db:
            done = await messages.delete(db, message_ids, self.owner)
        return [mid in done for mid in message_ids]

    async def release_messages(self, message_ids: list[int]) -> int:
        return len(await self.release_at(message_ids, self._store.sql_now()))

    async def release_with_visibility(self, message_id: int, visible_at: Time) -> bool:
        return message_id in await self.release_at([message_id], parse_time(visible_at))

    async def release_at(
        self, message_ids: Sequence[int], visible_at: datetime | None, delay: float = 0.0
    ) -> set[int]:
        """Give the messages back, visible again `delay` seconds after `visible_at` (None: the
        database's clock); the ids released."""
        if not message_ids:
            return set()
        released = await messages.release(
            self._store.db, message_ids, self.owner, visible_at, delay
        )
        if released and self.queue_id is not None:
            self._store.wakeups.notify(queue_key(self.queue_id))
        return released


class WorkerHandle(_Interruptible):
    """Any worker, looked up by id (`store.worker(id)`)."""

    @classmethod
    async def _load(cls, store: Context, worker_id: int) -> WorkerHandle:
        return cls._wrap(store, await rows.get(store.db, worker_id))

    async def info(self) -> WorkerInfo:
        return await rows.get(self._store.db, self.worker_id)
