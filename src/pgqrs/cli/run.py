"""`pgqrs run MODULE:FUNCTION`: a worker process of K poll loops that stops gracefully.

Shutdown is `pgqrs.run_workers`: the first SIGINT/SIGTERM lets every handler that is running
finish, then the workers are suspended and stopped; a second one cancels the handlers, releases
their messages and stops the workers at once. Either way the process exits 0 after printing
what it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from ..client import Store
from ..errors import PausedError, StepNotReadyError, TransientStepError
from ..queue.loop import Handler, is_async
from ..queue.run_worker import catch_signals_early, run_workers
from ..scheduler import Scheduler
from ..tables import queues as queue_rows
from ..types import QueueMessage
from ..validation import check_batch_size
from ..workflows.builders import WorkflowBuilder
from ..workflows.decorators import WorkflowDef
from ..workflows.dequeue import DequeueBuilder
from ..workflows.run import Run
from . import prefork
from .context import CliError, json_option, logging_to_stderr, settings, wants_json, with_store
from .output import emit_json

if TYPE_CHECKING:  # prometheus_client is optional: imported only for --metrics-port
    from ..observability.prometheus import MetricsServer

log = logging.getLogger("pgqrs.cli")

# Outcomes of a workflow execution that plan the next one rather than fail (semantics.md §11.2).
_RESCHEDULED = (PausedError, StepNotReadyError, TransientStepError)


def load_handler(target: str) -> Callable[..., Any]:
    """The callable named `MODULE:FUNCTION` (FUNCTION may be dotted), importable from the
    working directory as `python -m` would."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"expected MODULE:FUNCTION, got '{target}'")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise CliError(f"cannot import '{module_name}': {err}") from err
    except Exception as err:  # the module itself failed while loading
        raise CliError(f"cannot import '{module_name}': {type(err).__name__}: {err}") from err
    found: Any = module
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise CliError(f"module '{module_name}' has no attribute '{attr}'") from None
    if not callable(found):
        raise CliError(f"'{target}' is not callable (it is a {type(found).__name__})")
    return found  # type: ignore[no-any-return]


@dataclass
class Tally:
    """What the handlers did, for the summary line."""

    handled: int = 0
    failed: int = 0
    released: int = 0
    # Plain-function handlers of several loops count from their threads.
    lock: threading.Lock = field(default_factory=threading.Lock)


def _what(arg: Any) -> tuple[str, int, dict[str, Any]]:
    """How a handler's argument is named in the log, how many messages it stands for, and the
    structured fields of its log records (docs/guides/observability.md, "Logs")."""
    if isinstance(arg, Run):
        return f"run {arg.id()} (message {arg.message_id})", 1, {"run_id": arg.id()}
    if isinstance(arg, list):
        ids = [m.id for m in arg if isinstance(m, QueueMessage)]
        worker = arg[0].consumer_worker_id if ids else None
        return f"messages {ids} (worker {worker})", len(arg), {"worker_id": worker}
    if isinstance(arg, QueueMessage):
        fields = {"message_id": arg.id, "worker_id": arg.consumer_worker_id, "attempt": arg.read_ct}
        return f"message {arg.id} (worker {arg.consumer_worker_id})", 1, fields
    return repr(arg), 1, {}


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f} ms"


def counted(fn: Callable[..., Any], tally: Tally) -> Handler:
    """`fn`, logging each call with its duration and counting its outcome. A plain function
    stays a plain function, so its loop runs it on the loop's own thread
    (queue.loop.call_handler)."""

    @contextlib.contextmanager
    def observed(arg: Any) -> Iterator[None]:
        what, count, fields = _what(arg)
        started = time.perf_counter()
        try:
            yield
        except BaseException as err:
            _count(tally, what, count, started, err, fields)
            raise
        _count(tally, what, count, started, None, fields)

    if is_async(fn):

        async def async_handler(arg: Any) -> Any:
            with observed(arg):
                return await fn(arg)

        return async_handler

    def handler(arg: Any) -> Any:
        with observed(arg):
            return fn(arg)

    return handler


def _count(
    tally: Tally,
    what: str,
    count: int,
    started: float,
    err: BaseException | None,
    fields: dict[str, Any],
) -> None:
    took = _ms(started)
    with tally.lock:
        if err is None:
            tally.handled += count
            log.info("%s handled in %s", what, took, extra=fields)
        elif isinstance(err, asyncio.CancelledError):
            tally.released += count
            log.warning("%s released unfinished after %s (shutdown)", what, took, extra=fields)
        elif isinstance(err, _RESCHEDULED):
            tally.handled += count
            log.info("%s rescheduled after %s: %s", what, took, err, extra=fields)
        elif isinstance(err, Exception):
            tally.failed += count
            name = type(err).__name__
            log.warning("%s failed after %s: %s: %s", what, took, name, err, extra=fields)


def _builder(
    consumer: Any,
    handler: Handler,
    *,
    workflow: bool,
    batch: int | None,
    poll_interval: int | None,
    lease: float | None,
) -> DequeueBuilder:
    builder = DequeueBuilder().worker(consumer)
    if workflow:
        builder.handle_workflow(handler).batch(batch or 1)
    elif batch is not None:
        builder.handle_batch(handler).batch(batch)
    else:
        builder.handle(handler)
    if poll_interval is not None:
        builder.poll_interval(poll_interval)
    if lease is not None:
        builder.lease(lease)
    return builder


