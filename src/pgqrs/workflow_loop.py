"""`handle_workflow`: running workflow runs from a poll loop (semantics §11). Not built yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .poller import Handler
from .types import QueueMessage

if TYPE_CHECKING:
    from .poller import Runner


class WorkflowSettler:
    def __init__(self, fn: Handler, *, reraise: bool = False) -> None:
        self.fn = fn
        self.reraise = reraise

    async def process(self, runner: Runner, claimed: list[QueueMessage]) -> None:
        raise NotImplementedError("handle_workflow arrives with the workflows issue")
