"""`pgqrs run --processes N`: a supervisor of N `pgqrs run` processes (prefork, as gunicorn
and Celery do), so that one queue's handlers use every core.

Each child is a fresh interpreter running the same command without `--processes`: nothing is
forked from a process that holds an event loop or connections (the supervisor holds neither).
A child that exits unless told to is started again after a back-off that doubles per quick
death; `MAX_DEATHS` deaths within `DEATH_WINDOW` seconds and the supervisor gives up (exit 1).
The first SIGINT/SIGTERM is forwarded to every child as SIGTERM, each finishes its in-flight
messages (run_worker.py) and the supervisor exits 0 once all have; a second signal, or
`--shutdown-timeout` seconds, kills the stragglers with SIGKILL (their leases expire and their
messages come back, semantics.md §6).

A child notices that the supervisor is gone, even SIGKILLed, by end of file on a pipe whose
only writing end the supervisor holds: it then stops as on SIGTERM, and kills itself after the
same grace. Not `prctl(PR_SET_PDEATHSIG)`: that is Linux only, fires when the thread that
started the child ends rather than the process, and misses a parent that died before the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import click

from ..config import parse_dsn
from .context import CliError, logging_to_stderr, settings

log = logging.getLogger("pgqrs.cli")

DEFAULT_SHUTDOWN_TIMEOUT = 30.0
MAX_DEATHS = 5
DEATH_WINDOW = 60.0
MAX_BACKOFF = 30.0
# The first restart's delay in seconds (default 1); tests make crash loops quick with it.
BACKOFF_ENV = "PGQRS_RESTART_BACKOFF"
# What a child is told by its environment: the pipe to watch, and the grace after it closes.
PIPE_ENV = "PGQRS_SUPERVISOR_FD"
GRACE_ENV = "PGQRS_SUPERVISOR_GRACE"
# `pgqrs run` options that concern the supervisor only, and those each child gets its own of.
_SUPERVISOR_ONLY = ("processes", "shutdown_timeout")
_PER_CHILD = ("metrics_port",)  # child i serves port P+i (0, any free port, stays 0)


@dataclass(frozen=True)
class Plan:
    """What to supervise: `processes` children, child `slot` started with `command(slot)`."""

    processes: int
    command: Callable[[int], list[str]]
    env: dict[str, str]
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    backoff: float = 1.0
    max_deaths: int = MAX_DEATHS
    window: float = DEATH_WINDOW


def supervise(ctx: click.Context, processes: int, shutdown_timeout: float, log_level: str) -> None:
    """`pgqrs run` with `--processes` other than 1: runs until the children have stopped."""
    if processes < 1:
        raise CliError(f"--processes must be 1 or more, got {processes}")
    if os.name != "posix":
        raise CliError("--processes needs a POSIX system; run one `pgqrs run` per process instead")
    config = settings()
    if parse_dsn(config.dsn).backend == "s3":
        raise CliError("--processes cannot share an s3:// database: an object has one writer")
    # The global options by their environment variables: a DSN in argv would show in `ps`.
    env = {
        "PGQRS_DSN": config.dsn,
        "PGQRS_SCHEMA": config.schema,
        "PGQRS_LOG_FORMAT": config.log_format,
    }
    if config.s3_cache_dir:
        env["PGQRS_S3_CACHE_DIR"] = config.s3_cache_dir
    flags = [flag for flag, on in (("--json", config.json), ("--debug", config.debug)) if on]
    plan = Plan(
        processes,
        lambda slot: [sys.executable, "-m", "pgqrs", *flags, "run", *child_args(ctx, slot)],
        env,
        shutdown_timeout,
        backoff=float(os.environ.get(BACKOFF_ENV, "1")),
    )
    logs = (
        contextlib.nullcontext()
        if config.debug
        else logging_to_stderr(getattr(logging, log_level.upper()))
    )
    with logs:
        asyncio.run(Supervisor(plan).run())


def child_args(ctx: click.Context, slot: int) -> list[str]:
    """The arguments of `pgqrs run` as given, for child `slot`: without the supervisor's own
    options, and with an offset where each child needs its own value."""
    args: list[str] = []
    for param in ctx.command.params:
        name = param.name
        value = ctx.params.get(name) if name else None
        if name is None or name in _SUPERVISOR_ONLY or value is None:
            continue
        if not isinstance(param, click.Option):
            args.append(str(value))
            continue
        if ctx.get_parameter_source(name) == click.core.ParameterSource.DEFAULT:
            continue
        if param.is_flag:
            if value:
                args.append(param.opts[0])
            elif param.secondary_opts:
                args.append(param.secondary_opts[0])
            continue
        values = value if param.multiple else [value]
        for one in values:
            args += [param.opts[0], str(one + slot if name in _PER_CHILD and one else one)]
    return args


def _status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


class Supervisor:
    """Keeps `plan.processes` children running until a signal, or until they crash-loop."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.live: dict[int, asyncio.subprocess.Process] = {}  # by slot
        self.deaths: deque[float] = deque()
        self.stopping = asyncio.Event()
        self.killing = asyncio.Event()
        self.signals = 0
        self.gave_up: str | None = None
        self.restarts = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        read_end, write_end = os.pipe()  # not inheritable: the children get the read end only
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.on_signal, int(sig))
            log.info(
                "pgqrs run: supervising %d processes (pid %d)", self.plan.processes, os.getpid()
            )
            keepers = [
                asyncio.create_task(self.keep(slot, read_end))
                for slot in range(self.plan.processes)
            ]
            await self.stopping.wait()
            await self.wind_down(keepers)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            os.close(read_end)
            os.close(write_end)
        if self.gave_up is not None:
            raise CliError(self.gave_up)
        log.info("pgqrs run: every child process stopped (%d restarts)", self.restarts)

    def on_signal(self, signum: int) -> None:
        self.signals += 1
        name = signal.Signals(signum).name
        pids = ", ".join(str(p.pid) for p in self.live.values())
        if self.signals == 1:
            log.info(
                "%s: stopping child processes %s once their current work is done "
                "(again, or after %g s, kills them)",
                name,
                pids,
                self.plan.shutdown_timeout,
            )
            self.stopping.set()
        else:
            log.warning("%s again: killing child processes %s now", name, pids)
            self.killing.set()

    async def keep(self, slot: int, pipe: int) -> None:
        """Child `slot`, started again whenever it exits unasked, until the supervisor stops."""
        delay = self.plan.backoff
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                process = await self.spawn(slot, pipe)
                code = await process.wait()
                del self.live[slot]
                if self.stopping.is_set():
                    log.info("child %d (pid %d) exited: %s", slot, process.pid, _status(code))
                    return
                if self.died(slot, process.pid, code):
                    return
                if time.monotonic() - started >= self.plan.window:
                    delay = self.plan.backoff  # it had been running well: not a crash loop
                log.warning(
                    "child %d (pid %d) died: %s; restarting it in %g s",
                    slot,
                    process.pid,
                    _status(code),
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
                delay = min(delay * 2, MAX_BACKOFF)
                if not self.stopping.is_set():
                    self.restarts += 1
        except Exception as err:  # cannot start a child at all (no interpreter, no memory)
            self.give_up(f"cannot start child process {slot}: {err}")

    async def spawn(self, slot: int, pipe: int) -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            **self.plan.env,
            PIPE_ENV: str(pipe),
            GRACE_ENV: str(self.plan.shutdown_timeout),
        }
        # A group of its own: a terminal's Ctrl-C reaches the supervisor only, which forwards
        # one SIGTERM; two would be a cold shutdown of the child.
        process = await asyncio.create_subprocess_exec(
            *self.plan.command(slot), env=env, pass_fds=(pipe,), process_group=0
        )
        self.live[slot] = process
        log.info("child %d started: pid %d", slot, process.pid)
        if self.stopping.is_set():  # the stop came while it was starting
            _send(process, signal.SIGTERM)
        return process

    def died(self, slot: int, pid: int, code: int) -> bool:
        """Count an unasked exit; True when that is one too many and the supervisor gives up."""
        now = time.monotonic()
        self.deaths.append(now)
        while now - self.deaths[0] > self.plan.window:
            self.deaths.popleft()
        if len(self.deaths) < self.plan.max_deaths:
            return False
        self.give_up(
            f"child processes died {len(self.deaths)} times within {self.plan.window:g} s "
            f"(last: child {slot}, pid {pid}, {_status(code)}); giving up"
        )
        return True

    def give_up(self, why: str) -> None:
        if self.gave_up is None:
            self.gave_up = why
        self.stopping.set()

    async def wind_down(self, keepers: list[asyncio.Task[None]]) -> None:
        """SIGTERM to every child; SIGKILL to those still running after the grace or on a
        second signal."""
        for process in self.live.values():
            _send(process, signal.SIGTERM)
        finished = asyncio.ensure_future(asyncio.wait(keepers))
        killing = asyncio.ensure_future(self.killing.wait())
        done, _ = await asyncio.wait(
            {finished, killing},
            timeout=self.plan.shutdown_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        killing.cancel()
        if finished not in done:
            why = (
                "second signal"
                if self.killing.is_set()
                else f"still running {self.plan.shutdown_timeout:g} s after SIGTERM"
            )
            for slot, process in self.live.items():
                log.warning("child %d (pid %d): SIGKILL (%s)", slot, process.pid, why)
                _send(process, signal.SIGKILL)
            await finished
        for keeper in keepers:
            keeper.result()


def _send(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has just exited
        process.send_signal(sig)


# -- in the child -----------------------------------------------------------------------------


def watch_supervisor() -> None:
    """In a child of the supervisor (its environment says so): stop as on SIGTERM when the
    supervisor is gone, and die after the grace if that did not end the process."""
    fd = os.environ.pop(PIPE_ENV, None)
    grace = float(os.environ.pop(GRACE_ENV, str(DEFAULT_SHUTDOWN_TIMEOUT)))
    if fd is None:
        return
    threading.Thread(
        target=_watch, args=(int(fd), grace), name="pgqrs-supervisor-watch", daemon=True
    ).start()


def _watch(fd: int, grace: float) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 1):  # the supervisor never writes: this returns at end of file
            pass
    log.warning("the supervisor is gone: stopping (killed if still running after %g s)", grace)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)  # a deadline, not a synchronisation: the process normally exits first
    os.kill(os.getpid(), signal.SIGKILL)
