"""Helpers shared by the workflow tests: runs in a given state, raw row reads, time shifts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pgqrs
from pgqrs.tables import messages

WF = "wf"


async def new_run(store: pgqrs.Store, arg: Any = 1, name: str = WF) -> pgqrs.Run:
    """A QUEUED run with its own pending trigger message."""
    return await pgqrs.admin(store).create_workflow(name, arg)


async def run_in(store: pgqrs.Store, status: str, name: str = WF) -> pgqrs.Run:
    """A run brought to `status` through the public API only."""
    run = await new_run(store, name=name)
    if status == "QUEUED":
        pass
    elif status == "RUNNING":
        await run.start()
    elif status == "PAUSED":
        await run.start()
        await run.pause("later", 30)
    elif status == "CANCELLING":
        await run.cancel()
    elif status == "CANCELLED":
        await run.cancel()
        with _expect(pgqrs.WorkflowCancelledError):
            await run.acquire_step("any")  # acquisition finalises the cancellation
    elif status == "SUCCESS":
        await run.success({"done": True})
    elif status == "ERROR":
        await run.fail("broken")
    else:
        raise AssertionError(status)
    assert await run.status() == status
    return run


class _expect:
    def __init__(self, kind: type[BaseException]) -> None:
        self.kind = kind

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        assert kind is not None, f"expected {self.kind}"
        assert issubclass(kind, self.kind), f"expected {self.kind}, got {kind}"
        return True


async def message_of(store: pgqrs.Store, run: pgqrs.Run) -> pgqrs.QueueMessage:
    return await (await store.get_messages()).get(run.message_id)


async def message_row(store: pgqrs.Store, message_id: int) -> pgqrs.QueueMessage:
    db = store.db
    return (await store.messages.read(db, [await messages.get_row(db, message_id)]))[0]


async def step_row(store: pgqrs.Store, run: pgqrs.Run, name: str) -> pgqrs.StepRecord:
    rows = await (await store.get_workflow_steps()).list_by_run(run.id())
    [row] = [r for r in rows if r.step_name == name]
    return row


def at(moment: datetime, plus: float = 0.0) -> datetime:
    return moment + timedelta(seconds=plus)


def parse(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)
