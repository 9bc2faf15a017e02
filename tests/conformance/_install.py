"""What the install tests share: the bookkeeping rows an install should leave, and a check
that an installed store works."""

from __future__ import annotations

import pgqrs
from tests.conftest import Target

MIGRATION_NAMES = [
    (1, "base_types"),
    (2, "queues"),
    (3, "workers"),
    (4, "messages"),
    (5, "workflows"),
    (6, "workflow_cancel_statuses"),
    (7, "archived_metrics_index"),
    (8, "claim_order_index"),
]


def methods_without_bookkeeping(target: Target) -> list[str]:
    """How install records every version over tables that exist without any bookkeeping.

    Objects found complete are adopted. SQLite's version 1, both backends' version 6 and the
    index-only versions 7 and 8 create nothing that is looked for, so they are applied
    (harmlessly: no DDL, ADD VALUE IF NOT EXISTS, CREATE INDEX IF NOT EXISTS).
    """
    if target.backend in ("sqlite", "s3"):
        return ["applied"] + ["adopted"] * 4 + ["applied"] * 3
    return ["adopted"] * 5 + ["applied"] * 3


def expected_rows(adopted: int = 0) -> list[tuple[int, str, str, str]]:
    """Bookkeeping after install: versions up to `adopted` adopted, the rest applied."""
    return [
        (v, name, "adopted" if v <= adopted else "applied", pgqrs.__version__)
        for v, name in MIGRATION_NAMES
    ]


async def use_it(store: pgqrs.Store) -> None:
    """The installed schema works: a message goes through, verify passes."""
    await pgqrs.admin(store).verify()
    await store.queue("after-install")
    producer = await store.producer("after-install")
    consumer = await store.consumer("after-install")
    mid = await producer.enqueue({"ok": True})
    assert [m.id for m in await consumer.dequeue()] == [mid]
    assert await consumer.archive(mid)
