"""`Admin.create_workflow`: a definition, one trigger and its run, without a producer row."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .builders.workflow import create_definition, trigger_payload
from .store.wakeup import queue_key
from .tables import messages, runs
from .validation import validate_queue_name
from .workflow_run import Run

if TYPE_CHECKING:
    from .store.facade import Store


async def create_workflow(store: Store, name: str, arg: Any) -> Run:
    """Semantics §12.3: the trigger is validated like any payload but not rate limited (no
    producer), and the message stays pending for a `handle_workflow` loop to pick up."""
    validate_queue_name(name, "workflow")
    text = None if arg is None else trigger_payload(store, arg)
    definition = await create_definition(store, name)
    if text is None:
        raise RuntimeError("create_workflow in Python must have an arg to trigger a run")
    now = store.clock.now()
    async with store.db.transaction() as db:
        [message_id] = await messages.enqueue(db, definition.queue_id, None, [text], now)
        record = await runs.get_or_create(db, message_id, definition.queue_id, {"input": arg}, now)
    store.wakeups.notify(queue_key(definition.queue_id))
    return Run._wrap(store, record)
