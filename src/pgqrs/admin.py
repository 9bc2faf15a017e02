"""`Admin`: the schema, queues, metrics and health, recovery of dead workers' messages, dead
letters and cleanup (api.md §4). Admin calls never register workers; arguments are checked
before any storage access; the work itself is in `pgqrs.tables` and `pgqrs.queue.recovery`."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from ._clock import Time, seconds
from .cron import Cron
from .errors import NotFoundError, ValidationError
from .queue.recovery import _queue_ids, reclaim_stale
from .records import (
    DeadLetter,
    LimitInfo,
    MessageError,
    QueueSettings,
    RestartedRun,
    RunTimeline,
    ScheduleInfo,
)
from .store import migrate
from .store.wakeup import queue_key, run_key
from .tables import cleanup, failures, introspection, messages, metrics, queues, recovery, runs
from .tables import limits as limit_rows
from .tables import restart as run_restart
from .tables import schedules as schedule_rows
from .tables import workers as worker_rows
from .tables import workflows as workflow_rows
from .types import (
    QueueInfo,
    QueueMessage,
    QueueMetrics,
    RunRecord,
    SystemStats,
    WorkerHealthStats,
    WorkerInfo,
    WorkflowStatus,
)
from .validation import (
    Limits,
    check_dedup_key,
    check_limit_key,
    check_limits,
    check_message_id,
    check_queue_limits,
    require_duration,
    require_int,
    validate_queue_name,
)
from .validation.encoding import encode_json
from .validation.payloads import PayloadRules, encode_payloads
from .validation.runs import WorkflowNames, check_from_step, check_run_filter, check_run_id
from .validation.schedules import check_catch_up, check_schedule_name, check_target
from .workflows.builders import create_workflow
from .workflows.triggers import trigger_payload, trigger_rules

if TYPE_CHECKING:
    from .client import Store
    from .workflows.run import Run


class _Keep(enum.Enum):
    """`update_queue`'s default: leave the setting as it is (None means "back to Config")."""

    KEEP = "keep"

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep.KEEP

# `list_runs`'s status filter: one status, several, or None for any (a name in any case).
RunStatuses = WorkflowStatus | str | Sequence[WorkflowStatus | str] | None


