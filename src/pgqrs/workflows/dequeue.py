"""`pgqrs.DequeueBuilder`: the poll-loop builder of `pgqrs.queue.builder`, with workflow runs
as handlers too (`handle_workflow`): the settler of those lives in this layer."""

from __future__ import annotations

from ..queue.builder import BaseDequeueBuilder
from ..queue.loop import Handler, Settler
from .loop import WorkflowSettler


class DequeueBuilder(BaseDequeueBuilder):
    """Setters change the builder in place and return it; `poll`, `fetch`, `execute` run it."""

    def _workflow_settler(self, fn: Handler, *, reraise: bool) -> Settler:
        return WorkflowSettler(fn, reraise=reraise)


def dequeue_builder() -> DequeueBuilder:
    return DequeueBuilder()
