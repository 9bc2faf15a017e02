"""A pure-Python model of one pgqrs queue, for tests/property/test_queue_model.py.

Each rule below is the whole specification the state machine holds the library to; rule tags
(`RULE_*`) name them in failure messages, and the ones marked NEW are being implemented (issue
10) and fail on code that predates them.

The model has no opinion where the specification has none, and those outcomes come back as
`Either` (the test follows what the library did, `QueueModel.adopt`):
* a message left owned by an earlier registration of a re-registered worker ("leftover") may or
  may not be settled by the new registration, or released by its shutdown;
* a message `reclaim_messages` releases may keep the end of its lapsed lease as `vt` or get
  `vt = now` (visible now either way).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

READY: Literal["ready"] = "ready"
SUSPENDED: Literal["suspended"] = "suspended"
STOPPED: Literal["stopped"] = "stopped"
Status = Literal["ready", "suspended", "stopped"]

RULE_VISIBLE = "visibility: unarchived, vt <= t, read_ct < max_read_ct"
RULE_CLAIM = (
    "claim: visible messages in (enqueued_at, id) order, owner = c, vt = t + L, read_ct + 1"
)
RULE_EXCLUSIVE = "exclusive lease: a validly leased message is never claimed by anyone else"
RULE_POISON = "poison: read_ct >= max_read_ct and not validly leased is never claimed"
RULE_FENCE = "fencing: archive/delete/release/extend act only for the unarchived owner"
RULE_ARCHIVE = "archive: owner's unarchived message -> archived_at = t, owner/vt/read_ct kept"
RULE_RELEASE = "release: owner's unarchived message -> owner NULL, vt = t"
RULE_EXTEND = "extend_vt: owner's unarchived message -> vt = max(vt, t) + s"
RULE_ENQUEUE = "enqueue: enqueued_at = t, vt = t + delay, read_ct 0, no owner"
RULE_SUSPENDED = "a suspended consumer claims nothing (SuspendedError)"
RULE_LIFECYCLE = "worker lifecycle: suspend/resume/shutdown transitions and heartbeats"
RULE_SHUTDOWN = "shutdown(release=True): its unarchived messages -> owner NULL, vt = t; stopped"
RULE_REREGISTER = "NEW re-registration: same worker id, and the old object is fenced out"
RULE_RECLAIM = (
    "NEW reclaim: stop non-stopped workers with heartbeat < t - X; release only their "
    "messages whose lease has expired (vt <= t)"
)

# An owner's delete acts on its archived rows too (semantics.md §7.4, and pgqrs); False would hold
# the library to "unarchived messages only".
DELETE_ARCHIVED = True
RULE_DELETE = (
    "delete: owner's message -> row deleted (archived rows too, semantics.md §7.4)"
    if DELETE_ARCHIVED
    else "delete: owner's unarchived message -> row deleted (issue 10; semantics.md §7.4 and the "
    "library before it also deleted the owner's archived rows)"
)

BASE_TIME = datetime(2030, 1, 1, tzinfo=UTC)
DELETED_ID = -1  # the `id` of a message's deleted form (see `Either`, `QueueModel.adopt`)


class ManualClock:
    """The store's clock in these tests: it moves only when told (`advance`)."""

    def __init__(self, start: datetime = BASE_TIME) -> None:
        self._now = start
        self._skew = timedelta(0)

    def now(self) -> datetime:
        return self._now + self._skew

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    @contextlib.contextmanager
    def skewed(self, seconds: float) -> Iterator[datetime]:
        """For one call, answer `seconds` away from the model's time (a producer whose clock
        lags behind the others'); yields the time it answers."""
        self._skew = timedelta(seconds=seconds)
        try:
            yield self.now()
        finally:
            self._skew = timedelta(0)


@dataclass(frozen=True)
class Registration:
    """One registration of a worker row: re-registering a stopped name keeps the id and bumps
    the generation."""

    worker_id: int
    generation: int

    def __str__(self) -> str:
        return f"worker {self.worker_id} (registration {self.generation})"


