"""Run, blocking: a workflow run seen from outside its workflow (status, cancel, ...)."""

from __future__ import annotations

from typing import Any

from .._clock import Time
from ..policy import StepRetryPolicy
from ..types import WorkflowStatus
from ..workflows.run import Run as AsyncRun
from .portal import Delegate, Owner


class Run(Delegate):
    """`pgqrs.Run`, blocking: a run seen from outside its workflow (status, cancel, ...).
    Steps belong to the workflow's code, which runs on workers (the async API)."""

    __slots__ = ("_run",)

    _run: AsyncRun

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "Run has no public constructor; use `pgqrs.sync.run().message(m).store(s).execute()`"
        )

    @classmethod
    def _wrap(cls, owner: Owner, run: AsyncRun) -> Run:
        wrapper = object.__new__(cls)
        wrapper._owner = owner
        wrapper._run = run
        return wrapper

    @property
    def aio(self) -> AsyncRun:
        """The async run underneath (for `Store.call()` only)."""
        return self._run

    def id(self) -> int:
        return self._run.id()

    @property
    def message_id(self) -> int:
        return self._run.message_id

    @property
    def input(self) -> Any:
        return self._run.input

    @property
    def current_time(self) -> str | None:
        return self._run.current_time

    @property
    def retry_policy(self) -> StepRetryPolicy | None:
        return self._run.retry_policy

    def with_time(self, time: Time) -> Run:
        return Run._wrap(self._owner, self._run.with_time(time))

    def with_retry(self, policy: StepRetryPolicy | None) -> Run:
        return Run._wrap(self._owner, self._run.with_retry(policy))

    def __repr__(self) -> str:
        return f"<pgqrs.sync.Run id={self.id()} message_id={self.message_id}>"

    def status(self) -> WorkflowStatus:
        return self._call(self._run.status())

    def start(self) -> bool:
        return self._call(self._run.start())

    def success(self, result: Any) -> bool:
        return self._call(self._run.success(result))

    complete = success

    def fail(self, error: Any) -> bool:
        return self._call(self._run.fail(error))

    def pause(self, message: str, resume_after_seconds: float) -> bool:
        return self._call(self._run.pause(message, resume_after_seconds))

    def cancel(self) -> bool:
        return self._call(self._run.cancel())

    def refresh(self) -> Run:
        return Run._wrap(self._owner, self._call(self._run.refresh()))
