"""Disk full under a SQLite store: a clear error, no damage, and the same store writes again.

The database, its `-wal` and its `-shm` live on a small tmpfs mounted for the test (root can
mount one, here and in CI; it is unmounted in teardown whatever happens). A filler file takes
most of the free space; enqueue / claim / archive cycles then run until a write fails. Then:

* the failure is a `pgqrs` exception (`PgqrsConnectionError`) whose message says the database
  or disk is full, never a raw `sqlite3` error;
* while the disk is still full, reads work, a checkpoint that cannot grow the database file
  loses nothing, and `PRAGMA integrity_check` says ok;
* every enqueue that returned ids has its rows, and a failed one left none (the row count is
  exactly the ids returned); every message acknowledged as archived is archived, and an archive
  that failed archived nothing;
* once the filler is deleted, the SAME store (never reopened) enqueues, claims and archives
  again, and the consumer drains everything it had claimed.

Two ways to fill the disk: `wal` leaves little room, so the write-ahead log itself (below the
1000-page auto-checkpoint) runs out of space; `checkpoint` leaves room for a full WAL, so
automatic checkpoints copy it into the main file and the disk fills while the database grows.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import pgqrs
from tests.support.fault_report import report

pytestmark = [pytest.mark.slow, pytest.mark.backends("sqlite")]

KB = 1024
MB = 1024 * KB
PAYLOAD: dict[str, Any] = {"pad": ["x" * 1000] * 4}  # about 4 KB a message
ENQUEUE = 20  # messages enqueued per cycle
CLAIM = 10  # messages claimed, then archived, per cycle
MAX_CYCLES = 400  # far more than either disk holds
HELD = 20  # claimed before the disk fills and left unarchived, to archive while it is full
RETRIES_WHILE_FULL = 20
WORKFLOW = "full_wf"  # a workflow run is created per cycle too (nobody runs it)

# name: (tmpfs size, free space left beside the filler)
DISKS = {"wal": (3 * MB, 1 * MB), "checkpoint": (10 * MB, 6 * MB)}


@contextlib.contextmanager
def tmpfs(where: Path, size: int) -> Iterator[Path]:
    """A tmpfs of `size` bytes mounted at `where`; always unmounted afterwards."""
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size // KB}k,mode=0700", "tmpfs", str(where)],
        check=True,
        capture_output=True,
    )
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(where)], check=True, capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """A filler file taking all but `leave` bytes of the free space."""
    filler = disk / "filler"
    remaining = shutil.disk_usage(disk).free - leave
    chunk = b"\0" * MB
    with filler.open("wb") as out:
        while remaining > 0:
            remaining -= out.write(chunk[: min(MB, remaining)])
    return filler


def integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return "; ".join(str(row[0]) for row in conn.execute("PRAGMA integrity_check"))


def checkpoint(path: Path) -> str:
    """A TRUNCATE checkpoint from a separate connection: its (busy, log, checkpointed) row, or
    the error it raised."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        try:
            return str(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
        except sqlite3.Error as err:
            return f"{type(err).__name__}: {err}"


def message_rows(path: Path) -> dict[int, bool]:
    """Every message id in the file, and whether it is archived."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT id, archived_at IS NOT NULL FROM pgqrs_messages")
        return {int(mid): bool(archived) for mid, archived in rows}


def run_rows(path: Path) -> dict[int, int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT id, message_id FROM pgqrs_workflow_runs")
        return {int(rid): int(mid) for rid, mid in rows}


def sizes(disk: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(disk.iterdir()) if p.name != "filler"}


class Ledger:
    """What the store acknowledged, to compare with what the file holds."""

    def __init__(self, store: pgqrs.Store) -> None:
        self.store = store
        self.enqueued: list[int] = []
        self.claimed: set[int] = set()
        self.archived: set[int] = set()
        self.runs: dict[int, int] = {}  # workflow run id: its trigger message id
        self.step = ""  # the operation of the cycle running (or failed)

    async def cycle(self, producer: pgqrs.Producer, consumer: pgqrs.Consumer) -> None:
        self.step = "enqueue"
        self.enqueued += await producer.enqueue_batch([PAYLOAD] * ENQUEUE)
        self.step = "workflow"
        await self.trigger()
        self.step = "claim"
        claimed = await self.claim(consumer)
        self.step = "archive"
        done = await consumer.archive_many(claimed)
        self.archived.update(mid for mid, ok in zip(claimed, done, strict=True) if ok)

    async def enqueue_one(self, producer: pgqrs.Producer) -> None:
        self.enqueued.append(await producer.enqueue(PAYLOAD))

    async def claim(self, consumer: pgqrs.Consumer) -> list[int]:
        claimed = [m.id for m in await consumer.dequeue(CLAIM)]
        self.claimed.update(claimed)
        return claimed

    async def archive_one(self, consumer: pgqrs.Consumer) -> None:
        """Archive the oldest message claimed and not archived yet, if there is one."""
        pending = sorted(self.claimed - self.archived)[:1]
        if pending and await consumer.archive_many(pending) == [True]:
            self.archived.update(pending)

    async def trigger(self) -> None:
        """A workflow run and its trigger message: one explicit transaction of the executor
        (`store.db.transaction()`), whose COMMIT is where a full disk shows."""
        run = await pgqrs.admin(self.store).create_workflow(WORKFLOW, PAYLOAD)
        self.runs[run.id()] = run.message_id


async def first_failure(
    ledger: Ledger, producer: pgqrs.Producer, consumer: pgqrs.Consumer
) -> tuple[int, pgqrs.PgqrsError]:
    """Run cycles until one fails; the cycle number and the error."""
    for n in range(MAX_CYCLES):
        try:
            await ledger.cycle(producer, consumer)
        except pgqrs.PgqrsError as err:
            return n, err
    raise AssertionError(f"the disk never filled in {MAX_CYCLES} cycles")


async def while_full(
    ledger: Ledger, producer: pgqrs.Producer, consumer: pgqrs.Consumer
) -> list[str]:
    """Each kind of write again on the full disk, until it fails (a write may still find room
    in a page freed by a rolled-back transaction): how each ended."""
    outcomes: list[str] = []
    attempts: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("enqueue", lambda: ledger.enqueue_one(producer)),
        ("workflow", ledger.trigger),
        ("claim", lambda: ledger.claim(consumer)),
        ("archive", lambda: ledger.archive_one(consumer)),
    ]
    for name, attempt in attempts:
        for done in range(RETRIES_WHILE_FULL):
            try:
                await attempt()
            except pgqrs.PgqrsError as err:
                assert_disk_full(err)
                outcomes.append(f"{name}: {type(err).__name__} after {done} ok")
                break
        else:
            outcomes.append(f"{name}: {RETRIES_WHILE_FULL} ok")
    return outcomes


def assert_disk_full(err: BaseException) -> None:
    assert isinstance(err, pgqrs.PgqrsConnectionError), f"{type(err).__name__}: {err}"
    text = str(err).lower()
    assert "full" in text, f"the error does not say the disk is full: {err}"
    assert isinstance(err.__cause__, sqlite3.Error), "the driver's error is the cause"


def assert_consistent(db: Path, ledger: Ledger) -> int:
    """Check the file against the ledger; the number of rows it holds."""
    assert integrity(db) == "ok"
    rows = message_rows(db)
    acknowledged = set(ledger.enqueued) | set(ledger.runs.values())
    missing = sorted(acknowledged - set(rows))
    assert not missing, f"enqueued ids missing from the file: {missing[:20]}"
    assert set(rows) == acknowledged, "rows that no enqueue acknowledged"
    assert len(ledger.enqueued) + len(ledger.runs) == len(rows)
    assert run_rows(db) == ledger.runs, "workflow runs differ from those acknowledged"
    unarchived = sorted(mid for mid in ledger.archived if not rows[mid])
    assert not unarchived, f"acknowledged as archived but not archived: {unarchived[:20]}"
    assert {mid for mid, archived in rows.items() if archived} == ledger.archived
    return len(rows)


@pytest.mark.parametrize("how", sorted(DISKS))
async def test_a_full_disk_fails_clearly_and_the_same_store_recovers(
    backend: str, tmp_path: Path, how: str
) -> None:
    size, leave = DISKS[how]
    with tmpfs(tmp_path / "disk", size) as disk:
        db = disk / "pgqrs.db"
        store = await pgqrs.connect(f"sqlite://{db}")
        try:
            await pgqrs.admin(store).install()
            await store.queue("full")
            producer = await store.producer("full")
            consumer = await store.consumer("full")
            assert {"pgqrs.db", "pgqrs.db-wal", "pgqrs.db-shm"} <= set(sizes(disk))
            ledger = Ledger(store)
            ledger.enqueued += await producer.enqueue_batch([PAYLOAD] * HELD)
            assert len(await ledger.claim(consumer)) == CLAIM
            assert len(await ledger.claim(consumer)) == HELD - CLAIM
            filler = fill(disk, leave)

            cycles, err = await first_failure(ledger, producer, consumer)
            failed_step = ledger.step
            assert_disk_full(err)
            at_failure = sizes(disk)
            again = await while_full(ledger, producer, consumer)
            # Reads still work on the full disk.
            unarchived = len(ledger.enqueued) + len(ledger.runs) - len(ledger.archived)
            assert await (await store.get_messages()).count() == unarchived
            blocked_checkpoint = checkpoint(db)
            rows_while_full = assert_consistent(db, ledger)

            filler.unlink()  # the space comes back; the store is not reopened
            ledger_before = len(ledger.enqueued)
            await ledger.cycle(producer, consumer)
            assert len(ledger.enqueued) == ledger_before + ENQUEUE
            # The consumer drains the queue, with what it claimed before the disk filled.
            while True:
                ledger.claimed.update(m.id for m in await consumer.dequeue(100))
                pending = sorted(ledger.claimed - ledger.archived)
                if not pending:
                    break
                done = await consumer.archive_many(pending)
                assert all(done), f"the consumer could not archive what it claimed: {pending}"
                ledger.archived.update(pending)
            # Only the workflow triggers are left: no loop runs the workflow.
            assert await (await store.get_messages()).count() == len(ledger.runs)
            assert_consistent(db, ledger)
            freed_checkpoint = checkpoint(db)
            assert integrity(db) == "ok"
        finally:
            await store.close()

    report(
        f"disk full sqlite[{how}]",
        disk_kb=size // KB,
        cycles_before_full=cycles,
        enqueued=len(ledger.enqueued),
        workflow_runs=len(ledger.runs),
        archived=len(ledger.archived),
        failed_in=failed_step,
        failed_with=f"{type(err).__name__}: {err}",
        sizes_at_failure=at_failure,
        writes_while_full=again,
        checkpoint_while_full=blocked_checkpoint,
        checkpoint_after=freed_checkpoint,
        rows_while_full=rows_while_full,
        lost=0,  # assert_consistent: every acknowledged id is in the file
    )
