"""`pgqrs.decorators`: the `@workflow` and `@step` decorators (api.md §13), under the module
name pgqrs programs import them from; they live in `pgqrs.workflows.decorators`."""

from __future__ import annotations

from .workflows.decorators import WorkflowDef, step, workflow

__all__ = ["WorkflowDef", "step", "workflow"]
