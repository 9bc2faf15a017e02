"""The cancellation harness itself (tests/support/cancel.py), on toy coroutines: it cancels at
exactly the n-th suspension, cancels the very future the coroutine waits on there, drives a
coroutine that catches the cancellation through its cleanup, and reports what it must."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support import cancel
from tests.support.cancel import CancelAt, Point, PointFailure, cancel_at_each_point


async def steps(log: list[str], count: int = 3) -> str:
    """`count` suspensions, logging around each."""
    for i in range(1, count + 1):
        log.append(f"before {i}")
        await asyncio.sleep(0)
        log.append(f"after {i}")
    return "done"


def _complete_soon(future: asyncio.Future[int], value: int) -> None:
    """Complete `future` on the next loop turn, unless it was cancelled meanwhile."""

    def complete() -> None:
        if not future.done():
            future.set_result(value)

    asyncio.get_running_loop().call_soon(complete)


@pytest.mark.parametrize("n", [1, 2, 3])
async def test_cancels_at_exactly_the_nth_suspension(n: int) -> None:
    log: list[str] = []
    point = await cancel.run_cancelled_at(lambda: steps(log), n)
    assert point.cancelled
    assert point.ended_cancelled
    assert point.yields == n
    expected = [entry for i in range(1, n) for entry in (f"before {i}", f"after {i}")]
    assert log == [*expected, f"before {n}"]  # nothing ran after the n-th await
    assert any(" steps" in frame for frame in point.where)  # where it was suspended


async def test_a_run_that_ends_before_point_n_completes_normally() -> None:
    log: list[str] = []
    point = await cancel.run_cancelled_at(lambda: steps(log), 4)
    assert not point.cancelled
    assert point.error is None
    assert point.result == "done"
    assert point.yields == 3
    assert log[-1] == "after 3"


async def test_the_future_waited_on_at_point_n_is_the_one_cancelled() -> None:
    futures: list[asyncio.Future[int]] = []

    async def two_waits() -> int:
        loop = asyncio.get_running_loop()
        total = 0
        for value in (1, 2):
            future: asyncio.Future[int] = loop.create_future()
            futures.append(future)
            _complete_soon(future, value)
            total += await future
        return total

    point = await cancel.run_cancelled_at(two_waits, 2)
    assert point.ended_cancelled
    first, second = futures
    assert first.done()
    assert first.result() == 1
    assert second.cancelled()  # a real Task.cancel(): the task cancelled what it waited on


async def test_it_is_a_real_task_cancel_not_a_simulated_throw() -> None:
    """`asyncio.timeout` tells its own expiry from an outside cancellation by the task's
    cancel count: a real `Task.cancel()` must come out as CancelledError, not TimeoutError."""

    async def bounded() -> None:
        async with asyncio.timeout(30):
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    for n in (1, 2):
        point = await cancel.run_cancelled_at(bounded, n)
        assert point.ended_cancelled, point.error


async def test_a_coroutine_that_catches_the_cancel_is_driven_through_its_cleanup() -> None:
    log: list[str] = []

    async def with_cleanup() -> None:
        try:
            await steps(log, 2)
        except asyncio.CancelledError:
            log.append("cleanup started")
            await asyncio.sleep(0)  # cleanup that awaits: driven, counted, not cancelled again
            await asyncio.sleep(0)
            log.append("cleanup finished")
            raise

    point = await cancel.run_cancelled_at(with_cleanup, 1)
    assert point.ended_cancelled
    assert log == ["before 1", "cleanup started", "cleanup finished"]
    assert point.yields == 3  # the cancelled await and the two of the cleanup


async def test_cancel_at_each_point_tries_every_point_then_the_completed_run() -> None:
    seen: list[tuple[int, bool]] = []

    async def check(point: Point) -> None:
        seen.append((point.n, point.cancelled))

    assert await cancel_at_each_point(lambda: steps([]), check) == 3
    assert seen == [(1, True), (2, True), (3, True), (4, False)]


async def test_setup_runs_before_every_run() -> None:
    runs: list[list[str]] = []

    async def setup() -> None:
        runs.append([])

    async def check(point: Point) -> None:
        assert len(runs) == point.n

    assert await cancel_at_each_point(lambda: steps(runs[-1], 2), check, setup=setup) == 2
    assert runs[-1] == ["before 1", "after 1", "before 2", "after 2"]


async def test_a_failing_check_raises_at_once_unless_failures_are_collected() -> None:
    async def check(point: Point) -> None:
        if point.n == 2:
            raise AssertionError("broken at 2")

    with pytest.raises(AssertionError, match=r"cancelled at point 2 \[.*\]: broken at 2"):
        await cancel_at_each_point(lambda: steps([]), check)

    failures: list[PointFailure] = []
    recovered: list[int] = []

    async def recover() -> None:
        recovered.append(1)

    points = await cancel_at_each_point(
        lambda: steps([]), check, failures=failures, recover=recover
    )
    assert points == 3
    assert [(f.n, f.cancelled, f.message) for f in failures] == [(2, True, "broken at 2")]
    assert recovered == [1]


async def test_a_swallowed_cancellation_is_a_failure() -> None:
    async def swallows() -> str:
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            return "swallowed"
        await asyncio.sleep(0)
        return "done"

    async def check(point: Point) -> None:
        pass

    failures: list[PointFailure] = []
    assert await cancel_at_each_point(swallows, check, failures=failures) == 2
    assert [f.n for f in failures] == [1]
    assert "not propagated: returned 'swallowed'" in failures[0].message


async def test_cleanup_left_running_after_the_operation_ended_is_a_failure() -> None:
    finished: list[str] = []

    async def cleanup() -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        finished.append("cleanup")

    async def detaches() -> None:
        await asyncio.shield(asyncio.ensure_future(cleanup()))

    async def check(point: Point) -> None:
        if point.cancelled:  # the stragglers were awaited before the checks
            assert finished == ["cleanup"]

    failures: list[PointFailure] = []
    await cancel_at_each_point(detaches, check, failures=failures)
    assert [f.n for f in failures] == [1]
    assert "still running" in failures[0].message


async def test_an_operation_that_never_ends_fails_loudly() -> None:
    async def forever() -> None:
        while True:
            await asyncio.sleep(0)

    async def check(point: Point) -> None:
        pass

    with pytest.raises(AssertionError, match="still had suspension points after 5"):
        await cancel_at_each_point(forever, check, limit=5)


async def test_a_hung_cancelled_operation_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cancel, "RUN_DEADLINE_SECONDS", 0.2)
    monkeypatch.setattr(cancel, "STRAGGLER_DEADLINE_SECONDS", 0.2)
    gate: asyncio.Event = asyncio.Event()

    async def hangs_in_cleanup() -> None:
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            await asyncio.shield(gate.wait())  # never set: the cleanup waits for ever
            raise

    with pytest.raises(AssertionError, match=r"did not end within 0\.2s"):
        await cancel.run_cancelled_at(hangs_in_cleanup, 1)
    gate.set()


def test_points_are_numbered_from_one() -> None:
    async def nothing() -> None:
        pass

    coro: Any = nothing()
    with pytest.raises(ValueError, match="numbered from 1"):
        CancelAt(coro, 0)
    coro.close()