@click.command("run", short_help="Run a worker: a handler on every message of a queue.")
@click.argument("target", metavar="MODULE:FUNCTION")
@click.option("--queue", "-q", help="Queue to consume (default for --workflow: its name).")
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    help="Claim up to N messages at a time; the handler then takes a list of messages.",
)
@click.option(
    "--workflow",
    "is_workflow",
    is_flag=True,
    help="FUNCTION is a workflow (an @workflow function, or async fn(run)).",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Poll loops (each its own worker) in this process.",
)
@click.option(
    "--poll-interval", type=click.IntRange(min=1), help="Milliseconds between polls when idle."
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds each claim holds its messages (kept alive while the handler runs).",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Do not fire cron schedules in this process (by default every `pgqrs run` does; "
    "each tick is enqueued once however many run).",
)
@click.option(
    "--processes",
    type=int,
    default=1,
    show_default=True,
    help="Worker processes, each with --concurrency poll loops, under a supervisor that "
    "restarts them (docs/guides/processes.md).",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=prefork.DEFAULT_SHUTDOWN_TIMEOUT,
    show_default=True,
    help="With --processes: seconds the processes get to finish after SIGTERM before SIGKILL.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (0: a free port, logged).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the --metrics-port endpoint listens on (0.0.0.0: every interface).",
)
@json_option
def run_command(
    target: str,
    queue: str | None,
    batch: int | None,
    is_workflow: bool,
    concurrency: int,
    poll_interval: int | None,
    lease: float | None,
    log_level: str,
    no_scheduler: bool,
    processes: int,
    shutdown_timeout: float,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run FUNCTION from MODULE on every message of a queue until SIGINT or SIGTERM.

    FUNCTION is an async function taking a message (a list of messages with --batch, a
    workflow run with --workflow). The working directory is importable, so
    `pgqrs run tasks:handle` finds ./tasks.py. With --processes N, a supervisor runs N such
    processes, restarts one that dies and forwards SIGINT/SIGTERM to them all.
    """
    if processes != 1:  # a supervisor of `processes` copies of this command
        prefork.supervise(click.get_current_context(), processes, shutdown_timeout, log_level)
        return
    catch_signals_early()  # a SIGTERM while connecting stops the worker cleanly, not abruptly
    prefork.watch_supervisor()  # in a child of that supervisor: stop when it is gone
    fn = load_handler(target)
    if isinstance(fn, WorkflowDef):
        is_workflow = True
        queue = queue or fn.name
    if queue is None:
        raise click.UsageError("--queue is required (the queue to consume)")
    name = queue
    tally = Tally()
    running: list[float] = []  # when the workers started: a summary is due from then on
    handler = counted(fn, tally)
    # With --debug, the group logs everything already.
    logs = (
        contextlib.nullcontext()
        if settings().debug
        else logging_to_stderr(getattr(logging, log_level.upper()))
    )

    async def work(store: Store) -> None:
        if is_workflow:
            await WorkflowBuilder().name(name).store(store).create()
        else:
            await queue_rows.get_by_name(store.db, name)
        check_batch_size(batch or 1, store.settings.default_max_batch_size, "--batch")
        # Before any worker is registered: a port that is taken leaves nothing behind.
        port = metrics_port
        metrics = None if port is None else _metrics(store, name, port, metrics_host)
        consumers = [await store.consumer(name) for _ in range(concurrency)]
        builders = [
            _builder(
                c,
                handler,
                workflow=is_workflow,
                batch=batch,
                poll_interval=poll_interval,
                lease=lease,
            )
            for c in consumers
        ]
        log.info(
            "pgqrs run: %s on queue '%s', %d worker(s) (%s); SIGINT or SIGTERM stops them",
            target,
            name,
            concurrency,
            ", ".join(str(c.worker_id) for c in consumers),
        )
        running.append(time.monotonic())
        # The scheduler fires cron schedules beside the workers (semantics.md §17); it stops
        # with them, after any firing under way.
        scheduler = None if no_scheduler else Scheduler(store)
        firing = None if scheduler is None else asyncio.create_task(scheduler.run())
        try:
            await run_workers(store, builders)
        finally:
            if scheduler is not None and firing is not None:
                scheduler.stop()
                await firing
            if metrics is not None:
                await asyncio.to_thread(metrics.close)  # waits for the server thread

    with logs:
        try:
            with_store(work)
        finally:
            if running:
                _summary(tally, time.monotonic() - running[0])


def _metrics(store: Store, queue: str, port: int, host: str) -> MetricsServer:
    """`--metrics-port`: this process's counters and the queue's gauges, read at each scrape."""
    try:
        from ..observability.prometheus import serve
    except ImportError as err:
        raise CliError(
            f"--metrics-port needs prometheus_client ({err}): pip install 'pgqrs-py[prometheus]'"
        ) from err
    try:
        server = serve(store, [queue], port, host)
    except OSError as err:
        raise CliError(f"cannot serve metrics on {host}:{port}: {err}") from err
    log.info("pgqrs run: metrics at http://%s:%d/metrics", host, server.port)
    return server


def _summary(tally: Tally, seconds: float) -> None:
    if wants_json():
        counts = {"handled": tally.handled, "failed": tally.failed, "released": tally.released}
        emit_json({**counts, "seconds": round(seconds, 3)})
        return
    rate = tally.handled / seconds if seconds > 0 else 0.0
    click.echo(
        f"pgqrs run: handled {tally.handled}, failed {tally.failed}, released {tally.released} "
        f"in {seconds:.1f} s ({rate:.{0 if rate >= 10 else 1}f}/s)"
    )


COMMANDS = [run_command]
