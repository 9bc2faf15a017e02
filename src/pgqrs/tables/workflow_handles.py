"""The table handles of `store.get_workflows()`, `get_workflow_runs()`, `get_workflow_steps()`
(api.md §10). A handle holds no data: every call reads live rows."""

from __future__ import annotations

from ..types import RunRecord, StepRecord, WorkflowRecord
from ..validation import validate_queue_name
from . import runs, steps, workflows
from .handles import _Handle


class Workflows(_Handle):
    async def get_by_name(self, name: str) -> WorkflowRecord:
        validate_queue_name(name, "workflow")
        return await workflows.get_by_name(self._store.db, name)

    async def list(self) -> list[WorkflowRecord]:
        """By id."""
        return await workflows.list_all(self._store.db)


class WorkflowRuns(_Handle):
    async def list(self) -> list[RunRecord]:
        """Newest `created_at` first, ties by id descending."""
        return await runs.list_all(self._store.db)

    async def get(self, run_id: int) -> RunRecord:
        return await runs.get(self._store.db, run_id)


class WorkflowSteps(_Handle):
    # Defined before `list`, whose name would otherwise shadow the builtin in the annotation.
    async def list_by_run(self, run_id: int) -> list[StepRecord]:
        """By id."""
        return await steps.list_by_run(self._store.db, run_id)

    async def list(self) -> list[StepRecord]:
        """Newest `created_at` first, ties by id descending."""
        return await steps.list_all(self._store.db)
