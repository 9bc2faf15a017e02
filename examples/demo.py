"""`make demo`: the pgqrs story in under a minute, told with the `pgqrs` command line.

1. Install the schema in a fresh ./pgqrs.db (the embedded SQLite default) and create a queue.
2. Bulk-send 10,000 jobs from a JSON Lines file (with a progress bar).
3. Drain them with `pgqrs run examples.tasks:handle --concurrency 4`, stopped with SIGTERM
   once the queue is empty, and show `pgqrs queue metrics`.
4. Trigger a workflow, kill its worker (SIGKILL) in the middle of a step, resume the run with a
   second worker and show with `pgqrs workflow steps` that the finished step did not run again.

Every command is run exactly as printed (`python -m pgqrs` is the `pgqrs` script); the
database stays behind for you to explore: `pgqrs queue list`, `pgqrs workflow runs`, ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import pgqrs

ROOT = Path(__file__).resolve().parents[1]
DSN = "sqlite://pgqrs.db"  # the command line's default: ./pgqrs.db
console = Console(highlight=False)

# The demo is about the embedded default: a PGQRS_DSN in your shell must not redirect it.
ENV = {k: v for k, v in os.environ.items() if k not in ("PGQRS_DSN", "PGQRS_SCHEMA")}
ENV["PGQRS_DEMO_EMAIL_SECONDS"] = "2"
# `examples.tasks` is importable from the repository root, wherever the demo runs.
ENV["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)


class Demo:
    """Where the demo runs (its working directory holds ./pgqrs.db) and how big it is."""

    def __init__(self, workdir: Path, jobs: int) -> None:
        self.workdir = workdir
        self.db = workdir / "pgqrs.db"
        self.jobs = jobs


DEMO = Demo(ROOT, 10_000)


def title(text: str) -> None:
    console.print()
    console.rule(f"[bold cyan]{text}", align="left")


def show(args: list[str]) -> None:
    console.print(f"[bold green]$[/] pgqrs {shlex.join(args)}")


def pgqrs_cmd(*args: str) -> str:
    """Run `pgqrs ARGS` to completion in front of the reader; its stdout, also returned."""
    show(list(args))
    done = subprocess.run(
        [sys.executable, "-m", "pgqrs", *args],
        cwd=DEMO.workdir,
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    sys.stdout.write(done.stdout)
    sys.stdout.flush()
    if done.returncode != 0:
        raise SystemExit(f"demo: `pgqrs {shlex.join(args)}` failed ({done.returncode})")
    return done.stdout


def start(*args: str, stderr: int | None = None, **popen: object) -> subprocess.Popen[bytes]:
    """Start `pgqrs ARGS` in the background (a worker)."""
    show(list(args))
    return subprocess.Popen(
        [sys.executable, "-m", "pgqrs", *args], cwd=DEMO.workdir, env=ENV, stderr=stderr
    )


async def wait_for(check: Callable[[], Awaitable[bool]], within: float) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: gave up after {within}s")
        await asyncio.sleep(0.25)


def stop(worker: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    worker.send_signal(sig)
    return worker.wait(timeout=30)


# -- 1-3: a queue ----------------------------------------------------------------------------
async def queue_story(store: pgqrs.Store, scratch: Path) -> None:
    title("1. Install the schema and create a queue")
    pgqrs_cmd("install")
    pgqrs_cmd("queue", "create", "jobs")

    jobs_count = DEMO.jobs
    title(f"2. Send {jobs_count:,} jobs from a JSON Lines file")
    jobs = scratch / "jobs.jsonl"
    with jobs.open("w") as out:
        for n in range(jobs_count):
            out.write(json.dumps({"job": n, "rounds": 20}) + "\n")
    pgqrs_cmd("send", "jobs", "--file", str(jobs))

    title("3. Drain them with 4 consumers in one worker process")
    log = scratch / "worker.log"
    with log.open("wb") as log_file:
        worker = start(
            "run", "examples.tasks:handle", "--queue", "jobs", "--concurrency", "4",
            stderr=log_file.fileno(),
        )  # fmt: skip
        admin = pgqrs.admin(store)
        with Progress(
            TextColumn("[bold]draining jobs"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("drain", total=jobs_count)

            async def drained() -> bool:
                m = await admin.queue_metrics("jobs")
                progress.update(task, completed=m.archived_messages)
                return m.archived_messages >= jobs_count

            await wait_for(drained, within=120)
        console.print("queue empty: [bold]SIGTERM[/] to the worker (it finishes, then stops)")
        code = stop(worker, signal.SIGTERM)
    lines = log.read_text().splitlines()
    console.print(f"[dim]worker log: {len(lines):,} lines, the last ones:[/]")
    for line in lines[-2:]:
        console.print(f"  {line}", markup=False, style="dim")
    console.print(f"worker exited with status {code}")
    pgqrs_cmd("queue", "metrics", "jobs")
    pgqrs_cmd("worker", "list", "--queue", "jobs", "--all")


# -- 4: a workflow survives a crash ----------------------------------------------------------
async def workflow_story(store: pgqrs.Store) -> None:
    title("4. A workflow survives a crash")
    pgqrs_cmd("workflow", "create", "onboarding")
    out = pgqrs_cmd("--json", "workflow", "trigger", "onboarding", '{"email": "ada@example.com"}')
    run_id = json.loads(out)["run_id"]
    steps = await store.get_workflow_steps()

    async def emailing() -> bool:
        return any(
            s.step_name == "send_welcome_email" and s.status == pgqrs.WorkflowStatus.Running
            for s in await steps.list_by_run(run_id)
        )

    first = start("run", "examples.tasks:onboarding", "--log-level", "WARNING")
    await wait_for(emailing, within=30)
    first.send_signal(signal.SIGKILL)
    first.wait()
    console.print("[bold red]SIGKILL[/] to the worker in the middle of send_welcome_email")
    pgqrs_cmd("workflow", "steps", str(run_id))

    console.print(
        "The dead worker still holds the run's trigger message, under a lease: live workers "
        "get it back when the lease ends (30 s). The demo does not wait: an operator who knows "
        "the worker is dead takes its messages back at once:"
    )
    pgqrs_cmd("worker", "reclaim", "--queue", "onboarding", "--older-than", "0", "--force")
    second = start("run", "examples.tasks:onboarding")
    pgqrs_cmd("workflow", "result", str(run_id), "--wait", "30")
    stop(second, signal.SIGTERM)
    pgqrs_cmd("workflow", "steps", str(run_id))
    console.print(
        "[bold]create_account[/] ran once, in the first worker: the second one got its stored "
        "result back and resumed at send_welcome_email, the step that was cut off "
        "(steps run at least once, and are recorded exactly once)."
    )


async def main() -> None:
    started = time.monotonic()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DEMO.db}{suffix}").unlink(missing_ok=True)
    console.print(
        f"[bold]pgqrs demo[/]: a fresh {DEMO.db.name} in {DEMO.workdir} (the default DSN, {DSN})"
    )
    with tempfile.TemporaryDirectory(prefix="pgqrs-demo-") as scratch:
        await queue_story_then_workflow(Path(scratch))
    title(f"Done in {time.monotonic() - started:.0f} s")
    console.print("Explore: [bold]pgqrs queue list[/], [bold]pgqrs workflow runs[/], "
                  "[bold]pgqrs top[/] (while a worker runs), [bold]pgqrs --help[/]")  # fmt: skip


async def queue_story_then_workflow(scratch: Path) -> None:
    pgqrs_cmd("--version")
    # The commands run in their own processes; this connection only watches the progress.
    store = await pgqrs.connect(f"sqlite://{DEMO.db}")
    try:
        await queue_story(store, scratch)
        await workflow_story(store)
    finally:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=DEMO.jobs, help="jobs to send and drain")
    parser.add_argument(
        "--workdir", type=Path, default=DEMO.workdir, help="where ./pgqrs.db is created"
    )
    options = parser.parse_args()
    DEMO = Demo(options.workdir.resolve(), options.jobs)
    asyncio.run(main())
