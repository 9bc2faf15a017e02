"""`@workflow` and `@step`: durable functions over a `Run` (api.md §13, semantics.md §12.7).

A step's result is stored the first time it succeeds; when the workflow runs again (after a
crash, a retry or a pause) the stored result is handed back and the step's body does not run.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from .. import tracing
from .._clock import format_time
from ..errors import (
    PausedError,
    RetriesExhaustedError,
    StateTransitionError,
    StepNotReadyError,
    TransientStepError,
    ValidationError,
    WorkflowCancelledError,
    WorkflowTimeoutError,
    is_transient,
)
from ..policy import StepRetryPolicy
from ..tables.runs import cancelled
from ..types import WorkflowStatus
from ..validation import (
    require_callable,
    require_duration,
    require_str,
    require_type,
    require_type_or_none,
    require_workflow_name,
)
from .run import Run
from .steps import retry_after_of

__all__ = ["WorkflowDef", "step", "workflow"]

F = TypeVar("F", bound=Callable[..., Any])

# Raised inside the run to be handled by whoever runs it (the loop schedules, the caller waits):
# they neither fail the step nor the run.
_PASS_THROUGH = (StepNotReadyError, RetriesExhaustedError, PausedError, WorkflowCancelledError)

# Set on an exception once a step has recorded it, so the steps around a nested step let it
# pass instead of recording the same failure again (one failure counts one attempt).
_RECORDED = "_pgqrs_step_recorded"


_RETRY_EXPECTED = "retry must be a pgqrs.StepRetryPolicy or None, not {type}"


async def _call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    result = func(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


class WorkflowDef:
    """A decorated workflow: `await wf(run)` runs it (semantics.md §12.7)."""

    def __init__(
        self,
        name: str,
        run: Callable[..., Awaitable[Any]],
        func: Callable[..., Any],
        retry: StepRetryPolicy | None = None,
    ) -> None:
        functools.update_wrapper(self, func)
        self.name = name
        self.run = run
        self.retry = retry
        self._func = func

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # `async def`, so it is seen as the coroutine function it is (handlers that are not
        # coroutine functions run on a thread: queue.loop.call_handler).
        return await self.run(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<pgqrs.WorkflowDef name={self.name!r}>"


def workflow(
    *, name: str, retry: StepRetryPolicy | None = None
) -> Callable[[Callable[..., Any]], WorkflowDef]:
    """Make `async def f(run, ...)` a durable workflow named `name` (metadata only)."""
    require_workflow_name(name)
    policy = require_type_or_none(retry, StepRetryPolicy, _RETRY_EXPECTED)

    def decorate(func: Callable[..., Any]) -> WorkflowDef:
        require_callable(func, "@workflow decorates a function, not {type.__name__}")

        async def runner(run: Run, *args: Any, **kwargs: Any) -> Any:
            return await _run_workflow(func, policy, run, args, kwargs)

        return WorkflowDef(name, runner, func, policy)

    return decorate


async def _run_workflow(
    func: Callable[..., Any],
    retry: StepRetryPolicy | None,
    run: Run,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    run = require_type(
        run, Run, "the first argument of a workflow must be a pgqrs.Run, got {type.__name__}"
    )
    if retry is not None and run.retry_policy is None:
        run = run.with_retry(retry)
    run = run._fresh_execution()
    try:
        await run.start()
    except ValidationError:
        current = await run.status()
        if current == WorkflowStatus.Success:
            return await run._stored_output()  # a finished run is not executed again
        if current == WorkflowStatus.Cancelling:
            await run._finalise_cancel()
        if current in (WorkflowStatus.Cancelling, WorkflowStatus.Cancelled):
            raise cancelled(run.id()) from None
        raise
    if not args and not kwargs and run.input is not None:
        data = run.input
        if isinstance(data, dict) and len(data) == 1 and "input" in data:
            data = data["input"]
        args = (data,)
    try:
        result = await _call(func, run, *args, **kwargs)
        await run.success(result)
        return result
    except (TransientStepError, StepNotReadyError, PausedError, WorkflowCancelledError):
        raise
    except Exception as exc:  # RetriesExhaustedError included: the run has failed
        if not is_transient(exc):  # a database outage is not the run's failure: it resumes
            await _fail_unless_finished(run, exc)
        raise


async def _fail_unless_finished(run: Run, exc: Exception) -> None:
    try:
        await run.fail(str(exc))
    except (StateTransitionError, WorkflowCancelledError):
        pass  # already finished, or cancelled meanwhile: nothing left to fail


def _mark_recorded(exc: BaseException) -> None:
    try:
        setattr(exc, _RECORDED, True)
    except (AttributeError, TypeError):
        pass  # an exception type without a __dict__: an outer step may record it again


@overload
def step(func: F) -> F: ...


@overload
def step(
    func: None = None,
    *,
    retry: StepRetryPolicy | None = None,
    name: str | None = None,
    timeout: float | None = None,
) -> Callable[[F], F]: ...


def step(
    func: Callable[..., Any] | None = None,
    *,
    retry: StepRetryPolicy | None = None,
    name: str | None = None,
    timeout: float | None = None,
) -> Any:
    """Make `async def f(run, ...)` a durable step; usable bare (`@step`) or with arguments.

    `timeout` (beyond pgqrs, semantics.md §18.5): an execution that runs longer is cut short
    and recorded as a transient failure (`WorkflowTimeoutError`), so `retry` decides what
    follows.
    """
    policy = require_type_or_none(retry, StepRetryPolicy, _RETRY_EXPECTED)
    if name is not None:
        require_str("step name", name)
    limit = None if timeout is None else require_duration("timeout", timeout)
    if func is None:
        return lambda f: _make_step(f, policy, name, limit)
    return _make_step(func, policy, name, limit)


async def _call_within(
    limit: float | None, step_name: str, func: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """`_call`, cut short after `limit` seconds (None: no limit)."""
    if limit is None:
        return await _call(func, *args, **kwargs)
    try:
        async with asyncio.timeout(limit) as scope:
            return await _call(func, *args, **kwargs)
    except TimeoutError:
        if not scope.expired():
            raise  # the step's own TimeoutError, not its time limit
    raise WorkflowTimeoutError(f"Step '{step_name}' ran longer than its timeout of {limit}s")


def _make_step(
    func: Callable[..., Any],
    retry: StepRetryPolicy | None,
    name: str | None,
    limit: float | None = None,
) -> Callable[..., Any]:
    require_callable(func, "@step decorates a function, not {type.__name__}")
    step_name = name or func.__name__

    @functools.wraps(func)
    async def wrapper(run: Run, *args: Any, **kwargs: Any) -> Any:
        run = require_type(
            run, Run, "the first argument of a step must be a pgqrs.Run, got {type.__name__}"
        )
        acquired = await run.acquire_step(step_name, retry=retry)
        guard = acquired.guard
        if guard is None:
            return acquired.value  # done before: the body does not run again
        try:
            with tracing.step(step_name, guard.run_id, guard._attempt):
                result = await _call_within(limit, step_name, func, run, *args, **kwargs)
            # Stored with the run's next statement (semantics.md §12.7), before any more of
            # the run's work starts: tables/write_behind.py.
            await guard._success_with_next(result)
        except TransientStepError as exc:
            if not getattr(exc, _RECORDED, False):
                code = exc.code if isinstance(exc.code, str) and exc.code else "TRANSIENT_ERROR"
                retry_at = await guard._schedule_retry(
                    code, str(exc), retry_after_of(exc.retry_after)
                )
                exc.retry_at = None if retry_at is None else format_time(retry_at)
                _mark_recorded(exc)
            raise
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            # A database outage (while the body ran, or while its result was saved) is not
            # the step's failure: nothing is recorded, and the step runs again on resumption.
            if not getattr(exc, _RECORDED, False) and not is_transient(exc):
                await guard.fail(str(exc))
                _mark_recorded(exc)
            raise
        return result

    return wrapper
