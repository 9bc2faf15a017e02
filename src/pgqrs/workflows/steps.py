"""`StepResult` and `StepGuard`: what acquiring a step gives, and how its outcome is recorded
(api.md §12.2-12.3, semantics.md §12.6)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._clock import format_time
from ..policy import StepRetryPolicy
from ..tables import steps
from ..tables.write_behind import WriteBehind
from ..types import StepResultStatus
from ..validation import MAX_DURATION_SECONDS, check_retry_after, encode_json, require_str

if TYPE_CHECKING:
    from ..tables.context import Context


def permanent_error(error: Any) -> dict[str, Any]:
    """The stored form of `fail(e)`: the value's compact JSON text as the message."""
    return {"is_transient": False, "code": "NON_RETRYABLE", "message": encode_json(error)}


def retry_after_of(value: Any) -> float | None:
    """A `retry_after` given as seconds or as `{"secs", "nanos"}`; anything else is absent."""
    if isinstance(value, dict):
        secs, nanos = value.get("secs", 0), value.get("nanos", 0)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (secs, nanos)):
            value = secs + nanos / 1e9
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return min(float(value), MAX_DURATION_SECONDS)  # longer waits wait the longest allowed


@dataclass(frozen=True, slots=True)
class StepResult:
    """What acquiring a step gave: run it (`guard` present) or its stored output (`value`)."""

    status: StepResultStatus
    value: Any
    guard: StepGuard | None


class StepGuard:
    """Records the outcome of one step execution (api.md §12.3)."""

    __slots__ = ("_attempt", "_current_time", "_policy", "_run_id", "_step_name", "_store")

    _store: Context
    _run_id: int
    _step_name: str
    _current_time: datetime | None
    _policy: StepRetryPolicy
    _attempt: int  # this execution's number: 1, then one more per retry (its span says it)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("StepGuard has no public constructor; use run.acquire_step(name)")

    @classmethod
    def _make(
        cls,
        store: Context,
        run_id: int,
        step_name: str,
        current_time: datetime | None,
        policy: StepRetryPolicy,
        attempt: int = 1,
    ) -> StepGuard:
        guard = object.__new__(cls)
        guard._store = store
        guard._run_id = run_id
        guard._step_name = step_name
        guard._current_time = current_time
        guard._policy = policy
        guard._attempt = attempt
        return guard

    @property
    def run_id(self) -> int:
        return self._run_id

    @property
    def step_name(self) -> str:
        return self._step_name

    @property
    def current_time(self) -> str | None:
        return None if self._current_time is None else format_time(self._current_time)

    def __repr__(self) -> str:
        return f"<pgqrs.StepGuard run_id={self._run_id} step_name={self._step_name!r}>"

    async def success(self, result: Any) -> None:
        text = encode_json(result)
        store = self._store
        await steps.succeed(store.db, self._run_id, self._step_name, text, store.clock.now())

    async def _success_with_next(self, result: Any) -> None:
        """`success` for `@step`: inside `handle_workflow`, sent with the run's next statement
        (tables/write_behind.py: one round trip instead of two); elsewhere at once."""
        db = self._store.db
        if not isinstance(db, WriteBehind):
            await self.success(result)
            return
        text = encode_json(result)  # an unencodable result fails here, as in `success`
        db.succeed_later(self._run_id, self._step_name, text, self._store.clock.now())

    async def fail(self, error: Any) -> None:
        """A permanent failure: the next acquisition raises `RetriesExhaustedError`."""
        await self._record(permanent_error(error), transient=False, retry_after=None)

    async def fail_transient(
        self, code: str, message: str, retry_after: float | None = None
    ) -> None:
        await self._schedule_retry(code, message, retry_after)

    async def _schedule_retry(
        self, code: str, message: str, retry_after: float | None = None
    ) -> datetime | None:
        """`fail_transient` that answers when the step may run again (None: exhausted)."""
        require_str("fail_transient code", code)
        require_str("fail_transient message", message)
        check_retry_after(retry_after)
        error: dict[str, Any] = {"is_transient": True, "code": code, "message": message}
        if retry_after is not None:
            whole = int(retry_after)
            error["retry_after"] = {"secs": whole, "nanos": round((retry_after - whole) * 1e9)}
        return await self._record(error, transient=True, retry_after=retry_after)

    async def _record(
        self, error: Any, *, transient: bool, retry_after: float | None
    ) -> datetime | None:
        store = self._store
        now = store.clock.now()
        async with store.db.transaction() as db:
            return await steps.fail(
                db,
                self._run_id,
                self._step_name,
                error,
                now,
                transient=transient,
                policy=self._policy,
                retry_after=None if retry_after is None else float(retry_after),
                base=self._current_time or now,
            )
