"""Workflow definitions, triggers, `Admin.create_workflow` and the workflow table handles."""

from __future__ import annotations

import asyncio

import pytest

import pgqrs
import pgqrs.decorators
from tests.support.target import StoreFactory
from tests.support.workflows import WF, message_of


async def test_create_makes_the_definition_and_its_queue(store: pgqrs.Store) -> None:
    record = await pgqrs.workflow().name(WF).store(store).create()
    assert isinstance(record, pgqrs.WorkflowRecord)
    assert record.name == WF
    queue = await store.get_queue(WF)
    assert record.queue_id == queue.id
    assert await (await store.get_workflows()).get_by_name(WF) == record


async def test_create_is_idempotent_and_race_free(store: pgqrs.Store) -> None:
    first = await pgqrs.workflow().name(WF).store(store).id(99).create()
    again = await pgqrs.workflow().name(WF).store(store).create()
    racing = await asyncio.gather(
        *(pgqrs.workflow().name("raced").store(store).create() for _ in range(5))
    )
    assert again == first
    assert first.id != 99  # id() is accepted and ignored
    assert len({r.id for r in racing}) == 1
    assert [w.name for w in await (await store.get_workflows()).list()] == [WF, "raced"]
    assert await (await store.get_queues()).count() == 2


async def test_an_existing_queue_becomes_the_workflow_queue(store: pgqrs.Store) -> None:
    queue = await store.queue(WF)
    record = await pgqrs.workflow().name(WF).store(store).create()
    assert record.queue_id == queue.id


async def test_create_checks_its_arguments_before_writing(store: pgqrs.Store) -> None:
    with pytest.raises(ValueError, match="store is required"):
        await pgqrs.workflow().name(WF).create()
    with pytest.raises(ValueError, match="name is required"):
        await pgqrs.workflow().store(store).create()
    with pytest.raises(pgqrs.ValidationError, match="invalid workflow name 'no spaces'"):
        await pgqrs.workflow().name("no spaces").store(store).create()
    with pytest.raises(TypeError):
        pgqrs.workflow().name(7)  # type: ignore[arg-type]
    assert await (await store.get_queues()).count() == 0


async def test_trigger_enqueues_the_input_wrapped(
    store: pgqrs.Store, make_store: StoreFactory
) -> None:
    await pgqrs.workflow().name(WF).store(store).create()
    message = await pgqrs.workflow().name(WF).store(store).trigger({"order": 7}).execute()
    assert isinstance(message, pgqrs.QueueMessage)
    assert message.payload == {"order": 7}
    assert message.raw_payload == {"input": {"order": 7}}
    # No run yet, and no worker row: a trigger names no producer (semantics.md §9.5).
    assert await (await store.get_workflow_runs()).list() == []
    assert await (await store.get_workers()).list() == []
    assert message.producer_worker_id is None
    # A consumer sees the unwrapped input too, even from a fresh store (no cached knowledge).
    other = await make_store()
    consumer = await other.consumer(WF)
    [claimed] = await consumer.dequeue()
    assert claimed.payload == {"order": 7}


async def test_trigger_errors(store: pgqrs.Store) -> None:
    with pytest.raises(pgqrs.NotFoundError, match="Workflow 'missing' not found"):
        await pgqrs.workflow().name("missing").store(store).trigger(1).execute()
    with pytest.raises(pgqrs.SerializationError):
        pgqrs.workflow().name(WF).store(store).trigger({"bad": {1, 2}})
    with pytest.raises(ValueError, match="store is required"):
        await pgqrs.workflow().name(WF).trigger(1).execute()
    with pytest.raises(ValueError, match="name is required"):
        await pgqrs.workflow().store(store).trigger(1).execute()
    await pgqrs.workflow().name(WF).store(store).create()
    # Payload rules apply to the stored form {"input": X}: the wrapper is one level of depth.
    deep = [[[[["too deep"]]]]]
    with pytest.raises(pgqrs.ValidationError, match="Object depth"):
        await pgqrs.workflow().name(WF).store(store).trigger(deep).execute()
    assert await (await store.get_messages()).count() == 0
    assert await (await store.get_workers()).count() == 0