@dataclass
class Message:
    id: int
    enqueued_at: datetime
    vt: datetime
    payload: int = 0
    read_ct: int = 0
    owner: Registration | None = None
    dequeued_at: datetime | None = None  # the first claim's time
    archived_at: datetime | None = None
    changed_by: str = RULE_ENQUEUE  # the model rule that last changed this message

    def describe(self) -> str:
        owner = "none" if self.owner is None else str(self.owner)
        archived = "" if self.archived_at is None else f" archived_at={self.archived_at}"
        return (
            f"enqueued_at={self.enqueued_at} vt={self.vt} read_ct={self.read_ct} "
            f"owner={owner}{archived} dequeued_at={self.dequeued_at}"
        )


@dataclass
class Worker:
    id: int
    name: str
    status: Status
    heartbeat_at: datetime
    generation: int = 1

    @property
    def registration(self) -> Registration:
        return Registration(self.id, self.generation)


@dataclass(frozen=True)
class Either:
    """The library may leave the message as `before` or change it to `after`."""

    before: Message
    after: Message


Outcome = bool | Either


@dataclass
class QueueModel:
    now: datetime
    max_read_ct: int
    messages: dict[int, Message] = field(default_factory=dict)
    workers: dict[int, Worker] = field(default_factory=dict)

    # -- queries ----------------------------------------------------------------------------
    def visible(self, m: Message) -> bool:
        return m.archived_at is None and m.vt <= self.now and m.read_ct < self.max_read_ct

    def validly_leased(self, m: Message) -> bool:
        return m.archived_at is None and m.owner is not None and m.vt > self.now

    def poison(self, m: Message) -> bool:
        return (
            m.archived_at is None and m.read_ct >= self.max_read_ct and not self.validly_leased(m)
        )

    def claim_order(self) -> list[Message]:
        return sorted(
            (m for m in self.messages.values() if self.visible(m)),
            key=lambda m: (m.enqueued_at, m.id),
        )

    def is_current(self, reg: Registration) -> bool:
        return self.workers[reg.worker_id].generation == reg.generation

    # -- producing --------------------------------------------------------------------------
    def enqueue(
        self, ids: Iterable[int], payloads: Iterable[int], enqueued_at: datetime, delay: float
    ) -> None:
        vt = enqueued_at + timedelta(seconds=delay)
        for mid, payload in zip(ids, payloads, strict=True):
            self.messages[mid] = Message(mid, enqueued_at, vt, payload)

    # -- claiming ---------------------------------------------------------------------------
    def claim(self, reg: Registration, limit: int, lease: float) -> list[int]:
        """The ids a claim of up to `limit` takes, in order; the model takes them."""
        picked = [m.id for m in self.claim_order()[:limit]]
        self.take(reg, picked, lease)
        return picked

    def take(self, reg: Registration, ids: Iterable[int], lease: float) -> None:
        vt = self.now + timedelta(seconds=lease)
        for mid in ids:
            m = self.messages[mid]
            m.owner, m.vt, m.read_ct, m.changed_by = reg, vt, m.read_ct + 1, RULE_CLAIM
            m.dequeued_at = m.dequeued_at or self.now

    # -- settling (fenced by ownership) -----------------------------------------------------
    def may_settle(self, reg: Registration, mid: int, *, archived_ok: bool = False) -> Outcome:
        """Whether `reg` may settle message `mid`: True, False, or Either (a leftover of an
        earlier registration of the same worker, acted on by the current one)."""
        m = self.messages.get(mid)
        if m is None or m.owner is None or (m.archived_at is not None and not archived_ok):
            return False
        if not self.is_current(reg):  # NEW: an object of an earlier registration is fenced
            return False
        if m.owner == reg:
            return True
        if m.owner.worker_id == reg.worker_id:
            return Either(dataclasses.replace(m), dataclasses.replace(m))
        return False

    def _apply(self, mid: int, outcome: Outcome, change: Message) -> Outcome:
        """Apply `change` (a changed copy of the message) when the outcome is True; for Either,
        the pair to choose from."""
        if outcome is True:
            self.messages[mid] = change
            return True
        if isinstance(outcome, Either):
            return Either(outcome.before, change)
        return False

    def archive(self, reg: Registration, mid: int) -> Outcome:
        outcome = self.may_settle(reg, mid)
        if outcome is False:
            return False
        m = self.messages[mid]
        return self._apply(
            mid, outcome, dataclasses.replace(m, archived_at=self.now, changed_by=RULE_ARCHIVE)
        )

    def release(self, reg: Registration, mid: int) -> Outcome:
        outcome = self.may_settle(reg, mid)
        if outcome is False:
            return False
        m = self.messages[mid]
        return self._apply(
            mid, outcome, dataclasses.replace(m, owner=None, vt=self.now, changed_by=RULE_RELEASE)
        )

    def extend(self, reg: Registration, mid: int, seconds: float) -> Outcome:
        outcome = self.may_settle(reg, mid)
        if outcome is False:
            return False
        m = self.messages[mid]
        vt = max(m.vt, self.now) + timedelta(seconds=seconds)
        return self._apply(mid, outcome, dataclasses.replace(m, vt=vt, changed_by=RULE_EXTEND))

    def delete(self, reg: Registration, mid: int) -> Outcome:
        """For an Either, the deleted form is the message with `id` DELETED_ID."""
        outcome = self.may_settle(reg, mid, archived_ok=DELETE_ARCHIVED)
        if outcome is True:
            del self.messages[mid]
            return True
        if isinstance(outcome, Either):
            return Either(outcome.before, dataclasses.replace(outcome.before, id=DELETED_ID))
        return False

    def adopt(self, mid: int, state: Message) -> None:
        """Follow the library where the model allowed either outcome."""
        if state.id == DELETED_ID:
            self.messages.pop(mid, None)
        else:
            self.messages[mid] = state

    # -- workers ----------------------------------------------------------------------------
    def register(self, worker_id: int, name: str) -> Worker:
        worker = Worker(worker_id, name, READY, self.now)
        self.workers[worker_id] = worker
        return worker

    def reregister(self, worker_id: int) -> Registration:
        w = self.workers[worker_id]
        assert w.status == STOPPED
        w.status, w.heartbeat_at, w.generation = READY, self.now, w.generation + 1
        return w.registration

    def shutdown_release(self, reg: Registration) -> dict[int, Either]:
        """Release the registration's unarchived messages and stop it; leftovers of earlier
        registrations of the worker are Either."""
        leftovers: dict[int, Either] = {}
        for m in list(self.messages.values()):
            if m.archived_at is not None or m.owner is None:
                continue
            released = dataclasses.replace(m, owner=None, vt=self.now, changed_by=RULE_SHUTDOWN)
            if m.owner == reg:
                self.messages[m.id] = released
            elif m.owner.worker_id == reg.worker_id:
                leftovers[m.id] = Either(dataclasses.replace(m), released)
        self.workers[reg.worker_id].status = STOPPED
        return leftovers

    def reclaim(self, older_than: float) -> tuple[list[int], dict[int, Either]]:
        """NEW: the workers stopped, and the messages released.

        A released message has no owner; its `vt` stays at the end of the lapsed lease
        (semantics.md §9.6, §14), where a forced reclaim would write now: both are visible
        now, so the model takes whichever the library wrote (the Either pairs returned).
        """
        cutoff = self.now - timedelta(seconds=older_than)
        stale = [
            w.id for w in self.workers.values() if w.status != STOPPED and w.heartbeat_at < cutoff
        ]
        released: dict[int, Either] = {}
        for wid in stale:
            self.workers[wid].status = STOPPED
            for m in self.messages.values():
                owned = m.owner is not None and m.owner.worker_id == wid
                if owned and m.archived_at is None and m.vt <= self.now:
                    kept = dataclasses.replace(m, owner=None, changed_by=RULE_RECLAIM)
                    released[m.id] = Either(kept, dataclasses.replace(kept, vt=self.now))
                    self.messages[m.id] = kept
        return stale, released
