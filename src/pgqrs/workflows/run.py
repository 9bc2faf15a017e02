"""`Run`: a workflow run as the code inside it sees it (api.md §12.1); steps in `.steps`.

(In `pgqrs.workflows`, not a module `pgqrs.workflow`: `pgqrs.workflow` is the builder factory,
and a submodule of that name would shadow it as an attribute of the package.)
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._clock import Time, format_time, parse_time
from .._clock import seconds as timedelta_of
from ..errors import PausedError
from ..policy import StepRetryPolicy
from ..store.wakeup import run_key
from ..tables import runs, steps
from ..types import RunRecord, StepResultStatus, WorkflowStatus
from ..validation import (
    encode_json,
    require_duration,
    require_str,
    require_type_or_none,
    validate_step_name,
)
from . import children, signals
from .replay import Replay
from .steps import StepGuard, StepResult, permanent_error, retry_after_of

if TYPE_CHECKING:
    from ..records import Signal
    from ..tables.context import Context

SLEEP_STEP_PREFIX = "__pgqrs_sleep__#"


_POLICY_EXPECTED = "expected a pgqrs.StepRetryPolicy or None, got {type.__name__}"


class _Outcome:
    """Shared by every handle of one delivery, fresh executions included: whether one of them
    finished the run (SUCCESS or ERROR), so the worker need not look again afterwards; whether
    the delivery started the run and no `start()` has been called since."""

    __slots__ = ("ended", "started")

    def __init__(self) -> None:
        self.ended = False
        self.started = False


class Run:
    """A handle on one workflow run. Obtain it from `pgqrs.run()`, `Admin.create_workflow` or
    the `handle_workflow` loop; derived handles (`with_time`, `with_retry`) share the run."""

    __slots__ = ("_current_time", "_outcome", "_record", "_replay", "_retry_policy", "_store")

    _store: Context
    _record: RunRecord
    _current_time: datetime | None
    _retry_policy: StepRetryPolicy | None
    _replay: Replay
    _outcome: _Outcome

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "Run has no public constructor; use `await pgqrs.run().message(m).store(s).execute()`"
        )

    @classmethod
    def _wrap(
        cls,
        store: Context,
        record: RunRecord,
        *,
        current_time: datetime | None = None,
        retry_policy: StepRetryPolicy | None = None,
        replay: Replay | None = None,
        outcome: _Outcome | None = None,
        started: bool = False,
    ) -> Run:
        """`started`: the handle of a `handle_workflow` delivery, which started the run."""
        run = object.__new__(cls)
        run._store = store
        run._record = record
        run._current_time = current_time
        run._retry_policy = retry_policy
        run._replay = replay or Replay()
        run._outcome = outcome or _Outcome()
        run._outcome.started = run._outcome.started or started
        return run

    def _derive(self, **changes: Any) -> Run:
        fields: dict[str, Any] = {
            "current_time": self._current_time,
            "retry_policy": self._retry_policy,
            "replay": self._replay,
            "outcome": self._outcome,
        }
        fields.update(changes)
        record = fields.pop("record", self._record)
        return Run._wrap(self._store, record, **fields)

    def _fresh_execution(self) -> Run:
        """The same handle with sleeps numbered from the start (one per workflow execution)."""
        return self._derive(replay=Replay())

    # -- identity and snapshot ------------------------------------------------------------------
    def id(self) -> int:
        return self._record.id

    @property
    def message_id(self) -> int:
        return self._record.message_id

    @property
    def input(self) -> Any:
        """The stored input (`{"input": X}` for triggered runs), as of when the handle was made."""
        return self._record.input

    @property
    def current_time(self) -> str | None:
        return None if self._current_time is None else format_time(self._current_time)

    @property
    def retry_policy(self) -> StepRetryPolicy | None:
        return self._retry_policy

    def with_time(self, time: Time) -> Run:
        return self._derive(current_time=parse_time(time))

    def with_retry(self, policy: StepRetryPolicy | None) -> Run:
        return self._derive(
            retry_policy=require_type_or_none(policy, StepRetryPolicy, _POLICY_EXPECTED)
        )

    def __repr__(self) -> str:
        return f"<pgqrs.Run id={self.id()} message_id={self.message_id}>"

    def _now(self) -> datetime:
        return self._store.clock.now()

    def _notify(self) -> None:
        self._store.wakeups.notify(run_key(self.message_id))

    # -- the run's own status ------------------------------------------------------------------
    async def status(self) -> WorkflowStatus:
        return await runs.status(self._store.db, self.id())

    async def start(self) -> bool:
        outcome = self._outcome
        if outcome.started and not outcome.ended:
            # `handle_workflow` started the run when it opened it for this delivery
            # (semantics.md §11.1): RUNNING, so `start()` has nothing to change. A cancellation
            # requested since is found by the next step or the run's end, as it would be here.
            outcome.started = False
            return True
        await runs.start(self._store.db, self.id(), self._now())
        return True

    async def success(self, result: Any) -> bool:
        await self._finish(WorkflowStatus.Success, output=encode_json(result))
        return True

    complete = success

    async def fail(self, error: Any) -> bool:
        await self._finish(WorkflowStatus.Error, error=encode_json(error))
        return True

    async def pause(self, message: str, resume_after_seconds: float) -> bool:
        require_str("pause message", message)
        require_duration("resume_after_seconds", resume_after_seconds)
        error = encode_json({"message": message, "resume_after": resume_after_seconds})
        await self._finish(WorkflowStatus.Paused, error=error)
        return True

    async def _finish(self, target: WorkflowStatus, **values: str) -> None:
        try:
            await runs.finish(self._store.db, self.id(), target, self._now(), **values)
        finally:
            self._notify()
        if target.is_terminal:
            self._outcome.ended = True

    @property
    def _ended_here(self) -> bool:
        """This delivery's code finished the run: it cannot be CANCELLING any more."""
        return self._outcome.ended

    async def _finalise_cancel(self) -> None:
        await runs.finalise_cancel(self._store.db, self.id(), self._now())
        self._notify()

    async def cancel(self) -> bool:
        await runs.cancel(self._store.db, self.id(), self._now())
        return True

    async def refresh(self) -> Run:
        return self._derive(record=await runs.get(self._store.db, self.id()))

    # -- steps ---------------------------------------------------------------------------------
    async def acquire_step(
        self,
        step_name: str,
        current_time: Time | None = None,
        retry: StepRetryPolicy | None = None,
    ) -> StepResult:
        """Start (or skip, or resume) a step; semantics.md §12.5."""
        validate_step_name(step_name)
        injected = parse_time(current_time) if current_time is not None else self._current_time
        checked = require_type_or_none(retry, StepRetryPolicy, _POLICY_EXPECTED)
        policy = checked or self._retry_policy or StepRetryPolicy()
        store = self._store
        now = self._now()
        record = await steps.acquire(store.db, self.id(), step_name, injected or now, now)
        if record is None:
            self._notify()
            raise runs.cancelled(self.id())
        if record.status == WorkflowStatus.Success:
            return StepResult(StepResultStatus.Skipped, record.output, None)
        attempt = record.retry_count + 1
        guard = StepGuard._make(store, self.id(), step_name, injected, policy, attempt)
        return StepResult(StepResultStatus.Execute, None, guard)

    async def complete_step(self, step_name: str, output: Any) -> None:
        """Acquire, then record success (even over an earlier SUCCESS)."""
        text = encode_json(output)
        await self.acquire_step(step_name)
        await steps.succeed(self._store.db, self.id(), step_name, text, self._now())

    async def fail_step(self, step_name: str, error: Any, current_time: Time | None = None) -> None:
        """Acquire, then record the failure (semantics.md §12.6).

        A dict with an `is_transient` key is stored as given and, when that key is truthy,
        scheduled like `StepGuard.fail_transient`; anything else is a permanent failure.
        """
        injected = parse_time(current_time) if current_time is not None else self._current_time
        if isinstance(error, dict) and "is_transient" in error:
            stored: Any = error
            transient = bool(error["is_transient"])
            retry_after = retry_after_of(error.get("retry_after"))
        else:
            stored, transient, retry_after = permanent_error(error), False, None
        encode_json(stored)  # refuse an unencodable error before anything is written
        await self.acquire_step(step_name, injected)
        guard = StepGuard._make(
            self._store, self.id(), step_name, injected, self._retry_policy or StepRetryPolicy()
        )
        await guard._record(stored, transient=transient, retry_after=retry_after)

    # -- durable sleep (beyond pgqrs) ----------------------------------------------------------
    async def sleep(self, seconds: float, *, name: str | None = None) -> None:
        """Pause the run for `seconds`, durably: see docs/guides/workflows.md ("Durable sleep").

        The first time, the wake-up time is recorded as a step and the run is paused; this
        raises `PausedError`, which `handle_workflow` turns into "come back at the wake-up time".
        When the run is executed again, the recorded step is found and, once its time has come,
        `sleep` returns at once: a sleep that has ended is never repeated.
        """
        duration = require_duration("seconds", seconds)
        self._replay.sleeps += 1
        step_name = name if name is not None else f"{SLEEP_STEP_PREFIX}{self._replay.sleeps}"
        now = self._current_time or self._now()
        result = await self.acquire_step(step_name)
        if result.guard is not None:
            wake_at = now + timedelta_of(duration)
            await result.guard.success({"wake_at": format_time(wake_at), "seconds": duration})
        else:
            wake_at = parse_time(result.value["wake_at"])
        remaining = (wake_at - now).total_seconds()
        if remaining <= 0:
            return
        await self.pause(f"sleeping until {format_time(wake_at)}", remaining)
        raise PausedError(
            f"Run {self.id()} sleeps until {format_time(wake_at)}", resume_after=remaining
        )

    # -- internal reads ------------------------------------------------------------------------
    async def _stored_output(self) -> Any:
        return (await runs.get(self._store.db, self.id())).output

    # -- runs that wait and talk (beyond pgqrs; semantics.md §18) -------------------------------
    async def recv(
        self,
        topic: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a durable wait: semantics.md §18.1)
        name: str | None = None,
    ) -> Signal | None:
        """The next signal sent to this run on `topic` (oldest first, each received once), or
        None when `timeout` seconds passed without one. Until then the run waits durably: it
        raises `RunWaitingError`, which `handle_workflow` turns into "come back when a signal
        arrives or the timeout ends"."""
        return await signals.recv(self, topic, timeout, name)

    async def set_event(self, key: str, value: Any) -> None:
        """Publish `value` under `key` (the latest value wins); `pgqrs.get_event` reads it."""
        await signals.set_event(self, key, value)

    async def start_child(
        self,
        workflow: Any,
        input: Any = None,
        *,
        name: str | None = None,
        deadline: float | None = None,
    ) -> children.ChildRun:
        """Start a run of `workflow` (a `@workflow` function or its name) as this run's child;
        executed again, the run gets the same child back. `await child.result()` waits for it."""
        return await children.start_child(self, workflow, input, name, deadline)

    async def gather(self, *items: Any, return_exceptions: bool = False) -> list[Any]:
        """Fan-in: the results of child runs and of awaitables (steps run in parallel), in
        order. A failure is raised at once (`return_exceptions=False`) or returned in place."""
        return await children.gather(self, items, return_exceptions=return_exceptions)
