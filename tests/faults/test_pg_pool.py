"""The connection pool across server restarts and outages (issue 10, defects 13 and 15).

After a restart every pooled connection is dead; the first statement on each used to fail
(12 producer errors per campaign). And after an outage psycopg_pool retries with a doubling
delay (1, 2, 4, 8, 16 s), so loops gave up while the server had been back for seconds.
"""

from __future__ import annotations

import asyncio
import time

import pytest

import pgqrs
from tests.support.fault_report import report
from tests.support.pgserver import PgServer
from tests.support.target import Target

pytestmark = pytest.mark.slow


async def test_a_restart_costs_no_error_once_the_server_is_back(
    private_pg: PgServer, private_target: Target
) -> None:
    store = await private_target.connect(max_connections=8, connection_timeout_seconds=10)
    try:
        await pgqrs.admin(store).install()
        await store.queue("jobs")
        producers = [await store.producer("jobs") for _ in range(8)]
        # Eight statements at once: eight connections in the pool.
        await asyncio.gather(*(p.enqueue({"before": n}) for n, p in enumerate(producers)))
        private_pg.restart("fast")  # returns once the server answers again
        errors = 0
        for n in range(40):
            try:
                await asyncio.gather(*(p.enqueue({"after": n}) for p in producers))
            except pgqrs.PgqrsConnectionError:
                errors += 1
        report("pg pool after restart", statements=320, errors=errors)
        assert errors == 0
    finally:
        await store.close()


async def test_work_resumes_as_soon_as_the_server_is_back(
    private_pg: PgServer, private_target: Target
) -> None:
    store = await private_target.connect(connection_timeout_seconds=30)
    try:
        await pgqrs.admin(store).install()
        await store.queue("jobs")
        producer = await store.producer("jobs")
        await producer.enqueue("before")
        private_pg.stop("immediate")
        # While the server is away the pool keeps failing to connect, backing off longer and
        # longer (1 + 2 + 4 s of attempts fit in 7 s).
        attempt = asyncio.create_task(producer.enqueue("during"))
        await asyncio.sleep(7.0)  # the outage itself
        assert not attempt.done()
        private_pg.start()
        back = time.monotonic()
        await asyncio.wait_for(attempt, 30)
        resumed = time.monotonic() - back
        report("pg pool after an outage", outage_seconds=7.0, resumed_after_seconds=resumed)
        assert resumed < 2.0  # not at the pool's next backed-off attempt (up to 8 s later)
    finally:
        await store.close()
