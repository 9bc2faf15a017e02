"""`pgqrs workflow restart|show` and `workflow runs --since/--until` (semantics.md §19)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pgqrs
from pgqrs.decorators import step, workflow
from tests.support.cli import Cli
from tests.support.clocks import FixedClock

calls: Counter[str] = Counter()
broken: set[str] = set()


@step
async def fetch(run: pgqrs.Run, n: int) -> int:
    calls["fetch"] += 1
    return n + 1


@step
async def store_it(run: pgqrs.Run, n: int) -> int:
    calls["store_it"] += 1
    if "store_it" in broken:
        broken.discard("store_it")
        raise RuntimeError("disk full")
    return n * 2


@workflow(name="etl")
async def etl(run: pgqrs.Run, n: int) -> int:
    await run.set_event("stage", "fetched")
    return await store_it(run, await fetch(run, n))


def deliver(store: pgqrs.Store) -> Awaitable[int]:
    """One claim of a worker of `etl`, in this process."""

    async def work() -> int:
        consumer = await store.consumer("etl")
        try:
            return await pgqrs.dequeue().worker(consumer).handle_workflow(etl).execute(store)
        except RuntimeError:  # execute() re-raises what the workflow raised, once settled
            return 1
        finally:
            await consumer.shutdown()

    return work()


def test_restart_run_from_the_command_line(cli: Cli) -> None:
    calls.clear()
    broken.add("store_it")
    cli.ok("workflow", "create", "etl")
    run_id = cli.json("workflow", "trigger", "etl", "4")["run_id"]
    cli.lib(deliver)
    assert (
        cli.fails("workflow", "result", str(run_id)) == f'Workflow run {run_id} failed: "disk full"'
    )

    assert cli.fails("workflow", "restart", str(run_id), "--from-step", "load") == (
        f"Step 'load' of run {run_id} not found; its steps, in the order they started: "
        "'fetch', 'store_it'"
    )
    done = cli.json("workflow", "restart", str(run_id))
    assert done == {
        "run_id": run_id,
        "status": "QUEUED",
        "from_step": "store_it",
        "kept_steps": ["fetch"],
        "removed_steps": ["store_it"],
        "redelivered_signals": 0,
    }
    assert cli.fails("workflow", "restart", str(run_id)) == (
        f"Run {run_id} is QUEUED: only a finished run (SUCCESS, ERROR or CANCELLED) can be "
        "restarted; wait for it to finish, or cancel it and restart it once it is CANCELLED"
    )
    cli.lib(deliver)
    assert calls == Counter({"fetch": 1, "store_it": 2})
    assert cli.json("workflow", "result", str(run_id))["output"] == 10

    text = cli.ok("workflow", "restart", str(run_id), "--from-step", "fetch").stdout
    assert f"Run {run_id} restarted from step 'fetch': 0 step(s) kept, 2 to run again" in text
    cli.lib(deliver)
    assert calls == Counter({"fetch": 2, "store_it": 3})
    assert cli.fails("workflow", "restart", "999") == "Run 999 not found"


def test_show_prints_the_timeline(cli: Cli) -> None:
    calls.clear()
    broken.add("store_it")
    cli.ok("workflow", "create", "etl")
    run_id = cli.json("workflow", "trigger", "etl", "1")["run_id"]

    async def signal(store: pgqrs.Store) -> int:
        return await pgqrs.send_signal(store, run_id, "note", {"from": "ops"})

    cli.lib(signal)
    cli.lib(deliver)
    shown = cli.json("workflow", "show", str(run_id))
    assert (shown["run"]["status"], shown["workflow"]) == ("ERROR", "etl")
    steps = [(s["step_name"], s["status"], s["attempts"]) for s in shown["steps"]]
    assert steps == [("fetch", "SUCCESS", 1), ("store_it", "ERROR", 1)]
    assert shown["steps"][1]["last_error"]["message"] == '"disk full"'
    [note] = shown["signals"]
    assert (note["topic"], note["payload"], note["consumed_at"]) == ("note", {"from": "ops"}, None)
    assert [(e["key"], e["value"]) for e in shown["events"]] == [("stage", "fetched")]
    assert shown["children"] == []

    table = cli.ok("workflow", "show", str(run_id)).stdout
    for text in (f"Run {run_id}", "ERROR", "fetch", "store_it", "disk full", "Signals", "note"):
        assert text in table, text
    assert "stage" in table
    assert cli.fails("workflow", "show", "999") == "Run 999 not found"


def test_runs_since_and_until(cli: Cli) -> None:
    cli.ok("workflow", "create", "etl")
    t0 = datetime(2030, 1, 1, tzinfo=UTC)

    def at(hours: int) -> Callable[[pgqrs.Store], Awaitable[Any]]:
        async def work(store: pgqrs.Store) -> int:
            store.clock = FixedClock(t0 + timedelta(hours=hours))
            return (await pgqrs.admin(store).create_workflow("etl", hours)).id()

        return work

    first, second, third = (cli.lib(at(h)) for h in (0, 1, 2))
    found = cli.json("workflow", "runs", "--since", "2030-01-01T01:00:00Z")
    assert [r["id"] for r in found] == [third, second]
    found = cli.json("workflow", "runs", "--until", "2030-01-01T01:00:00")  # UTC
    assert [r["id"] for r in found] == [first]
    found = cli.json("workflow", "runs", "etl", "--since", "2030-01-01T00:30:00+00:00")
    assert [r["id"] for r in found] == [third, second]
    # Durations count back from now: these runs were created years ahead of it.
    assert [r["id"] for r in cli.json("workflow", "runs", "--since", "1h")] == [
        third,
        second,
        first,
    ]
    assert cli.json("workflow", "runs", "--until", "1d") == []
    result = cli("workflow", "runs", "--since", "yesterday")
    assert result.exit_code == 2
    assert "is neither an ISO 8601 time" in result.output
    assert cli.fails("workflow", "runs", "--since", "2030-01-02", "--until", "2030-01-01") == (
        "Validation failed: since (2030-01-02T00:00:00+00:00) must be before until "
        "(2030-01-01T00:00:00+00:00)"
    )
