"""`pgqrs.sync.workflow()` and `pgqrs.sync.run()`: the builders of api.md §11, blocking."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, NoReturn, Self, TypeVar

from ..errors import PgqrsError
from ..types import QueueMessage, WorkflowRecord
from ..workflows.builders import RunBuilder as AsyncRunBuilder
from ..workflows.builders import WorkflowBuilder as AsyncWorkflowBuilder
from ..workflows.builders import WorkflowTriggerBuilder as AsyncWorkflowTriggerBuilder
from .caller import in_calling_thread
from .runs import Run
from .store import Store, sync_store

T = TypeVar("T")


def _refused(coro: Coroutine[Any, Any, Any]) -> NoReturn:
    """A builder's terminal call without a store: the library refuses it before its first
    await, so its first step raises the library's own error; this never returns normally."""
    try:
        coro.send(None)
    finally:
        coro.close()
    raise PgqrsError("Internal error: a builder without a store was not refused")


class WorkflowBuilder:
    """`pgqrs.workflow()`, blocking: `pgqrs.sync.workflow().name(n).store(s).create()`."""

    def __init__(self) -> None:
        self._builder = AsyncWorkflowBuilder()
        self._owner: Store | None = None
        self._name: str | None = None

    def name(self, name: str) -> Self:
        self._builder.name(name)
        self._name = name
        return self

    def store(self, store: Store) -> Self:
        self._owner = sync_store(store)
        self._builder.store(store.aio)
        return self

    def id(self, id: int) -> Self:
        self._builder.id(id)
        return self

    def __repr__(self) -> str:
        return f"<pgqrs.sync.WorkflowBuilder of {self._builder!r}>"

    def create(self) -> WorkflowRecord:
        if self._owner is None:
            _refused(self._builder.create())
        return self._owner._call(self._builder.create())

    def trigger(self, input: Any) -> WorkflowTriggerBuilder:
        return WorkflowTriggerBuilder(self._owner, self._builder.trigger(input), self._name, input)


class WorkflowTriggerBuilder:
    def __init__(
        self,
        owner: Store | None,
        builder: AsyncWorkflowTriggerBuilder,
        name: str | None = None,
        input: Any = None,
    ) -> None:
        self._owner = owner
        self._builder = builder
        self._name = name  # with `input`: the same trigger on a view of the store (caller.py)
        self._input = input

    def __repr__(self) -> str:
        return f"<pgqrs.sync.WorkflowTriggerBuilder of {self._builder!r}>"

    def deadline(self, seconds: float) -> WorkflowTriggerBuilder:
        """The run is cancelled if unfinished `seconds` after the trigger (semantics.md §18.5)."""
        self._builder.deadline(seconds)
        return self

    def execute(self, *, connection: object | None = None) -> QueueMessage:
        """With `connection=`, in the application's transaction, in this thread (caller.py)."""
        if self._owner is None:
            _refused(self._builder.execute(connection=connection))
        if connection is None:
            return self._owner._call(self._builder.execute())
        name, value, due = self._name, self._input, self._builder._deadline

        def trigger(view: Any) -> Coroutine[Any, Any, QueueMessage]:
            builder = AsyncWorkflowTriggerBuilder(view, name, value)
            if due is not None:
                builder.deadline(due)
            return builder.execute(connection=connection)

        return in_calling_thread(self._owner, connection, trigger)


class RunBuilder:
    """`pgqrs.run()`, blocking: `pgqrs.sync.run().message(m).store(s).result(timeout=10)`."""

    def __init__(self) -> None:
        self._builder = AsyncRunBuilder()
        self._owner: Store | None = None

    def message(self, message: QueueMessage) -> Self:
        self._builder.message(message)
        return self

    def store(self, store: Store) -> Self:
        self._owner = sync_store(store)
        self._builder.store(store.aio)
        return self

    def __repr__(self) -> str:
        return f"<pgqrs.sync.RunBuilder of {self._builder!r}>"

    def _run_call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._owner is None:
            _refused(coro)
        return self._owner._call(coro)

    def execute(self) -> Run:
        run = self._run_call(self._builder.execute())
        assert self._owner is not None
        return Run._wrap(self._owner, run)

    def get(self) -> Any:
        return self._run_call(self._builder.get())

    def result(self, timeout: float | None = None) -> Any:
        """Blocks until the run is terminal; `pgqrs.TimeoutError` after `timeout` seconds."""
        return self._run_call(self._builder.result(timeout))


def workflow() -> WorkflowBuilder:
    return WorkflowBuilder()


def run() -> RunBuilder:
    return RunBuilder()
