"""Clocks that differ (issue 10, "Time comes from the database on PostgreSQL").

Machines in a fleet drift; the database's clock is the one they share. Every "now" that
leases, visibility, heartbeats and staleness depend on is read by the statement from the
server, so a machine whose clock runs ahead neither takes a running lease nor judges a healthy
worker dead. The skewed machine is this process with its clock moved 40 s ahead, where the
library reads the local clock (`pgqrs._clock`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import pgqrs
from tests.support.target import StoreFactory

pytestmark = pytest.mark.backends("postgres")


def forty_seconds_ahead() -> datetime:
    """The clock of a machine that runs 40 s ahead."""
    return datetime.now(UTC) + timedelta(seconds=40)


async def test_a_machine_whose_clock_runs_ahead_takes_no_running_lease(
    store: pgqrs.Store, make_store: StoreFactory, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mid = await (await store.producer(queue)).enqueue("leased for 30 s")
    holder = await store.consumer(queue)
    [message] = await holder.dequeue_many_with_delay(1, 30)
    assert message.id == mid

    monkeypatch.setattr(pgqrs._clock, "local_now", forty_seconds_ahead, raising=False)
    monkeypatch.setattr(pgqrs._clock.SystemClock, "now", lambda self: forty_seconds_ahead())
    ahead = await make_store()
    other = await ahead.consumer(queue)
    assert await other.dequeue() == []  # 40 s ahead, yet the lease taken a moment ago runs
    # Nor is the holder judged silent (its beat is 40 s old by this machine's clock).
    assert await pgqrs.admin(ahead).reclaim_messages() == 0
    assert await holder.status() == "ready"
    assert await holder.archive(mid)