async def test_admin_create_workflow_creates_a_queued_run(store: pgqrs.Store) -> None:
    run = await pgqrs.admin(store).create_workflow(WF, {"n": 1})
    assert isinstance(run, pgqrs.Run)
    assert await run.status() == pgqrs.WorkflowStatus.Queued
    assert run.input == {"input": {"n": 1}}
    message = await message_of(store, run)
    assert message.payload == {"n": 1}
    assert message.producer_worker_id is None
    assert message.consumer_worker_id is None
    assert await (await store.get_workers()).count() == 0  # admin calls register nobody
    record = await (await store.get_workflow_runs()).get(run.id())
    assert record.message_id == message.id
    assert record.status == "QUEUED"
    assert record.input == {"input": {"n": 1}}


async def test_admin_create_workflow_without_arg(store: pgqrs.Store) -> None:
    with pytest.raises(RuntimeError, match="create_workflow in Python must have an arg"):
        await pgqrs.admin(store).create_workflow(WF)
    # The definition exists; nothing was enqueued.
    assert (await (await store.get_workflows()).get_by_name(WF)).name == WF
    assert await (await store.get_messages()).count() == 0


async def test_admin_create_workflow_validates_before_writing(store: pgqrs.Store) -> None:
    with pytest.raises(pgqrs.ValidationError, match="Forbidden key"):
        await pgqrs.admin(store).create_workflow(WF, {"__proto__": 1})
    with pytest.raises(pgqrs.ValidationError, match="invalid workflow name"):
        await pgqrs.admin(store).create_workflow("bad name", 1)
    assert await (await store.get_workflows()).list() == []


async def test_workflow_handles(store: pgqrs.Store) -> None:
    workflows = await store.get_workflows()
    with pytest.raises(pgqrs.NotFoundError, match="Workflow 'nope' not found"):
        await workflows.get_by_name("nope")
    with pytest.raises(pgqrs.NotFoundError, match="Run 12345 not found"):
        await (await store.get_workflow_runs()).get(12345)
    first = await pgqrs.admin(store).create_workflow(WF, 1)
    second = await pgqrs.admin(store).create_workflow(WF, 2)
    listed = await (await store.get_workflow_runs()).list()
    assert [r.id for r in listed] == [second.id(), first.id()]  # newest first
    await first.complete_step("b", 2)
    await first.complete_step("a", 1)
    steps = await store.get_workflow_steps()
    assert [s.step_name for s in await steps.list_by_run(first.id())] == ["b", "a"]
    assert [s.step_name for s in await steps.list()] == ["a", "b"]
    assert await steps.list_by_run(second.id()) == []


async def test_deleting_a_workflow_queue_is_refused(store: pgqrs.Store) -> None:
    await pgqrs.workflow().name(WF).store(store).create()
    with pytest.raises(pgqrs.ValidationError, match="workflow"):
        await pgqrs.admin(store).delete_queue(WF)


async def test_purging_a_workflow_queue_takes_runs_and_steps(store: pgqrs.Store) -> None:
    run = await pgqrs.admin(store).create_workflow(WF, 1)
    await run.complete_step("s", 1)
    assert await pgqrs.admin(store).purge_queue(WF) == 1
    assert await (await store.get_workflow_runs()).list() == []
    assert await (await store.get_workflow_steps()).list() == []


def test_public_names() -> None:
    assert pgqrs.WorkflowDef is pgqrs.decorators.WorkflowDef
    # Two different functions under one name (mypy knows; the assertion checks the exports).
    assert pgqrs.decorators.workflow is not pgqrs.workflow  # type: ignore[comparison-overlap]
    assert isinstance(pgqrs.workflow(), pgqrs.WorkflowBuilder)
    assert isinstance(pgqrs.run(), pgqrs.RunBuilder)
    assert isinstance(pgqrs.step(), pgqrs.StepBuilder)
    for name in ("Run", "StepResult", "StepGuard", "Workflows", "WorkflowRuns", "WorkflowSteps"):
        assert name in pgqrs.__all__
    assert "decorators" not in pgqrs.__all__
    with pytest.raises(TypeError):
        pgqrs.Run()
    with pytest.raises(TypeError):
        pgqrs.StepGuard()
