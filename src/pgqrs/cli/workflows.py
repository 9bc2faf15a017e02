"""`pgqrs workflow list|create|runs|show|steps|trigger|cancel|result|restart`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ..admin import Admin
from ..client import Store
from ..errors import TimeoutError
from ..records import RestartedRun, RunTimeline
from ..tables import runs as run_rows
from ..types import RunRecord, StepRecord, WorkflowRecord, WorkflowStatus
from ..workflows.builders import RunBuilder, WorkflowBuilder
from ..workflows.run import Run
from .context import CliError, json_option, wants_json, with_store
from .messages import parse_json
from .output import (
    add_row,
    ago,
    clock_time,
    compact,
    console,
    emit_json,
    note,
    plain,
    pretty,
    print_table,
    table,
    until,
)
from .signals import event, signal
from .timeline import moment, outcome, print_timeline

STATUSES = [s.db for s in WorkflowStatus]


def _summary(record: StepRecord) -> str:
    """What a step produced: its output, or its error."""
    if record.error is not None and record.status != WorkflowStatus.Success:
        return compact(record.error, 50)
    return "-" if record.output is None else compact(record.output, 50)


async def _run_handle(store: Store, run_id: int) -> Run:
    """The `Run` of a run id, through its trigger message (how the builders address runs)."""
    record = await run_rows.get(store.db, run_id)
    message = await (await store.get_messages()).get(record.message_id)
    return await RunBuilder().message(message).store(store).execute()


@click.group()
def workflow() -> None:
    """Durable workflows: definitions, runs and their steps."""


@workflow.command("list")
@json_option
def list_workflows() -> None:
    """Every workflow definition."""

    async def work(store: Store) -> tuple[list[WorkflowRecord], datetime]:
        return await (await store.get_workflows()).list(), store.clock.now()

    found, now = with_store(work)
    if wants_json():
        emit_json(found)
        return
    out = table("ID", "Name", "Created", right=("ID",), flex=("Name",))
    for w in found:
        add_row(out, w.id, w.name, ago(w.created_at, now))
    print_table(out, "No workflows yet.")


@workflow.command("create")
@click.argument("name")
@json_option
def create(name: str) -> None:
    """Define the workflow NAME (and its queue); idempotent. `pgqrs run --workflow` does it too."""
    record = with_store(lambda store: WorkflowBuilder().name(name).store(store).create())
    if wants_json():
        emit_json(record)
    else:
        note(f"Workflow '{record.name}' ready (id {record.id})")


def _run_json(record: RunRecord, names: dict[int, str]) -> dict[str, Any]:
    data: dict[str, Any] = plain(record)
    data["workflow"] = names.get(record.workflow_id)
    return data


@workflow.command("runs")
@click.argument("name", required=False)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES, case_sensitive=False),
    help="Only runs in this status (repeatable).",
)
@click.option(
    "--since",
    metavar="TIME",
    help="Only runs created at or after TIME: ISO 8601 (UTC without an offset) or a "
    "duration before now (90s, 15m, 2h, 7d).",
)
@click.option(
    "--until", "until_", metavar="TIME", help="Only runs created before TIME (as --since)."
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
def runs(
    name: str | None,
    statuses: tuple[str, ...],
    since: str | None,
    until_: str | None,
    limit: int,
) -> None:
    """Runs of the workflow NAME (or of every workflow), newest first."""

    async def work(store: Store) -> tuple[list[RunRecord], dict[int, str], datetime]:
        now = store.clock.now()
        start = None if since is None else moment(since, now, "--since")
        end = None if until_ is None else moment(until_, now, "--until")
        found = await Admin(store).list_runs(
            name, status=list(statuses) or None, since=start, until=end, limit=limit
        )
        names = {w.id: w.name for w in await (await store.get_workflows()).list()}
        return found, names, now

    found, names, now = with_store(work)
    if wants_json():
        emit_json([_run_json(r, names) for r in found])
        return
    out = table(
        "Run",
        "Workflow",
        "Status",
        "Message",
        "Created",
        "Updated",
        "Result",
        right=("Run", "Message"),
        flex=("Workflow", "Result"),
    )
    for r in found:
        add_row(
            out,
            r.id,
            names.get(r.workflow_id, r.workflow_id),
            r.status,
            r.message_id,
            ago(r.created_at, now),
            ago(r.updated_at, now),
            outcome(r),
        )
    print_table(out, "No runs.")


@workflow.command("show")
@click.argument("run_id", type=int)
@json_option
def show(run_id: int) -> None:
    """Run RUN_ID: its steps (attempts, errors, durations), signals, events and child runs."""

    async def work(store: Store) -> tuple[RunTimeline, dict[int, str], datetime]:
        found = await Admin(store).run_timeline(run_id)
        names = {w.id: w.name for w in await (await store.get_workflows()).list()}
        return found, names, store.clock.now()

    found, names, now = with_store(work)
    if wants_json():
        data: dict[str, Any] = plain(found)
        data["children"] = [_run_json(c, names) for c in found.children]
        emit_json(data)
        return
    print_timeline(found, names, now)


@workflow.command("restart")
@click.argument("run_id", type=int)
@click.option(
    "--from-step",
    metavar="NAME",
    help="Run this step and every later one again (default: the first failed step, else "
    "the first step).",
)
@json_option
def restart(run_id: int, from_step: str | None) -> None:
    """Run the finished run RUN_ID again from a step: the earlier steps' results are kept; a
    worker of its workflow picks it up."""
    done: RestartedRun = with_store(lambda store: Admin(store).restart_run(run_id, from_step))
    if wants_json():
        emit_json(
            {
                "run_id": run_id,
                "status": str(done.run.status),
                "from_step": done.from_step,
                "kept_steps": list(done.kept_steps),
                "removed_steps": list(done.removed_steps),
                "redelivered_signals": done.redelivered_signals,
            }
        )
        return
    start = f"step '{done.from_step}'" if done.from_step else "the beginning"
    note(
        f"Run {run_id} restarted from {start}: {len(done.kept_steps)} step(s) kept, "
        f"{len(done.removed_steps)} to run again; it is {done.run.status} until a worker of "
        "its workflow picks it up"
    )


@workflow.command("steps")
@click.argument("run_id", type=int)
@json_option
def steps(run_id: int) -> None:
    """The steps of run RUN_ID in the order they started, with their outcome."""

    async def work(store: Store) -> tuple[RunRecord, list[StepRecord], datetime]:
        record = await (await store.get_workflow_runs()).get(run_id)
        found = await (await store.get_workflow_steps()).list_by_run(run_id)
        return record, found, store.clock.now()

    record, found, now = with_store(work)
    if wants_json():
        emit_json({"run": record, "steps": found})
        return
    out = table(
        "Step",
        "Status",
        "Retries",
        "Started",
        "Completed",
        "Result",
        right=("Retries",),
        flex=("Result",),
        title=f"Run {record.id}: {record.status}",
    )
    for s in found:
        retry = f"{s.retry_count} (next {until(s.retry_at, now)})" if s.retry_at else s.retry_count
        add_row(
            out,
            s.step_name,
            s.status,
            retry,
            clock_time(s.started_at),
            clock_time(s.completed_at),
            _summary(s),
        )
    print_table(out, f"Run {record.id} ({record.status}) has no steps yet.")


@workflow.command("trigger")
@click.argument("name")
@click.argument("input_json", metavar="INPUT_JSON")
@json_option
def trigger(name: str, input_json: str) -> None:
    """Start a run of the workflow NAME with INPUT_JSON as its input."""
    value = parse_json(input_json, "input")

    async def work(store: Store) -> Run:
        builder = WorkflowBuilder().name(name).store(store)
        message = await builder.trigger(value).execute()
        # The run row now, rather than when a worker first sees the trigger, so that its id
        # can be printed and followed (`pgqrs workflow steps RUN_ID`).
        return await RunBuilder().message(message).store(store).execute()

    run = with_store(work)
    if wants_json():
        emit_json({"workflow": name, "run_id": run.id(), "message_id": run.message_id})
    else:
        note(f"Triggered workflow '{name}': run {run.id()} (message {run.message_id})")


@workflow.command("cancel")
@click.argument("run_id", type=int)
@json_option
def cancel(run_id: int) -> None:
    """Ask run RUN_ID to stop; it is cancelled at its next step."""

    async def work(store: Store) -> WorkflowStatus:
        run = await _run_handle(store, run_id)
        await run.cancel()
        return await run.status()

    status = with_store(work)
    if wants_json():
        emit_json({"run_id": run_id, "status": str(status)})
    else:
        note(f"Run {run_id}: cancellation requested ({status})")


@workflow.command("result")
@click.argument("run_id", type=int)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    help="Wait up to this many seconds for the run to finish.",
)
@json_option
def result(run_id: int, wait: float | None) -> None:
    """The output of run RUN_ID; an error if it failed, was cancelled or has not finished."""

    async def work(store: Store) -> tuple[Any, WorkflowStatus]:
        run = await _run_handle(store, run_id)
        message = await (await store.get_messages()).get(run.message_id)
        builder = RunBuilder().message(message).store(store)
        if wait is not None:
            try:
                output = await builder.result(timeout=wait)
            except TimeoutError as err:
                status = await run.status()
                raise CliError(f"Run {run_id} is still {status} after {wait:g}s") from err
            return output, await run.status()
        status = await run.status()
        if not status.is_terminal:
            raise CliError(
                f"Run {run_id} has not finished (status {status}); "
                "use --wait SECONDS to wait for it"
            )
        return await builder.get(), status

    output, status = with_store(work)
    if wants_json():
        emit_json({"run_id": run_id, "status": str(status), "output": output})
    else:
        console().print(pretty(output), markup=False)


workflow.add_command(signal)
workflow.add_command(event)

COMMANDS = [workflow]
