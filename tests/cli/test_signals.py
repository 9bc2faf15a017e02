"""`pgqrs workflow signal` and `pgqrs workflow event` (semantics.md §18.1-18.2)."""

from __future__ import annotations

from typing import Any

import pgqrs
from pgqrs.decorators import workflow
from tests.support.cli import Cli


def test_signal_and_event_commands(cli: Cli) -> None:
    cli.ok("workflow", "create", "wf")
    cli.ok("workflow", "trigger", "wf", "1")

    @workflow(name="wf")
    async def flow(run: pgqrs.Run, _: Any) -> Any:
        got = await run.recv("go")
        assert got is not None
        await run.set_event("seen", got.payload)
        return got.payload

    async def deliver(store: pgqrs.Store) -> int:
        consumer = await store.consumer("wf")
        return await pgqrs.dequeue().worker(consumer).handle_workflow(flow).execute(store)

    async def first_run(store: pgqrs.Store) -> int:
        [record] = await (await store.get_workflow_runs()).list()
        return record.id

    assert cli.lib(deliver) == 1  # the run waits for its signal
    run_id = str(cli.lib(first_run))
    assert "has no event 'seen'" in cli.fails("workflow", "event", run_id, "seen")
    sent = cli.json("workflow", "signal", run_id, "go", '{"ok": true}')
    assert sent["run_id"] == int(run_id)
    assert sent["signal_id"] >= 1
    assert cli.lib(deliver) == 1
    assert cli.ok("workflow", "event", run_id, "seen").stdout.strip() == '{"ok":true}'
    assert cli.json("workflow", "event", run_id, "seen")["value"] == {"ok": True}
    assert "signals go only to runs that have not finished" in cli.fails(
        "workflow", "signal", run_id, "go"
    )
    assert "Invalid JSON payload" in cli.fails("workflow", "signal", run_id, "go", "{")
    assert "not found" in cli.fails("workflow", "signal", "999", "go")
