"""`pgqrs workflow list|create|trigger|runs|steps|cancel|result`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pgqrs
from tests.support import cli_handlers
from tests.support.cli import Cli


def execute(fn: Any, queue: str) -> Callable[[pgqrs.Store], Awaitable[int]]:
    """One claim of a workflow worker (in-process), as `pgqrs run --workflow` would do."""

    async def work(store: pgqrs.Store) -> int:
        consumer = await store.consumer(queue)
        builder = pgqrs.dequeue().worker(consumer).handle_workflow(fn)
        try:
            return await builder.execute(store)
        except RuntimeError:  # execute() re-raises what the workflow raised, once settled
            return 1
        finally:
            await consumer.shutdown()

    return work


def test_trigger_run_and_read_the_result(cli: Cli) -> None:
    created = cli.json("workflow", "create", "greet")
    assert created["name"] == "greet"
    assert [w["name"] for w in cli.json("workflow", "list")] == ["greet"]
    triggered = cli.json("workflow", "trigger", "greet", '{"name": "ada"}')
    run_id = triggered["run_id"]
    assert triggered["workflow"] == "greet"
    [queued] = cli.json("workflow", "runs")
    assert (queued["id"], queued["status"], queued["workflow"]) == (run_id, "QUEUED", "greet")
    assert queued["input"] == {"input": {"name": "ada"}}
    assert cli.fails("workflow", "result", str(run_id)) == (
        f"Run {run_id} has not finished (status QUEUED); use --wait SECONDS to wait for it"
    )
    assert cli.fails("workflow", "result", str(run_id), "--wait", "0.05") == (
        f"Run {run_id} is still QUEUED after 0.05s"
    )
    assert cli.json("workflow", "steps", str(run_id))["steps"] == []

    assert cli.lib(execute(cli_handlers.greet, "greet")) == 1
    assert cli.json("workflow", "result", str(run_id)) == {
        "run_id": run_id,
        "status": "SUCCESS",
        "output": "hello ADA",
    }
    assert cli.ok("workflow", "result", str(run_id), "--wait", "1").stdout == '"hello ADA"\n'
    shown = cli.json("workflow", "steps", str(run_id))
    assert shown["run"]["status"] == "SUCCESS"
    assert [(s["step_name"], s["status"], s["output"]) for s in shown["steps"]] == [
        ("shout", "SUCCESS", "ADA")
    ]
    table = cli.ok("workflow", "steps", str(run_id)).stdout
    assert f"Run {run_id}: SUCCESS" in table
    assert '"ADA"' in table
    assert "SUCCESS" in cli.ok("workflow", "runs", "greet").stdout
    assert cli.fails("workflow", "cancel", str(run_id)) == (
        f"Invalid state transition from SUCCESS to CANCELLING: run {run_id} is already finished"
    )


def test_runs_filters(cli: Cli) -> None:
    cli.ok("workflow", "create", "greet")
    cli.ok("workflow", "create", "doomed")
    first = cli.json("workflow", "trigger", "greet", '{"name": "a"}')["run_id"]
    cli.lib(execute(cli_handlers.greet, "greet"))
    second = cli.json("workflow", "trigger", "greet", '{"name": "b"}')["run_id"]
    third = cli.json("workflow", "trigger", "doomed", '{"name": "c"}')["run_id"]

    assert [r["id"] for r in cli.json("workflow", "runs")] == [third, second, first]
    assert [r["id"] for r in cli.json("workflow", "runs", "greet")] == [second, first]
    assert [r["id"] for r in cli.json("workflow", "runs", "--status", "queued")] == [third, second]
    assert [
        r["id"] for r in cli.json("workflow", "runs", "--status", "SUCCESS", "--status", "QUEUED")
    ] == [third, second, first]
    assert [r["id"] for r in cli.json("workflow", "runs", "greet", "--limit", "1")] == [second]
    assert cli.fails("workflow", "runs", "nope") == "Workflow 'nope' not found"


def test_failed_and_cancelled_runs(cli: Cli) -> None:
    cli.ok("workflow", "create", "doomed")
    cli.ok("workflow", "create", "greet")
    doomed = cli.json("workflow", "trigger", "doomed", '{"name": "x"}')["run_id"]
    cli.lib(execute(cli_handlers.doomed, "doomed"))
    assert cli.fails("workflow", "result", str(doomed)) == (
        f'Workflow run {doomed} failed: "no greeting for you"'
    )
    [failed] = cli.json("workflow", "runs", "--status", "ERROR")
    assert failed["error"] == "no greeting for you"

    run_id = cli.json("workflow", "trigger", "greet", '{"name": "y"}')["run_id"]
    assert cli.json("workflow", "cancel", str(run_id)) == {
        "run_id": run_id,
        "status": "CANCELLING",
    }
    assert "cancellation requested (CANCELLING)" in cli.ok("workflow", "cancel", str(run_id)).stdout
    cli.lib(execute(cli_handlers.greet, "greet"))  # the worker finalises the cancellation
    assert cli.fails("workflow", "result", str(run_id)) == f"Workflow cancelled for run {run_id}"


def test_workflow_errors(cli: Cli) -> None:
    assert cli.fails("workflow", "trigger", "nope", "{}") == "Workflow 'nope' not found"
    cli.ok("workflow", "create", "greet")
    error = cli.fails("workflow", "trigger", "greet", "{oops")
    assert error.startswith("Invalid JSON input: ")
    assert cli.fails("workflow", "steps", "999") == "Run 999 not found"
    assert cli.fails("workflow", "cancel", "999") == "Run 999 not found"
    assert cli.fails("workflow", "result", "999") == "Run 999 not found"
    assert "No workflows yet." not in cli.ok("workflow", "list").stdout
    assert "No runs." in cli.ok("workflow", "runs").stdout
