"""`pgqrs.run_workers`: several poll loops in one process, stopped together (`pgqrs run -c K`)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

import pgqrs
from tests.support.waiting import eventually


def builder(consumer: pgqrs.Consumer) -> pgqrs.DequeueBuilder:
    return pgqrs.dequeue().worker(consumer).handle(print).poll_interval(20)


async def all_polling(*consumers: pgqrs.Consumer) -> None:
    async def polling() -> bool:
        return all([await c.status() == "polling" for c in consumers])

    await eventually(polling)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_every_loop(store: pgqrs.Store, queue: str, signum: int) -> None:
    before = signal.getsignal(signum)
    consumers = [await store.consumer(queue) for _ in range(3)]
    task = asyncio.create_task(pgqrs.run_workers(store, [builder(c) for c in consumers]))
    await all_polling(*consumers)
    os.kill(os.getpid(), signum)
    await asyncio.wait_for(task, 10)  # returns normally
    assert [await c.status() for c in consumers] == ["stopped"] * 3
    assert signal.getsignal(signum) == before


async def test_one_loop_ending_stops_the_others(store: pgqrs.Store, queue: str) -> None:
    a, b, c = [await store.consumer(queue) for _ in range(3)]
    task = asyncio.create_task(pgqrs.run_workers(store, [builder(w) for w in (a, b, c)]))
    await all_polling(a, b, c)
    await b.suspend()  # an operator suspends one worker: its loop ends, the process follows
    with pytest.raises(pgqrs.SuspendedError) as caught:
        await asyncio.wait_for(task, 10)
    assert caught.value.reason == "worker suspended"
    assert await b.status() == "suspended"  # left as the operator put it
    assert (await a.status(), await c.status()) == (
        pgqrs.WorkerStatus.Stopped,
        pgqrs.WorkerStatus.Stopped,
    )


async def test_needs_a_builder(store: pgqrs.Store) -> None:
    with pytest.raises(ValueError, match="at least one DequeueBuilder"):
        await pgqrs.run_workers(store, [])