class Admin:
    """Schema, queues, metrics and health, recovery, dead letters and cleanup."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store

    def __repr__(self) -> str:
        return f"<pgqrs.Admin store={self._store!r}>"

    async def install(self) -> None:
        """Apply pending migrations; idempotent, and safe from several processes at once."""
        await self._store.db.install()

    async def verify(self) -> None:
        await migrate.verify(self._store.db)

    async def create_queue(
        self,
        name: str,
        exist_ok: bool = False,
        *,
        max_read_ct: int | None = None,
        max_payload_size_bytes: int | None = None,
        max_string_length: int | None = None,
        max_object_depth: int | None = None,
    ) -> QueueInfo:
        """Create a queue. `max_read_ct` (default: this store's Config.max_read_ct) is stored
        with it: every process that touches the queue makes dead letters at the same count.
        The payload limits (default None: each producer's Config value) are stored with it
        too, and every producer of the queue applies them (semantics.md §7.6)."""
        validate_queue_name(name)
        limit = self._store.settings.max_read_ct
        if max_read_ct is not None:
            limit = require_int("max_read_ct", max_read_ct, 1)
        limits = check_queue_limits(
            {
                "max_payload_size_bytes": max_payload_size_bytes,
                "max_string_length": max_string_length,
                "max_object_depth": max_object_depth,
            }
        )
        store = self._store
        return await queues.create(
            store.db, name, store.clock.now(), exist_ok=exist_ok, max_read_ct=limit, limits=limits
        )

    async def queue_settings(self, name: str) -> QueueSettings:
        """What the queue decides for every process: its poison threshold and its own payload
        limits (None: each process's Config value)."""
        validate_queue_name(name)
        return await queues.settings_by_name(self._store.db, name)

    async def update_queue(
        self,
        name: str,
        *,
        max_read_ct: int | _Keep = KEEP,
        max_payload_size_bytes: int | _Keep | None = KEEP,
        max_string_length: int | _Keep | None = KEEP,
        max_object_depth: int | _Keep | None = KEEP,
    ) -> QueueSettings:
        """Change the settings given, for every process; the others stay. The poison
        threshold counts from each process's next claim, payload limits from each producer's
        next refresh (semantics.md §7.6); a limit set to None goes back to each producer's
        Config value."""
        changes: dict[str, int | None] = {}
        if not isinstance(max_read_ct, _Keep):
            changes["max_read_ct"] = require_int("max_read_ct", max_read_ct, 1)
        given = {
            "max_payload_size_bytes": max_payload_size_bytes,
            "max_string_length": max_string_length,
            "max_object_depth": max_object_depth,
        }
        changes.update(
            check_queue_limits({k: v for k, v in given.items() if not isinstance(v, _Keep)})
        )
        if not changes:
            raise ValidationError(
                "Validation failed: nothing to update: give max_read_ct, "
                "max_payload_size_bytes, max_string_length or max_object_depth"
            )
        info = await self.get_queue(name)
        return await queues.update_settings(self._store.db, info.id, changes)

    # -- limits (issue 13; semantics.md §7.10) -------------------------------------------------
    async def set_queue_limits(
        self,
        queue: str,
        *,
        max_in_flight: int | None = None,
        rate_per_second: float | None = None,
        burst: int | None = None,
    ) -> list[LimitInfo]:
        """Set the queue's fleet-wide limits: at most `max_in_flight` leases running at once,
        and claims at `rate_per_second` from a token bucket of `burst` (default: one second's
        worth). Replaces the queue's earlier limits; all None removes them. Every limited
        claim keeps them from its next claim; a consumer notices that a queue gained its first
        limit within 5 seconds (semantics.md §7.10). The queue's limits, as `queue_limits`."""
        checked = check_limits(max_in_flight, rate_per_second, burst)
        return await self._put_limits(queue, None, checked)

    async def set_key_limits(
        self,
        queue: str,
        key: str,
        *,
        max_in_flight: int | None = None,
        rate_per_second: float | None = None,
        burst: int | None = None,
    ) -> list[LimitInfo]:
        """`set_queue_limits` for the queue's messages enqueued with `key=key`, in addition to
        the queue's own limits."""
        checked_key = check_limit_key(key)
        checked = check_limits(max_in_flight, rate_per_second, burst)
        return await self._put_limits(queue, checked_key, checked)

    async def queue_limits(self, queue: str) -> list[LimitInfo]:
        """The queue's limits (its own first, `key` None, then its keys') with their use now."""
        validate_queue_name(queue)
        info = await queues.get_by_name(self._store.db, queue)
        return await limit_rows.usage(
            self._store.db, info.id, info.queue_name, self._store.sql_now()
        )

    async def _put_limits(self, queue: str, key: str | None, checked: Limits) -> list[LimitInfo]:
        validate_queue_name(queue)
        store = self._store
        info = await queues.get_by_name(store.db, queue)
        await limit_rows.put(store.db, info.id, key, checked, store.sql_now())
        return await limit_rows.usage(store.db, info.id, info.queue_name, store.sql_now())

    async def get_queue(self, name: str) -> QueueInfo:
        validate_queue_name(name)
        return await queues.get_by_name(self._store.db, name)

    async def delete_queue(self, name: str) -> bool:
        validate_queue_name(name)
        async with self._store.db.transaction() as db:
            await queues.delete(db, name)
        return True

    async def purge_queue(self, name: str) -> int:
        validate_queue_name(name)
        async with self._store.db.transaction() as db:
            return await queues.purge(db, name)

    async def release_worker_messages(self, worker_id: int) -> int:
        store = self._store
        return await messages.release_worker(store.db, worker_id, store.sql_now())

    async def create_workflow(self, name: str, arg: Any = None) -> Run:
        """Create the definition if missing, enqueue one trigger and create its QUEUED run."""
        return await create_workflow(self._store, name, arg)

    async def list_workers(self) -> list[WorkerInfo]:
        return await worker_rows.list_all(self._store.db)

    # -- metrics and health ------------------------------------------------------------------
    async def queue_metrics(self, name: str) -> QueueMetrics:
        validate_queue_name(name)
        store = self._store
        return await metrics.queue_metrics(
            store.db, name, store.sql_now(), store.settings.max_read_ct
        )

    async def all_queues_metrics(self) -> list[QueueMetrics]:
        """Every queue, ordered by name."""
        store = self._store
        return await metrics.all_queue_metrics(
            store.db, store.sql_now(), store.settings.max_read_ct
        )

    async def system_stats(self) -> SystemStats:
        store = self._store
        return await metrics.system_stats(store.db, store.sql_now(), store.settings.max_read_ct)

    async def worker_health_stats(
        self, heartbeat_timeout_seconds: int, group_by_queue: bool = False
    ) -> list[WorkerHealthStats]:
        timeout = require_duration("heartbeat_timeout_seconds", heartbeat_timeout_seconds)
        store = self._store
        cutoff = store.clock.now() - seconds(timeout)
        return await metrics.worker_health(store.db, cutoff, group_by_queue=group_by_queue)

    # -- recovery ----------------------------------------------------------------------------
    async def reclaim_messages(
        self,
        queue: str | None = None,
        older_than_seconds: int | None = None,
        *,
        force: bool = False,
    ) -> int:
        """Stop every worker silent for longer than `older_than_seconds` (default: three of its
        own heartbeat intervals) and take back what it held under a lease that is over; the
        number of messages released. A lease still running is kept (the worker may only be
        cut off), unless `force`: then everything those workers hold is released at once,
        for an operator who knows they are dead."""
        store = self._store
        older_than = None
        if older_than_seconds is not None:
            older_than = require_duration("older_than_seconds", older_than_seconds)
        queue_id = await self._queue_id(queue)
        done = await reclaim_stale(store, older_than, queue_id=queue_id, take_running=force)
        return done.messages

    # -- dead letters ------------------------------------------------------------------------
    async def dlq(self, queue: str | None = None) -> list[int]:
        """Archive every poison message; their ids, ascending. Workflow runs those messages
        triggered, still open, end ERROR first (no delivery will come to finish them)."""
        store = self._store
        queue_id = await self._queue_id(queue)
        default = store.settings.max_read_ct
        for qid in await _queue_ids(store, queue_id):
            limit = await queues.max_read_ct(store.db, qid, default)
            for message_id in await runs.fail_dead_lettered(
                store.db, qid, limit, runs.dead_letter_reason(limit), store.sql_now()
            ):
                store.wakeups.notify(run_key(message_id))
        return await recovery.dead_letter(store.db, store.sql_now(), default, queue_id)

    async def dlq_list(self, queue: str | None = None) -> list[QueueMessage]:
        """Dead letters by id: poison messages, and those `dlq()` archived, with read counts."""
        store = self._store
        queue_id = await self._queue_id(queue)
        rows = await recovery.dead_letter_rows(
            store.db, store.sql_now(), store.settings.max_read_ct, queue_id
        )
        return await store.messages.read(store.db, rows)

    async def dead_letters(self, queue: str | None = None) -> list[DeadLetter]:
        """`dlq_list()`, each with the last error its handler raised (None when it failed
        without its handler saying: a worker that crashed on every delivery)."""
        found = await self.dlq_list(queue)
        errors = await failures.of(self._store.db, [m.id for m in found])
        return [DeadLetter(message=m, last_error=errors.get(m.id)) for m in found]

    async def last_error(self, message_id: int) -> MessageError | None:
        """The last error a handler raised for this message, if any."""
        mid = require_int("message_id", message_id)
        return (await failures.of(self._store.db, [mid])).get(mid)

    async def archive_dead_letter(self, message_id: int) -> bool:
        """Archive one poison message (beyond pgqrs: `dlq()` archives a whole queue's); it stays
        listed by `dlq_list()`. The open workflow run it triggered ends ERROR in the same
        transaction. True when this call archived it, False when it was archived already;
        `ValidationError` when it is not a dead letter, `MessageNotFoundError`."""
        mid = check_message_id(message_id)
        store = self._store
        now = store.sql_now()
        async with store.db.transaction() as db:
            deliveries = await recovery.archive_dead_letter(
                db, mid, now, store.settings.max_read_ct
            )
            if deliveries is None:
                return False
            reason = runs.dead_letter_reason(deliveries)
            ended = await runs.fail_of_message(db, mid, reason, now)
        if ended:
            store.wakeups.notify(run_key(mid))
        return True

    async def replay_dlq(self, message_id: int) -> QueueMessage:
        """Put an archived or poison message back as a fresh pending message (read count 0)."""
        require_int("message_id", message_id)
        store = self._store
        row = await recovery.replay(
            store.db, message_id, store.sql_now(), store.settings.max_read_ct
        )
        [message] = await store.messages.read(store.db, [row])
        store.wakeups.notify(queue_key(message.queue_id))
        return message

    # -- cancelling queued messages (beyond pgqrs) ------------------------------------------
    async def cancel_message(self, queue: str, message_id: int) -> bool:
        """Cancel a queued message of `queue` (semantics.md §7.9): archived with a mark and
        never delivered. True when this call cancelled it, False when it was archived
        already; `MessageLeasedError` while a consumer holds it under a running lease,
        `ValidationError` for a workflow trigger (cancel the run instead),
        `MessageNotFoundError` for an id not in the queue."""
        mid = check_message_id(message_id)
        return await self._cancel(queue, message_id=mid)

    async def cancel_message_key(self, queue: str, dedup_key: str) -> bool:
        """`cancel_message` for the unarchived message of `queue` holding `dedup_key`; False
        when no unarchived message holds it."""
        key = check_dedup_key(dedup_key)
        return await self._cancel(queue, key=key)

    async def _cancel(
        self, queue: str, *, message_id: int | None = None, key: str | None = None
    ) -> bool:
        store = self._store
        queue_id = await self._queue_id(queue)
        assert queue_id is not None
        return await messages.cancel(
            store.db, queue_id, store.sql_now(), message_id=message_id, key=key, queue=queue
        )

    # -- cleanup -----------------------------------------------------------------------------
    async def delete_worker(self, worker_id: int) -> bool:
        wid = require_int("worker_id", worker_id)
        async with self._store.db.transaction() as db:
            await cleanup.delete_worker(db, wid)
        return True

    async def purge_old_workers(self, older_than_seconds: int) -> int:
        older_than = require_duration("older_than_seconds", older_than_seconds)
        store = self._store
        return await cleanup.purge_old_workers(store.db, store.clock.now() - seconds(older_than))

    async def get_worker_messages(self, worker_id: int) -> list[QueueMessage]:
        store = self._store
        wid = require_int("worker_id", worker_id)
        rows = await cleanup.worker_message_rows(store.db, wid)
        return await store.messages.read(store.db, rows)

    async def purge_archived(self, queue: str | None = None, *, older_than_seconds: float) -> int:
        """Delete messages archived more than `older_than_seconds` ago (of one queue, or all),
        a thousand rows per transaction; messages a workflow run refers to are kept.
        The number deleted."""
        older_than = require_duration("older_than_seconds", older_than_seconds)
        store = self._store
        queue_id = await self._queue_id(queue)
        cutoff = store.clock.now() - seconds(older_than)
        return await cleanup.purge_archived(store.db, await _queue_ids(store, queue_id), cutoff)

    # -- helpers -----------------------------------------------------------------------------
    # -- schedules (issue 13) ----------------------------------------------------------------
    async def create_schedule(
        self,
        name: str,
        cron: str,
        *,
        queue: str | None = None,
        payload: Any = None,
        workflow: str | None = None,
        input: Any = None,
        timezone: str = "UTC",
        catch_up: int = 0,
    ) -> ScheduleInfo:
        """Create a cron schedule (semantics.md §17): at each tick of `cron` (5 fields, or 6
        with the seconds first) read in `timezone`, one message on `queue` holding `payload`
        (default `{}`), or one trigger of `workflow` with `input`. After an outage the newest
        `catch_up` missed ticks are enqueued (0: they are skipped). Everything is checked,
        the queue or workflow must exist and the payload pass its queue's rules, before
        anything is written."""
        name = check_schedule_name(name)
        parsed = Cron.of(cron, timezone)
        catch_up = check_catch_up(catch_up)
        target = check_target(queue, payload, workflow, input)
        store = self._store
        payload_text = input_text = None
        if target.queue is not None:
            found = await queues.settings_by_name(store.db, target.queue)
            rules = PayloadRules.for_queue(store.settings, found)
            payload_text = encode_payloads([target.value], rules, batch=False)[0]
        else:
            assert target.workflow is not None
            if await workflow_rows.find_by_name(store.db, target.workflow) is None:
                raise NotFoundError(
                    f"Workflow '{target.workflow}' not found: create it first "
                    "(pgqrs.workflow().name(...).store(store).create(), or run its worker)"
                )
            trigger_payload(await trigger_rules(store, target.workflow), target.value)
            input_text = encode_json(target.value)
        return await schedule_rows.create(
            store.db,
            name=name,
            cron=parsed.expression,
            timezone=timezone,
            queue=target.queue,
            payload=payload_text,
            workflow=target.workflow,
            input=input_text,
            catch_up=catch_up,
            next_fire_at=parsed.next_after(store.clock.now()),
            now=store.sql_now(),
        )

    async def list_schedules(self) -> list[ScheduleInfo]:
        """Every schedule, by name."""
        return await schedule_rows.list_all(self._store.db)

    async def get_schedule(self, name: str) -> ScheduleInfo:
        """The schedule `name`; NotFoundError when there is none."""
        return await schedule_rows.get(self._store.db, check_schedule_name(name))

    async def pause_schedule(self, name: str) -> ScheduleInfo:
        """Stop firing `name` (every scheduler, from its next look) until `resume_schedule`."""
        return await schedule_rows.set_paused(self._store.db, check_schedule_name(name), True)

    async def resume_schedule(self, name: str) -> ScheduleInfo:
        """Fire `name` again from its next tick after now: ticks that passed while it was
        paused are skipped, whatever its catch_up. A schedule not paused is left as it is."""
        store = self._store
        found = await schedule_rows.get(store.db, check_schedule_name(name))
        if not found.paused:
            return found
        upcoming = Cron.of(found.cron, found.timezone).next_after(store.clock.now())
        return await schedule_rows.set_paused(store.db, name, False, upcoming)

    async def delete_schedule(self, name: str) -> bool:
        """Delete the schedule; False when there was none. Messages it enqueued stay."""
        return await schedule_rows.delete(self._store.db, check_schedule_name(name))

    # -- workflow runs: restart and introspection (issue 14; semantics.md §19) ---------------
    async def restart_run(self, run_id: int, from_step: str | None = None) -> RestartedRun:
        """Run a finished run (SUCCESS, ERROR or CANCELLED) again from the step `from_step`
        (None: its first failed step, else its first step): that step and every step that
        started after it are removed, the results of the earlier ones are kept, and the run is
        QUEUED again with its trigger message, in one transaction; the next worker of its
        workflow resumes it (semantics.md §19.1). `StateTransitionError` for a run that has not
        finished, `NotFoundError` for an unknown run or step (naming the run's steps)."""
        rid = check_run_id(run_id)
        step = check_from_step(from_step)
        store = self._store
        async with store.db.transaction() as db:
            done, queue_id = await run_restart.restart(db, rid, step, store.sql_now())
        store.wakeups.notify(queue_key(queue_id))
        return done

    async def list_runs(
        self,
        workflow: WorkflowNames = None,
        *,
        status: RunStatuses = None,
        since: Time | None = None,
        until: Time | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """Runs, newest first (by creation), at most `limit`: of the workflow(s) named (None:
        every workflow), in the status(es) given (None: any), created at or after `since` and
        before `until` (semantics.md §19.2). `NotFoundError` for an unknown workflow."""
        chosen = check_run_filter(workflow, status, since, until, limit)
        db = self._store.db
        ids = None
        if chosen.workflows is not None:
            ids = [(await workflow_rows.get_by_name(db, n)).id for n in chosen.workflows]
        return await introspection.list_runs(
            db,
            workflow_ids=ids,
            statuses=chosen.statuses,
            since=chosen.since,
            until=chosen.until,
            limit=chosen.limit,
        )

    async def run_timeline(self, run_id: int) -> RunTimeline:
        """The run with its steps (status, attempts, last error, times, duration), its signals,
        events and child runs (semantics.md §19.2); `NotFoundError` for an unknown run."""
        return await introspection.timeline(self._store.db, check_run_id(run_id))

    async def _queue_id(self, queue: str | None) -> int | None:
        if queue is None:
            return None
        validate_queue_name(queue)
        return (await queues.get_by_name(self._store.db, queue)).id


def admin(store: Store) -> Admin:
    return Admin(store)
