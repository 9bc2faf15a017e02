"""What the install tests share: the bookkeeping rows an install should leave, and a check
that an installed store works."""

from __future__ import annotations

import pgqrs
from tests.support.target import Target

MIGRATION_NAMES = [
    (1, "base_types"),
    (2, "queues"),
    (3, "workers"),
    (4, "messages"),
    (5, "workflows"),
    (6, "workflow_cancel_statuses"),
    (7, "archived_metrics_index"),
    (8, "claim_order_index"),
    (9, "fencing_and_limits"),
    (10, "message_errors"),
    (11, "priority_dedup"),
    (12, "queue_payload_limits"),
    (13, "limits"),
    (14, "schedules"),
    (15, "workflow_messages"),
    (16, "trace_context"),
    (17, "limits_checked"),
]


def methods_without_bookkeeping(target: Target, *, ours: bool) -> list[str]:
    """How install records every version over tables that exist without any bookkeeping.

    Objects found complete are adopted. SQLite's version 1, both backends' version 6 and the
    index-only versions 7 and 8 create nothing that is looked for, so they are applied
    (harmlessly: no DDL, ADD VALUE IF NOT EXISTS, CREATE INDEX IF NOT EXISTS). Versions 9
    (columns, and a function on PostgreSQL) and 10 (a table) are adopted over tables this
    library installed (`ours`) and applied over pgqrs's own, which lack them.
    """
    ours_only = ["adopted" if ours else "applied"] * 2
    # Versions 11 and later add columns: adopted over this library's tables, else applied.
    later = ["adopted" if ours else "applied"] * (len(MIGRATION_NAMES) - 10)
    if target.backend != "postgres":
        later[17 - 11] = "applied"  # no DDL off PostgreSQL: nothing is looked for
    if target.backend == "turso" and ours:
        # Turso's files carry pgqrs's bookkeeping, which vouches for versions 1-5; of ours,
        # only a migration that adds columns is looked for (it cannot run twice); 14 only
        # creates a table (IF NOT EXISTS), so it runs again.
        later[14 - 11] = "applied"
        return ["adopted"] * 5 + ["applied"] * 3 + ["adopted", "applied"] + later
    if target.backend in ("sqlite", "s3"):
        return ["applied"] + ["adopted"] * 4 + ["applied"] * 3 + ours_only + later
    return ["adopted"] * 5 + ["applied"] * 3 + ours_only + later


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
