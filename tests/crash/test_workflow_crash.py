"""A worker process dies (SIGKILL) in the middle of a workflow; another one finishes it.

Finished steps never run again: steps 1-2 ran exactly once, step 3 started twice (the first
time its process died) and completed once, steps 4-5 ran once, and `result()` gives the output.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import pgqrs
from tests.support.target import Target
from tests.support.workflows import effects, message_of, spawn_worker, stop_worker, wait_for_exit

LEASE = 1.0  # the survivor takes over once the dead worker's lease has lapsed


@pytest.mark.slow
async def test_a_killed_worker_is_resumed_by_another(
    store: pgqrs.Store, target: Target, tmp_path: Path
) -> None:
    run = await pgqrs.admin(store).create_workflow("crash", {"n": 4})

    first = spawn_worker(target.env(), "crash", tmp_path, LEASE)
    assert await wait_for_exit(first, 20) == -signal.SIGKILL

    # The crash left the run where it was: two steps done, the third one in progress.
    assert await run.status() == "RUNNING"
    steps = {s.step_name: s for s in await (await store.get_workflow_steps()).list_by_run(run.id())}
    assert {name: s.status for name, s in steps.items()} == {
        "step1": "SUCCESS",
        "step2": "SUCCESS",
        "step3": "RUNNING",
    }
    held = await message_of(store, run)
    assert held.consumer_worker_id is not None
    assert held.archived_at is None

    second = spawn_worker(target.env(), "crash", tmp_path, LEASE)
    try:
        builder = pgqrs.run().message(held).store(store)
        assert await builder.result(timeout=20) == {"total": ((4 + 1) * 10 + 3) * 2}
    finally:
        assert await stop_worker(second) == 0

    rid = run.id()
    assert effects(tmp_path) == {
        (rid, "step1"): 1,
        (rid, "step2"): 1,
        (rid, "step3 start"): 2,
        (rid, "step3 done"): 1,
        (rid, "step4"): 1,
        (rid, "step5"): 1,
    }
    finished = await (await store.get_workflow_steps()).list_by_run(rid)
    assert [(s.step_name, s.status) for s in finished] == [
        (f"step{i}", pgqrs.WorkflowStatus.Success) for i in range(1, 6)
    ]
    settled = await message_of(store, run)
    assert settled.archived_at is not None
    assert settled.consumer_worker_id != held.consumer_worker_id  # the survivor settled it
    # The dead worker's row still says polling (only reclaim would stop it); the survivor's
    # loop ended through its interrupt.
    assert held.consumer_worker_id is not None
    dead = await (await store.get_workers()).get(held.consumer_worker_id)
    assert dead.status == pgqrs.WorkerStatus.Polling
    assert settled.consumer_worker_id is not None
    survivor = await (await store.get_workers()).get(settled.consumer_worker_id)
    assert survivor.status == pgqrs.WorkerStatus.Suspended
