"""Cancel an operation at its n-th suspension point, for every n (issue 10).

`CancelAt(coro, n)` is an awaitable that runs `coro` step by step: it drives the coroutine's
`__await__()` iterator itself, passes every value the coroutine yields up to the Task (the
future it is suspended on), and every value or exception the Task sends back down. It counts
the yields; at the n-th one it calls `current_task().cancel()` just before yielding, so the Task
cancels exactly the future the operation is suspended on at that point (or, for a bare `yield`,
throws `CancelledError` in at the next step). It is a real `Task.cancel()`, not a simulated
`throw`: shields, `asyncio.timeout` and the futures of worker threads all see what they would
see in production. The cancellation is requested once; whatever the coroutine does afterwards
(cleanup that awaits, re-raising) is driven to its end and counted, but not cancelled again.

`cancel_at_each_point(make_op, check)` tries n = 1, 2, ... in a fresh task each time, running
`check` after every cancellation, until a run completes without reaching point n.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# Far more suspension points than any single public operation has: reaching it means the
# operation never completes (a retry loop, say), and the driver fails instead of running on.
DEFAULT_LIMIT = 200
# How long one run (cancelled or not) may take before the driver calls it hung.
RUN_DEADLINE_SECONDS = 20.0
# How long the driver waits for background work a cancelled operation left running.
STRAGGLER_DEADLINE_SECONDS = 10.0


class CancelAt(Generic[T]):
    """Await `coro`, cancelling the awaiting task at the coroutine's `n`-th suspension.

    After the run: `yields` is how many times the coroutine suspended (cancelled or not),
    `fired` whether point `n` was reached and the cancellation requested, and `where` the
    awaits the coroutine was suspended in at that point, outermost first.
    """

    def __init__(self, coro: Coroutine[Any, Any, T], n: int) -> None:
        if n < 1:
            raise ValueError(f"suspension points are numbered from 1, got {n}")
        self._coro = coro
        self.n = n
        self.yields = 0
        self.fired = False
        self.where: tuple[str, ...] = ()

    def __await__(self) -> Generator[Any, Any, T]:
        inner = self._coro.__await__()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            try:
                yielded = inner.send(sent) if thrown is None else inner.throw(thrown)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            self.yields += 1
            if self.yields == self.n:
                task = asyncio.current_task()
                assert task is not None, "CancelAt must be awaited inside a task"
                # The task is running (it is stepping us), so this only sets its "must cancel"
                # flag: as it receives `yielded`, it cancels that future instead of waiting.
                task.cancel()
                self.fired = True
                self.where = suspended_in(self._coro)
            try:
                sent = yield yielded
                thrown = None
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as err:  # the future's exception, CancelledError included
                sent, thrown = None, err


def suspended_in(coro: Any) -> tuple[str, ...]:
    """`file:line function` of each coroutine a suspended coroutine is awaiting, outermost
    first, following `cr_await` (the walk stops at an async generator's `asend`, as
    `Task.get_stack()` does)."""
    found: list[str] = []
    current = coro
    while current is not None:
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is not None:
            path = frame.f_code.co_filename
            short = path.split("/src/", 1)[-1] if "/src/" in path else path.rsplit("/", 1)[-1]
            found.append(f"{short}:{frame.f_lineno} {frame.f_code.co_name}")
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
    return tuple(found)


@dataclass(frozen=True)
class Point:
    """One run of the operation: cancelled at point `n`, or completed before reaching it."""

    n: int
    cancelled: bool  # the cancellation was requested at point n (else the run completed)
    yields: int  # suspensions the run went through in all
    result: Any = None  # what the operation returned
    error: BaseException | None = None  # what it raised (CancelledError when cancelled)
    where: tuple[str, ...] = ()  # the awaits it was suspended in when cancelled

    def landed(self) -> str:
        """Where the cancellation landed: the innermost pgqrs await (and its caller)."""
        ours = [w for w in self.where if w.startswith("pgqrs/")] or list(self.where)
        return " <- ".join(reversed(ours[-2:])) if ours else "?"

    @property
    def ended_cancelled(self) -> bool:
        return isinstance(self.error, asyncio.CancelledError)


@dataclass(frozen=True)
class PointFailure:
    n: int
    cancelled: bool
    message: str
    landed: str = ""  # where the cancellation landed (`Point.landed`)

    def __str__(self) -> str:
        what = f"cancelled at point {self.n}" if self.cancelled else "uncancelled run"
        where = f" [{self.landed}]" if self.landed else ""
        return f"{what}{where}: {self.message}"


Check = Callable[[Point], Awaitable[None]]


async def run_cancelled_at(make_op: Callable[[], Coroutine[Any, Any, Any]], n: int) -> Point:
    """Run `make_op()` in a fresh task, cancelled at its `n`-th suspension; how it ended.

    Raises AssertionError when the run does not end within RUN_DEADLINE_SECONDS, or ends while
    tasks it started are still running (cleanup detached from the operation); the stragglers
    are awaited first, so the caller's checks see the settled state either way.
    """
    wrapper: CancelAt[Any] = CancelAt(make_op(), n)

    async def body() -> Any:
        return await wrapper

    before = asyncio.all_tasks()
    task = asyncio.create_task(body(), name=f"cancel-at-{n}")
    done, _ = await asyncio.wait({task}, timeout=RUN_DEADLINE_SECONDS)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=STRAGGLER_DEADLINE_SECONDS)
        raise AssertionError(
            f"the operation did not end within {RUN_DEADLINE_SECONDS:g}s "
            f"({'after a cancel at point ' + str(n) if wrapper.fired else 'uncancelled'})"
        )
    error: BaseException | None
    result: Any = None
    if task.cancelled():
        error = asyncio.CancelledError()
    else:
        error = task.exception()
        if error is None:
            result = task.result()
    point = Point(n, wrapper.fired, wrapper.yields, result, error, wrapper.where)
    stragglers = [t for t in asyncio.all_tasks() - before - {task} if not t.done()]
    stragglers = [t for t in stragglers if not _long_lived(t)]
    if stragglers:
        names = sorted(_describe(t) for t in stragglers)
        await asyncio.wait(stragglers, timeout=STRAGGLER_DEADLINE_SECONDS)
        raise StragglerError(point, names)
    return point


class StragglerError(AssertionError):
    """The operation ended while work it started (a shielded cleanup) was still running."""

    def __init__(self, point: Point, names: list[str]) -> None:
        super().__init__(
            f"the operation ended ({_ending(point)}) while task(s) it started were still "
            f"running: {', '.join(names)} (cleanup detached from the cancelled call)"
        )
        self.point = point


def _long_lived(task: asyncio.Task[Any]) -> bool:
    """Tasks a store keeps for its lifetime (PostgreSQL's LISTEN connection), not cleanup."""
    return task.get_name() == "pgqrs-listen"


def _describe(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    qualname = getattr(coro, "__qualname__", None) or repr(coro)
    return f"{task.get_name()}[{qualname}]"


def _error(err: Exception) -> str:
    if isinstance(err, AssertionError):
        return str(err) or "AssertionError"
    return f"{type(err).__name__}: {err}"


def _ending(point: Point) -> str:
    if point.error is None:
        return f"returned {point.result!r}"
    if point.ended_cancelled:
        return "raised CancelledError"
    return f"raised {type(point.error).__name__}: {point.error}"


async def cancel_at_each_point(
    make_op: Callable[[], Coroutine[Any, Any, Any]],
    check: Check,
    *,
    setup: Callable[[], Awaitable[None]] | None = None,
    failures: list[PointFailure] | None = None,
    recover: Callable[[], Awaitable[None]] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> int:
    """Cancel `make_op()` at its first, second, ... suspension point; the number of points.

    For n = 1, 2, ...: `setup()`, then `make_op()` runs in a fresh task cancelled at its n-th
    suspension. A cancelled run must end with CancelledError (an operation that swallows the
    cancellation, or turns it into another error, fails the point), then `check(point)` runs
    the invariants. The first run that completes without reaching point n is checked once more
    and ends the drive. Reaching `limit` points fails loudly.

    Without `failures`, the first failure raises. With it, failures are collected there and
    the drive goes on; `recover()`, when given, runs after each failure (to replace a store a
    failure left unusable, say) so that later points are still tried.
    """
    points = 0
    landed = ""  # where the last cancellation landed
    for n in range(1, limit + 1):
        if setup is not None:
            try:
                await setup()
            except Exception as err:
                # What an earlier cancellation left behind (a store that cannot write): that
                # run's failure, seen one step later. Try once more on a recovered store.
                if failures is None or recover is None:
                    raise
                message = f"the next setup failed: {_error(err)}"
                failures.append(PointFailure(n - 1, True, message, landed))
                await recover()
                await setup()
        problems: list[str] = []
        point: Point | None = None
        try:
            point = await run_cancelled_at(make_op, n)
        except StragglerError as err:
            point = err.point
            problems.append(str(err))
        except AssertionError as err:  # hung
            problems.append(str(err))
        if point is not None:
            if point.cancelled and not point.ended_cancelled:
                problems.append(f"the cancellation was not propagated: {_ending(point)}")
            try:
                await check(point)
            except Exception as err:
                problems.append(_error(err))
        cancelled = point is None or point.cancelled
        landed = point.landed() if point is not None and point.cancelled else ""
        if problems:
            failure = PointFailure(n, cancelled, "; ".join(problems), landed)
            if failures is None:
                raise AssertionError(str(failure))
            failures.append(failure)
            if recover is not None:
                await recover()
        if cancelled:
            points += 1
            continue
        return points
    raise AssertionError(
        f"the operation still had suspension points after {limit} cancellations: it never "
        "completes, or the limit is too low for it"
    )
