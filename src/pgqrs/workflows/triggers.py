"""Workflow definitions and the triggers enqueued for them: what the builders, the admin and
child runs share (semantics.md §12.1-12.2)."""

from __future__ import annotations

from typing import Any

from ..errors import QueueNotFoundError
from ..records import QueueSettings
from ..tables import queues, workflows
from ..tables.context import Context
from ..types import WorkflowRecord
from ..validation import PayloadRules, encode_payloads


async def lookup_definition(store: Context, name: str) -> WorkflowRecord:
    record = await workflows.get_by_name(store.db, name)
    store.messages.remember_workflow_queue(record.queue_id)
    return record


async def create_definition(store: Context, name: str) -> WorkflowRecord:
    async with store.db.transaction() as db:
        record = await workflows.get_or_create(
            db, name, store.clock.now(), store.settings.max_read_ct
        )
    store.messages.remember_workflow_queue(record.queue_id)
    return record


async def trigger_rules(store: Context, name: str) -> PayloadRules:
    """The payload rules of a trigger of workflow `name`: its queue's own limits, else the
    store's Config (semantics.md §7.6); Config's alone while the queue does not exist yet."""
    try:
        found = await queues.settings_by_name(store.db, name)
    except QueueNotFoundError:
        found = QueueSettings(queue_name=name, max_read_ct=None)
    return PayloadRules.for_queue(store.settings, found)


def trigger_payload(rules: PayloadRules, value: Any) -> str:
    """The stored text of a trigger, `{"input": X}`, checked like any payload under `rules`
    (`trigger_rules`; semantics.md §8.1)."""
    return encode_payloads([{"input": value}], rules, batch=False)[0]
